//! The speaker's export shell: it follows the server and keeps `l2pop_evpn::Exporter` fed.
//!
//! ```text
//!  server ──fanout stream (RabbitMQ)──► consumer ─► Follower (l2pop_bus: positions, gaps)
//!     ▲                                              │ Apply (not bgpvpn's) │ Resync
//!     └──── rpc get_bgp_export {host} ◄──────────────┼──────────────────────┘
//!                                                    ▼
//!                                 Exporter (pure) ─► UPDATEs per peer ─► session tasks
//! ```
//!
//! Why this source: the server is the one owner of ports and BGPVPN definitions. A snapshot
//! (`get_bgp_export`: the BGPVPNs bound to the speakers this BGP agent hosts, their networks'
//! full FDBs without the BGPVPN extension's entries, and the fanout position it reflects) and
//! then the fanout stream in order give exactly the hosts' state, as for an agent. A gap, a new
//! server stream or a reconnect of the consumer asks for a new snapshot, and nothing is applied
//! meanwhile: the site keeps the last consistent export until the snapshot replaces it.
//! BGPVPN definitions (associations, bindings, route targets) change without a fanout, so the
//! snapshot is also taken every `export.refresh_s`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use l2pop_bgpvpn::{BgpvpnId, RouteTarget, VpnType};
use l2pop_bus::{Follower, Positions, Received, RpcClient, Stream, Verdict};
use l2pop_evpn::export::{ExportSkip, Outgoing};
use l2pop_evpn::{ExportView, Exporter, VpnExport};
use l2pop_model::{FdbEntries, Host, NetworkId, Target};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::config::ExportSettings;

const SNAPSHOT_METHOD: &str = "get_bgp_export";

#[derive(Debug, Deserialize)]
struct VpnReply {
    id: BgpvpnId,
    #[serde(rename = "type")]
    vpn_type: VpnType,
    #[serde(default)]
    route_targets: BTreeSet<RouteTarget>,
    #[serde(default)]
    export_targets: BTreeSet<RouteTarget>,
    #[serde(default)]
    route_distinguishers: Vec<RouteTarget>,
    #[serde(default)]
    local_pref: Option<u32>,
    #[serde(default)]
    networks: BTreeSet<NetworkId>,
}

#[derive(Debug, Deserialize)]
struct SnapshotReply {
    stream_id: String,
    fanout_seq: u64,
    bgpvpns: Vec<VpnReply>,
    fdb_entries: FdbEntries,
}

/// What the snapshot says: the view, the fanout position and the server stream it reflects.
#[derive(Debug)]
pub struct Snapshot {
    pub view: ExportView,
    pub fanout_seq: u64,
    pub stream_id: u64,
}

/// Reads a `get_bgp_export` reply.
pub fn parse_snapshot(reply: serde_json::Value) -> anyhow::Result<Snapshot> {
    let reply: SnapshotReply = serde_json::from_value(reply)
        .with_context(|| format!("rpc {SNAPSHOT_METHOD}: malformed reply"))?;
    let stream_id = u64::from_str_radix(&reply.stream_id, 16).with_context(|| {
        format!(
            "rpc {SNAPSHOT_METHOD}: stream_id {:?} is not 16 hex digits",
            reply.stream_id
        )
    })?;
    let vpns = reply
        .bgpvpns
        .into_iter()
        .filter(|v| v.vpn_type == VpnType::L2)
        .map(|v| VpnExport {
            id: v.id,
            route_targets: v.route_targets,
            export_targets: v.export_targets,
            route_distinguishers: v.route_distinguishers,
            local_pref: v.local_pref,
            networks: v.networks,
        })
        .collect();
    Ok(Snapshot {
        view: ExportView::new(vpns, &reply.fdb_entries),
        fanout_seq: reply.fanout_seq,
        stream_id,
    })
}

/// The export side of the owner: exporter, stream position, and where to send.
pub struct Export {
    exporter: Exporter,
    follower: Follower,
    rpc: RpcClient,
    host: Host,
    timeout: Duration,
    /// Each neighbour's session task takes our UPDATEs here.
    sessions: BTreeMap<IpAddr, mpsc::UnboundedSender<Vec<u8>>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("host", &self.host)
            .field("positions", &self.follower.positions())
            .field("routes", &self.exporter.routes().len())
            .finish_non_exhaustive()
    }
}

impl Export {
    pub fn new(
        settings: &ExportSettings,
        rpc: RpcClient,
        host: Host,
        sessions: BTreeMap<IpAddr, mpsc::UnboundedSender<Vec<u8>>>,
    ) -> Self {
        Export {
            exporter: Exporter::new(settings.origin),
            follower: Follower::new(),
            rpc,
            host,
            timeout: settings.rpc_timeout,
            sessions,
        }
    }

    pub fn synced(&self) -> bool {
        self.follower.positions().is_some()
    }

    fn send(&self, outgoing: Outgoing) {
        for (peer, message) in outgoing {
            if let Some(session) = self.sessions.get(&peer) {
                let _ = session.send(message);
            }
        }
    }

    pub fn peer_up(&mut self, peer: IpAddr, session: l2pop_evpn::ExportSession) {
        let out = self.exporter.peer_up(peer, session);
        self.send(out);
    }

    pub fn peer_down(&mut self, peer: IpAddr) {
        self.exporter.peer_down(peer);
    }

    /// Takes a snapshot; on failure the follower stays unsynced (retried by the caller).
    pub async fn resync(&mut self) -> anyhow::Result<()> {
        self.follower.invalidate();
        let args = match json!({"host": self.host}) {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let reply = self
            .rpc
            .call(
                None,
                SNAPSHOT_METHOD,
                &args,
                &l2pop_bus::Context::admin_now(),
                self.timeout,
            )
            .await
            .with_context(|| format!("rpc {SNAPSHOT_METHOD}"))?;
        let snapshot = parse_snapshot(reply)?;
        self.follower.sync(
            Positions {
                fanout: snapshot.fanout_seq,
                host: 0,
            },
            Some(snapshot.stream_id),
        );
        let (out, skipped) = self.exporter.resync(snapshot.view);
        if let Some(skipped) = skipped {
            for skip in &skipped {
                tracing::warn!(%skip, "not exported");
            }
            log_skips(&skipped);
        }
        tracing::debug!(
            fanout_seq = snapshot.fanout_seq,
            routes = self.exporter.routes().len(),
            "export snapshot"
        );
        metrics::gauge!("l2pop_bgp_exported_routes").set(self.exporter.routes().len() as f64);
        self.send(out);
        Ok(())
    }

    /// Applies one received notification in order; `false` when a snapshot is needed first.
    pub fn receive(&mut self, message: &Received) -> bool {
        // Host casts (none are addressed to the export consumer) carry nothing to export.
        if !matches!(message.target, Target::Fanout) {
            return true;
        }
        match self.follower.observe(
            Stream::Fanout,
            message.stream.as_ref(),
            message.unique_id.as_deref(),
        ) {
            Verdict::Apply => {
                let from_site = message.stream.as_ref().and_then(|s| s.source.as_deref())
                    == Some(l2pop_bgpvpn::NAME);
                tracing::debug!(
                    method = message.method.as_str(),
                    position = ?message.stream,
                    from_site,
                    "export: fanout"
                );
                if !from_site {
                    let out = self.exporter.apply(message.method, &message.fdb_entries);
                    tracing::debug!(
                        messages = out.len(),
                        routes = self.exporter.routes().len(),
                        "export: sent"
                    );
                    metrics::gauge!("l2pop_bgp_exported_routes")
                        .set(self.exporter.routes().len() as f64);
                    self.send(out);
                }
                true
            }
            Verdict::Duplicate | Verdict::Unnumbered => true,
            Verdict::Resync(reason) => {
                tracing::info!(%reason, "export: resyncing");
                metrics::counter!("l2pop_bgp_export_resyncs_total").increment(1);
                false
            }
        }
    }
}

fn log_skips(skipped: &[ExportSkip]) {
    metrics::gauge!("l2pop_bgp_export_skipped").set(skipped.len() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_snapshot_reply_becomes_the_view_of_its_l2_bgpvpns() {
        let reply = json!({
            "host": "bgp-1",
            "stream_id": "00000000000000ab",
            "fanout_seq": 7,
            "bgpvpns": [
                {"id": "66666666-6666-4666-8666-666666666601", "type": "l2", "name": "a",
                 "route_targets": ["65000:1001"], "export_targets": [], "import_targets": [],
                 "route_distinguishers": ["203.0.113.10:1001"], "local_pref": null, "vni": 1001,
                 "networks": ["11111111-1111-4111-8111-111111111111"], "routers": [], "ports": []},
                {"id": "66666666-6666-4666-8666-666666666602", "type": "l3",
                 "route_targets": ["65000:1002"], "networks": []}
            ],
            "fdb_entries": {"11111111-1111-4111-8111-111111111111": {
                "segment_id": 1001, "network_type": "vxlan",
                "ports": {"192.0.2.1": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:00:00:11", "10.1.0.11"]]}}}
        });
        let snapshot = parse_snapshot(reply).unwrap();
        assert_eq!((snapshot.stream_id, snapshot.fanout_seq), (0xab, 7));
        assert_eq!(snapshot.view.vpns.len(), 1);
        let network = snapshot.view.networks.values().next().unwrap();
        assert_eq!(network.segment_id, Some(1001));
        assert_eq!(network.flood.len(), 1);
        assert_eq!(network.entries.len(), 1);

        let broken = json!({"stream_id": "zz", "fanout_seq": 1, "bgpvpns": [], "fdb_entries": {}});
        let error = parse_snapshot(broken).unwrap_err().to_string();
        assert!(error.contains("\"zz\""), "{error}");
    }
}

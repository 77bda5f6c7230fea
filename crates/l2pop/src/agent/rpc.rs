//! The agent's calls to the server, in the shapes of Neutron's agent RPC
//! (`neutron.agent.rpc.PluginApi`, `PluginReportStateAPI`) plus l2pop's `get_fdb_entries`
//! and `get_stream_positions`: typed arguments in, typed answers out, over either bus backend.
//!
//! | call | l2pop server | neutron-server (`ServerKind::Neutron`) |
//! |---|---|---|
//! | `report_state` | `rpc_topic`, version 1.0 | `q-reports-plugin`, version 1.3 (`AgentExtRpcCallback`; its namespace `RPC_NAMESPACE_STATE` is `None`) |
//! | `get_devices_details_list_and_failed_devices`, `update_device_up/down` | `rpc_topic` | `q-plugin` (ML2 `RpcCallbacks`), version 1.0 |
//! | `get_fdb_entries`, `get_stream_positions` | `rpc_topic` | never called |

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use l2pop_bus::{Context, Positions, RpcClient};

use super::config::ServerKind;
use l2pop_model::{FdbEntries, FdbPayload, Host, Mac, NetworkId, NetworkType, PortId};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::state::LocalPort;

/// How long one call may take before the agent gives up on it (oslo's `rpc_response_timeout`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The agent's RPC endpoint at the server.
#[derive(Debug)]
pub struct ServerRpc {
    client: RpcClient,
    /// Where `report_state` goes (Neutron: another topic and a namespace).
    reports: RpcClient,
    kind: ServerKind,
    host: Host,
    agent_id: String,
    timeout: Duration,
}

/// A resync snapshot: every network's full FDB for this host, with the stream positions it
/// reflects (`None` from a server that does not number its streams).
#[derive(Debug)]
pub struct Snapshot {
    pub positions: Option<Positions>,
    pub stream_id: Option<u64>,
    pub fdb_entries: FdbPayload,
}

#[derive(Debug, Deserialize)]
struct PositionsReply {
    stream_id: String,
    fanout_seq: u64,
    host_seq: u64,
}

#[derive(Debug, Deserialize)]
struct SnapshotReply {
    #[serde(default)]
    stream_id: Option<String>,
    #[serde(default)]
    fanout_seq: Option<u64>,
    #[serde(default)]
    host_seq: Option<u64>,
    fdb_entries: FdbEntries,
}

/// One device's details (Neutron's `get_device_details` reply).
#[derive(Debug, Deserialize)]
struct DeviceDetails {
    device: String,
    #[serde(default)]
    network_id: Option<NetworkId>,
    #[serde(default)]
    port_id: Option<PortId>,
    #[serde(default)]
    mac_address: Option<Mac>,
    #[serde(default)]
    network_type: Option<NetworkType>,
    #[serde(default)]
    segmentation_id: Option<u32>,
    #[serde(default)]
    admin_state_up: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct DetailsReply {
    devices: Vec<DeviceDetails>,
    #[serde(default)]
    failed_devices: Vec<String>,
}

fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The client target of `report_state` for a server of `kind` on `topic`.
pub fn reports_target(kind: ServerKind, topic: &str) -> l2pop_bus::RpcTarget {
    match kind {
        ServerKind::L2pop => l2pop_bus::RpcTarget::new(topic),
        // Neutron's `PluginReportStateAPI`: Target(version='1.3', namespace=None).
        ServerKind::Neutron => l2pop_bus::RpcTarget {
            topic: topic.to_owned(),
            version: Some("1.3".to_owned()),
        },
    }
}

/// The `time` of a report as Neutron's agents send it and `AgentExtRpcCallback` parses it
/// (`timeutils.parse_strtime`, `ISO8601_TIME_FORMAT = '%Y-%m-%dT%H:%M:%S.%f'`, UTC).
pub fn report_time(time: std::time::SystemTime) -> String {
    let text = l2pop_bus::context::python_timestamp(time).replacen(' ', "T", 1);
    // `str(datetime)` drops a zero fraction; `%f` always prints six digits.
    if text.contains('.') {
        text
    } else {
        format!("{text}.000000")
    }
}

impl ServerRpc {
    /// An l2pop server's endpoint: every call on `client`.
    pub fn new(client: RpcClient, host: Host) -> Self {
        ServerRpc::of_kind(ServerKind::L2pop, client.clone(), client, host)
    }

    /// The endpoint of a server of `kind`: device calls on `client`, `report_state` on
    /// `reports` (see [`reports_target`]).
    pub fn of_kind(kind: ServerKind, client: RpcClient, reports: RpcClient, host: Host) -> Self {
        let agent_id = format!("l2pop-agent-{host}");
        ServerRpc {
            client,
            reports,
            kind,
            host,
            agent_id,
            timeout: CALL_TIMEOUT,
        }
    }

    async fn call(&self, method: &str, args: Map<String, Value>) -> anyhow::Result<Value> {
        call(&self.client, method, args, self.timeout).await
    }

    /// `report_state` as Neutron's Linux bridge agent sends it (tunnel types `vxlan`,
    /// l2population on). Answers `"new"` or `"alive"`.
    pub async fn report_state(
        &self,
        local_ip: IpAddr,
        start_flag: bool,
        devices: usize,
    ) -> anyhow::Result<Value> {
        let state = json!({
            "binary": "l2pop-agent",
            "host": self.host,
            "topic": "N/A",
            "agent_type": "Linux bridge agent",
            "start_flag": start_flag,
            "configurations": {
                "tunneling_ip": local_ip,
                "tunnel_types": ["vxlan"],
                "l2_population": true,
                "devices": devices,
            },
        });
        let args = args(json!({
            "agent_state": {"agent_state": state},
            "time": report_time(std::time::SystemTime::now()),
        }));
        call(&self.reports, "report_state", args, self.timeout).await
    }

    /// Which network each device is on. Devices the server does not know, or knows bound
    /// elsewhere, are absent from the answer.
    /// Neutron's ML2 matches these devices as port id prefixes (`partial_port_ids_to_full_ids`,
    /// no `tap` stripped, unlike `update_device_up`): it is asked for the tap's 11 characters
    /// of port id, and its answers are named after the tap again.
    pub async fn device_details(&self, devices: &[String]) -> anyhow::Result<Vec<LocalPort>> {
        const METHOD: &str = "get_devices_details_list_and_failed_devices";
        let asked: Vec<&str> = match self.kind {
            ServerKind::L2pop => devices.iter().map(String::as_str).collect(),
            ServerKind::Neutron => devices.iter().map(|d| port_id_prefix(d)).collect(),
        };
        let reply = self
            .call(
                METHOD,
                args(json!({"devices": asked, "agent_id": self.agent_id, "host": self.host})),
            )
            .await?;
        let mut reply: DetailsReply = serde_json::from_value(reply)
            .with_context(|| format!("rpc {METHOD}: malformed reply"))?;
        if self.kind == ServerKind::Neutron {
            for details in &mut reply.devices {
                if let Some(tap) = devices.iter().find(|d| port_id_prefix(d) == details.device) {
                    details.device.clone_from(tap);
                }
            }
        }
        for failed in &reply.failed_devices {
            tracing::warn!(device = %failed, "the server could not give this device's details");
        }
        Ok(reply
            .devices
            .into_iter()
            .filter_map(|d| {
                Some(LocalPort {
                    network_id: d.network_id?,
                    port_id: d.port_id?,
                    mac: d.mac_address?,
                    network_type: d.network_type?,
                    segmentation_id: d.segmentation_id,
                    admin_state_up: d.admin_state_up.unwrap_or(true),
                    device: d.device,
                })
            })
            .collect())
    }

    /// `update_device_up`; `refresh_tunnels` asks for the full FDB again (first report after
    /// a restart).
    pub async fn device_up(&self, device: &str, refresh_tunnels: bool) -> anyhow::Result<()> {
        self.call(
            "update_device_up",
            args(json!({
                "device": device,
                "agent_id": self.agent_id,
                "host": self.host,
                "refresh_tunnels": refresh_tunnels,
            })),
        )
        .await
        .map(drop)
    }

    /// `update_device_down`.
    pub async fn device_down(&self, device: &str) -> anyhow::Result<()> {
        self.call(
            "update_device_down",
            args(json!({"device": device, "agent_id": self.agent_id, "host": self.host})),
        )
        .await
        .map(drop)
    }

    /// Where the server's streams stand for this host: (stream id, positions).
    pub async fn positions(&self) -> anyhow::Result<(u64, Positions)> {
        const METHOD: &str = "get_stream_positions";
        let reply = self.call(METHOD, args(json!({"host": self.host}))).await?;
        let reply: PositionsReply = serde_json::from_value(reply)
            .with_context(|| format!("rpc {METHOD}: malformed reply"))?;
        let stream_id = u64::from_str_radix(&reply.stream_id, 16).with_context(|| {
            format!(
                "rpc {METHOD}: stream_id {:?} is not 16 hex digits",
                reply.stream_id
            )
        })?;
        Ok((
            stream_id,
            Positions {
                fanout: reply.fanout_seq,
                host: reply.host_seq,
            },
        ))
    }

    /// l2pop's resync call: the host's full FDB with the stream positions it reflects.
    /// `None` from a Neutron server, which has no such call: its full FDBs come as host casts
    /// after `update_device_up`.
    pub async fn snapshot(&self) -> anyhow::Result<Option<Snapshot>> {
        const METHOD: &str = "get_fdb_entries";
        if self.kind == ServerKind::Neutron {
            return Ok(None);
        }
        let reply = self.call(METHOD, args(json!({"host": self.host}))).await?;
        let reply: SnapshotReply = serde_json::from_value(reply)
            .with_context(|| format!("rpc {METHOD}: malformed reply"))?;
        let positions = match (reply.fanout_seq, reply.host_seq) {
            (Some(fanout), Some(host)) => Some(Positions { fanout, host }),
            _ => None,
        };
        let stream_id = match reply.stream_id {
            None => None,
            Some(text) => Some(u64::from_str_radix(&text, 16).with_context(|| {
                format!("rpc {METHOD}: stream_id {text:?} is not 16 hex digits")
            })?),
        };
        Ok(Some(Snapshot {
            positions,
            stream_id,
            fdb_entries: FdbPayload::Entries(reply.fdb_entries),
        }))
    }
}

/// The port id prefix a Neutron tap is named after (`tap` + 11 characters).
fn port_id_prefix(device: &str) -> &str {
    device.strip_prefix("tap").unwrap_or(device)
}

async fn call(
    client: &RpcClient,
    method: &str,
    args: Map<String, Value>,
    timeout: Duration,
) -> anyhow::Result<Value> {
    client
        .call(None, method, &args, &Context::admin_now(), timeout)
        .await
        .with_context(|| format!("rpc {method}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn report_times_read_as_neutrons_iso8601_format() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(report_time(at), "2026-11-18T11:06:40.000000");
        let at = at + Duration::from_micros(1_234);
        assert_eq!(report_time(at), "2026-11-18T11:06:40.001234");
    }

    #[test]
    fn reports_to_neutron_ask_for_its_version() {
        let target = reports_target(ServerKind::Neutron, "q-reports-plugin");
        assert_eq!(target.version.as_deref(), Some("1.3"));
        let target = reports_target(ServerKind::L2pop, "l2pop-plugin");
        assert_eq!(target, l2pop_bus::RpcTarget::new("l2pop-plugin"));
    }
}

//! The agent's local status endpoint, for `l2pop agent status` and `l2pop fdb explain`: HTTP
//! handlers send a [`Query`] to the owner loop, which answers from its own state (no copy of
//! it is kept here).
//!
//! - `GET /status`: host, tunnel address, stream positions, local ports, per-network entry
//!   counts, and the drift: what a reconcile would change now against the last observation.
//! - `GET /fdb?mac=M[&network=N]`: for one MAC, per network, the VTEP the desired table wants,
//!   whether the kernel holds it, and its ARP/ND proxy entries.
//! - `GET /metrics`: the agent's Prometheus metrics.

use std::net::SocketAddr;

use axum::extract::{Query as UrlQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use l2pop_dataplane::{Desired, Observed, plan};
use l2pop_model::{Mac, NetworkId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::config::Settings;
use super::state::{AgentState, Since};

/// A question for the owner loop.
#[derive(Debug)]
pub enum Query {
    Status(oneshot::Sender<Value>),
    Explain {
        mac: Mac,
        network: Option<NetworkId>,
        reply: oneshot::Sender<Value>,
    },
}

#[derive(Debug, Deserialize)]
struct ExplainParams {
    mac: String,
    network: Option<String>,
}

/// Serves the endpoint on `addr` until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    queries: mpsc::Sender<Query>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("agent.status_listen: cannot bind {addr}: {e}"))?;
    let metrics = crate::server::metrics_handle();
    let app = Router::new()
        .route("/status", get(status))
        .route("/fdb", get(explain))
        .route(
            "/metrics",
            get(move || async move { metrics.map(|m| m.render()).unwrap_or_default() }),
        )
        .with_state(queries);
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "status endpoint stopped");
        }
    }))
}

async fn ask(
    queries: &mpsc::Sender<Query>,
    query: impl FnOnce(oneshot::Sender<Value>) -> Query,
) -> Json<Value> {
    let (tx, rx) = oneshot::channel();
    if queries.send(query(tx)).await.is_err() {
        return Json(json!({"error": "the agent is stopping"}));
    }
    Json(
        rx.await
            .unwrap_or_else(|_| json!({"error": "the agent is stopping"})),
    )
}

async fn status(State(queries): State<mpsc::Sender<Query>>) -> Json<Value> {
    ask(&queries, Query::Status).await
}

async fn explain(
    State(queries): State<mpsc::Sender<Query>>,
    UrlQuery(params): UrlQuery<ExplainParams>,
) -> Json<Value> {
    let mac: Mac = match params.mac.parse() {
        Ok(mac) => mac,
        Err(error) => return Json(json!({"error": format!("mac: {:?} {error}", params.mac)})),
    };
    let network = match params.network.as_deref().map(str::parse::<NetworkId>) {
        None => None,
        Some(Ok(network)) => Some(network),
        Some(Err(error)) => {
            return Json(json!({"error": format!("network: {:?} {error}", params.network)}));
        }
    };
    ask(&queries, |reply| Query::Explain {
        mac,
        network,
        reply,
    })
    .await
}

/// The answer to `GET /status`.
pub fn status_view(
    settings: &Settings,
    state: &AgentState,
    desired: &Desired,
    observed: &Observed,
) -> Value {
    let drift: Vec<String> = plan(desired, observed)
        .iter()
        .map(ToString::to_string)
        .collect();
    let networks: serde_json::Map<String, Value> = desired
        .networks
        .iter()
        .map(|(vni, network)| {
            (
                vni.to_string(),
                json!({
                    "bridge": network.bridge,
                    "vxlan": network.vxlan,
                    "ports": network.ports,
                    "flood": network.flood,
                    "unicast": network.unicast.len(),
                    "neighbours": network.neighbours.len(),
                }),
            )
        })
        .collect();
    let ports: Vec<Value> = state
        .ports()
        .map(|p| {
            json!({
                "device": p.device,
                "port_id": p.port_id,
                "network_id": p.network_id,
                "mac_address": p.mac,
                "segmentation_id": p.segmentation_id,
            })
        })
        .collect();
    let positions = state
        .positions()
        .map(|p| json!({"fanout_seq": p.fanout, "host_seq": p.host}));
    json!({
        "host": settings.host,
        "local_ip": settings.local_ip,
        "numbered": state.numbered(),
        "stream_id": state.stream_id().map(|id| format!("{id:016x}")),
        "positions": positions,
        "ports": ports,
        "networks": networks,
        "drift": drift,
    })
}

/// The answer to `GET /fdb?mac=`: where the agent wants `mac` and whether the kernel has it.
pub fn explain_view(
    state: &AgentState,
    desired: &Desired,
    observed: &Observed,
    mac: Mac,
    network: Option<NetworkId>,
) -> Value {
    let mut entries = Vec::new();
    for (vni, wanted) in &desired.networks {
        let network_id = state
            .ports()
            .find(|p| p.segmentation_id == Some(*vni))
            .map(|p| p.network_id);
        if network.is_some() && network != network_id {
            continue;
        }
        let vtep = wanted.unicast.get(&mac);
        let kernel: Vec<String> = observed
            .fdb
            .get(&wanted.vxlan)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|(m, _)| *m == mac)
                    .map(|(_, dst)| dst.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let neighbours: Vec<Value> = wanted
            .neighbours
            .iter()
            .filter(|(_, m)| **m == mac)
            .map(|(ip, _)| {
                let in_kernel = observed
                    .neighbours
                    .get(&wanted.vxlan)
                    .and_then(|n| n.get(ip))
                    == Some(&mac);
                json!({"ip": ip, "in_kernel": in_kernel})
            })
            .collect();
        if vtep.is_none() && kernel.is_empty() && neighbours.is_empty() {
            continue;
        }
        let since = network_id
            .and_then(|n| state.since(n, mac))
            .map(|since| match since {
                Since::Fanout(seq) => json!({"fanout_seq": seq}),
                Since::HostCast(seq) => json!({"host_seq": seq}),
                Since::Snapshot(seq) => json!({"snapshot_at_fanout_seq": seq}),
                Since::Unnumbered => json!({"unnumbered": true}),
            });
        entries.push(json!({
            "network_id": network_id,
            "since": since,
            "segmentation_id": vni,
            "device": wanted.vxlan,
            "desired_vtep": vtep,
            "kernel_vteps": kernel,
            "in_kernel": vtep.is_some_and(|v| kernel.contains(&v.to_string())),
            "neighbours": neighbours,
        }));
    }
    let positions = state
        .positions()
        .map(|p| json!({"fanout_seq": p.fanout, "host_seq": p.host}));
    json!({"mac": mac, "positions": positions, "entries": entries})
}

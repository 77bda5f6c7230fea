//! Agent → server calls over the bus (oslo.messaging RPC on the l2pop topic), turned into owner
//! jobs exactly like the REST API's `/v2.0/l2pop` endpoints:
//!
//! | method | args | reply |
//! |---|---|---|
//! | `report_state` | `agent_state: {"agent_state": {host, agent_type, binary, start_flag, configurations: {tunneling_ip, tunnel_types, l2pop_network_types}}}`, `time` (Neutron's shape) | `"new"` or `"alive"` |
//! | `update_device_up` | `device` (port id or `tap` + its first 11 characters), `agent_id`, `host`, `refresh_tunnels` | `null` |
//! | `update_device_down` | `device`, `agent_id`, `host` | `{"device", "exists"}` |
//! | `get_fdb_entries` | `host` | `{"host", "fanout_seq", "host_seq", "fdb_entries"}`: every network's full FDB (resync) |

use l2pop_bus::{RpcFailure, RpcRequest};
use l2pop_model::{FdbEntries, Host, PortId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::error::ApiError;
use super::owner::{OwnerHandle, Planned};
use super::requests::{AgentReportBody, DeviceBody};
use super::state::ServerState;

/// Serves requests until the channel closes.
pub async fn serve(mut requests: mpsc::Receiver<RpcRequest>, owner: OwnerHandle) {
    while let Some(request) = requests.recv().await {
        let owner = owner.clone();
        tokio::spawn(async move {
            let method = request.method.clone();
            let answer = handle(&owner, &request.method, request.args.clone()).await;
            if let Err(failure) = &answer {
                tracing::info!(%method, message = %failure.message, "rpc call refused");
            }
            metrics::counter!("l2pop_rpc_requests_total", "method" => method).increment(1);
            request.respond(answer);
        });
    }
}

fn failure(error: ApiError) -> RpcFailure {
    RpcFailure::new(error.kind, error.message)
}

fn invalid(method: &str, error: impl std::fmt::Display) -> RpcFailure {
    RpcFailure::new("InvalidInput", format!("{method}: {error}"))
}

#[derive(Debug, Deserialize)]
struct ReportStateArgs {
    agent_state: ReportEnvelope,
    #[serde(default)]
    #[allow(dead_code)]
    time: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ReportEnvelope {
    agent_state: AgentState,
}

#[derive(Debug, Deserialize)]
struct AgentState {
    host: Host,
    #[serde(default)]
    agent_type: Option<String>,
    #[serde(default)]
    binary: Option<String>,
    #[serde(default)]
    start_flag: bool,
    #[serde(default)]
    configurations: Configurations,
}

#[derive(Debug, Default, Deserialize)]
struct Configurations {
    #[serde(default)]
    tunneling_ip: Option<std::net::IpAddr>,
    #[serde(default)]
    tunnel_types: Vec<l2pop_model::NetworkType>,
    #[serde(default)]
    l2pop_network_types: Option<Vec<l2pop_model::NetworkType>>,
}

#[derive(Debug, Deserialize)]
struct DeviceArgs {
    device: String,
    host: Host,
    #[serde(default)]
    #[allow(dead_code)]
    agent_id: Option<String>,
    #[serde(default)]
    refresh_tunnels: bool,
}

#[derive(Debug, Deserialize)]
struct FdbArgs {
    host: Host,
}

async fn handle(owner: &OwnerHandle, method: &str, args: Value) -> Result<Value, RpcFailure> {
    match method {
        "report_state" => {
            let args: ReportStateArgs =
                serde_json::from_value(args).map_err(|e| invalid(method, e))?;
            let state = args.agent_state.agent_state;
            let host = state.host.clone();
            let body = AgentReportBody {
                host: state.host,
                tunneling_ip: state.configurations.tunneling_ip,
                tunnel_types: state.configurations.tunnel_types,
                l2pop_network_types: state.configurations.l2pop_network_types,
                start_flag: state.start_flag,
                agent_type: state.agent_type,
                binary: state.binary,
            };
            owner.heartbeat(host.clone()).await;
            owner
                .write(
                    Caller::Admin,
                    Box::new(move |state: &ServerState, _: &Caller, fresh| {
                        let known = state.agents.contains_key(&host);
                        Ok(Planned {
                            command: state.plan_agent_report(body, fresh),
                            view: Box::new(move |_| {
                                Ok(Value::String(
                                    if known { "alive" } else { "new" }.to_owned(),
                                ))
                            }),
                        })
                    }),
                )
                .await
                .map_err(failure)
        }
        "update_device_up" | "update_device_down" => {
            let up = method == "update_device_up";
            let args: DeviceArgs = serde_json::from_value(args).map_err(|e| invalid(method, e))?;
            let device = args.device.clone();
            let answer = owner
                .write(
                    Caller::Admin,
                    Box::new(move |state: &ServerState, _: &Caller, _| {
                        let port = resolve_device(state, &args.device)?;
                        let command = state.plan_device(
                            port,
                            up,
                            DeviceBody {
                                host: args.host,
                                refresh_tunnels: args.refresh_tunnels,
                            },
                        )?;
                        Ok(Planned {
                            command: Some(command),
                            view: Box::new(|_| Ok(Value::Null)),
                        })
                    }),
                )
                .await;
            match (up, answer) {
                (true, answer) => answer.map_err(failure),
                (false, Ok(_)) => Ok(json!({"device": device, "exists": true})),
                (false, Err(error)) if error.status == axum::http::StatusCode::NOT_FOUND => {
                    Ok(json!({"device": device, "exists": false}))
                }
                (false, Err(error)) => Err(failure(error)),
            }
        }
        "get_fdb_entries" => {
            let args: FdbArgs = serde_json::from_value(args).map_err(|e| invalid(method, e))?;
            owner
                .read(
                    Caller::Admin,
                    Box::new(move |state: &ServerState, _: &Caller| {
                        Ok(full_fdb(state, &args.host))
                    }),
                )
                .await
                .map_err(failure)
        }
        other => Err(RpcFailure::new(
            "UnsupportedVersion",
            format!("Endpoint does not support RPC method {other}"),
        )),
    }
}

/// A device name as agents report it: the port id, or `tap` + the id's first 11 characters.
fn resolve_device(state: &ServerState, device: &str) -> Result<PortId, ApiError> {
    if let Ok(id) = device.parse::<PortId>() {
        return Ok(id);
    }
    let prefix = device.strip_prefix("tap").unwrap_or(device);
    if prefix.len() >= 8 {
        let mut matches = state
            .ports
            .keys()
            .filter(|id| id.to_string().starts_with(prefix));
        if let (Some(id), None) = (matches.next(), matches.next()) {
            return Ok(*id);
        }
    }
    Err(ApiError::not_found("port", device).with_field("device"))
}

/// Every network's full FDB for `host`, with the stream positions it reflects (resync).
pub fn full_fdb(state: &ServerState, host: &Host) -> Value {
    let engine = state.engine();
    let mut entries = FdbEntries::default();
    for network in engine.networks_of(host) {
        if let Ok(full) = engine.full_fdb(host, network, None) {
            entries.0.extend(full.fdb_entries.0);
        }
    }
    json!({
        "host": host,
        "fanout_seq": engine.fanout_seq(),
        "host_seq": engine.host_seq(host),
        "fdb_entries": entries,
    })
}

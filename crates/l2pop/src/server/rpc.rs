//! Agent → server calls over the bus (oslo.messaging RPC on the l2pop topic), turned into owner
//! jobs exactly like the REST API's `/v2.0/l2pop` endpoints:
//!
//! | method | args | reply |
//! |---|---|---|
//! | `report_state` | `agent_state: {"agent_state": {host, agent_type, binary, start_flag, configurations: {tunneling_ip, tunnel_types, l2pop_network_types}}}`, `time` (Neutron's shape) | `"new"` or `"alive"` |
//! | `update_device_up` | `device` (port id or `tap` + its first 11 characters), `agent_id`, `host`, `refresh_tunnels` | `null` |
//! | `update_device_down` | `device`, `agent_id`, `host` | `{"device", "exists"}` |
//! | `get_fdb_entries` | `host` | `{"host", "stream_id", "fanout_seq", "host_seq", "fdb_entries"}`: every network's full FDB (resync); `stream_id` (16 hex digits) is the first half of every `_unique_id` this server sends |
//! | `get_stream_positions` | `host` | `{"stream_id", "fanout_seq", "host_seq"}`: where the streams stand (agents compare with their heartbeat to find a message lost at a stream's end) |
//! | `get_devices_details_list_and_failed_devices` | `devices`, `agent_id`, `host` | `{"devices": [details…], "failed_devices": []}` in Neutron's `get_device_details` shape |
//! | `get_device_details` | `device`, `agent_id`, `host` | one device's details |
//!
//! A device's details are what a Neutron L2 agent needs to wire a tap into its network
//! (network id, segment, MAC, fixed IPs, admin state). As in Neutron's ML2 RPC, a device
//! whose port is unknown or not bound to the asking host gets only `{"device": name}`.

use l2pop_bus::{RpcFailure, RpcRequest};
use l2pop_model::{FdbEntries, Host, PortId, Uuid};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::error::ApiError;
use super::owner::{OwnerHandle, Planned};
use super::requests::{AgentReportBody, DeviceBody};
use super::state::ServerState;

/// Serves requests until the channel closes. `stream_id` names this server's notification
/// stream in snapshots.
pub async fn serve(mut requests: mpsc::Receiver<RpcRequest>, owner: OwnerHandle, stream_id: u64) {
    while let Some(request) = requests.recv().await {
        let owner = owner.clone();
        tokio::spawn(async move {
            let method = request.method.clone();
            let answer = handle(&owner, &request.method, request.args.clone(), stream_id).await;
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

#[derive(Debug, Deserialize)]
struct DetailsArgs {
    devices: Vec<String>,
    host: Host,
    #[serde(default)]
    #[allow(dead_code)]
    agent_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DetailArgs {
    device: String,
    host: Host,
    #[serde(default)]
    #[allow(dead_code)]
    agent_id: Option<String>,
}

async fn handle(
    owner: &OwnerHandle,
    method: &str,
    args: Value,
    stream_id: u64,
) -> Result<Value, RpcFailure> {
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
                        let port = resolve_device(state, &args.device, &args.host)?;
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
                        Ok(full_fdb(state, &args.host, stream_id))
                    }),
                )
                .await
                .map_err(failure)
        }
        "get_stream_positions" => {
            let args: FdbArgs = serde_json::from_value(args).map_err(|e| invalid(method, e))?;
            owner
                .read(
                    Caller::Admin,
                    Box::new(move |state: &ServerState, _: &Caller| {
                        let engine = state.engine();
                        Ok(json!({
                            "stream_id": format!("{stream_id:016x}"),
                            "fanout_seq": engine.fanout_seq(),
                            "host_seq": engine.host_seq(&args.host),
                        }))
                    }),
                )
                .await
                .map_err(failure)
        }
        "get_devices_details_list_and_failed_devices" => {
            let args: DetailsArgs = serde_json::from_value(args).map_err(|e| invalid(method, e))?;
            owner
                .read(
                    Caller::Admin,
                    Box::new(move |state: &ServerState, _: &Caller| {
                        let devices: Vec<Value> = args
                            .devices
                            .iter()
                            .map(|device| device_details(state, device, &args.host))
                            .collect();
                        Ok(json!({"devices": devices, "failed_devices": []}))
                    }),
                )
                .await
                .map_err(failure)
        }
        "get_device_details" => {
            let args: DetailArgs = serde_json::from_value(args).map_err(|e| invalid(method, e))?;
            owner
                .read(
                    Caller::Admin,
                    Box::new(move |state: &ServerState, _: &Caller| {
                        Ok(device_details(state, &args.device, &args.host))
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

/// A device name as agents report it: the port id, `tap` + the id's first 11 characters
/// (`xxxxxxxx-xx`, the top 40 bits), or the port's MAC (Neutron's test #26: agents that name
/// devices by MAC). The prefix is a range of ids, looked up in the ordered port map, so a
/// Linux bridge agent's `update_device_up` costs a range query, not a scan. A MAC is unique
/// per network only: it names the one port with that MAC bound to `host`, and is refused as
/// not found when there is none or more than one (a scan: no agent of ours names devices so).
fn resolve_device(state: &ServerState, device: &str, host: &Host) -> Result<PortId, ApiError> {
    if let Ok(id) = device.parse::<PortId>() {
        return Ok(id);
    }
    let not_found = || ApiError::not_found("port", device).with_field("device");
    if let Ok(mac) = device.parse::<l2pop_model::Mac>() {
        let mut bound = state
            .ports
            .values()
            .filter(|p| p.mac == mac && p.host.as_ref() == Some(host))
            .map(|p| p.id);
        return match (bound.next(), bound.next()) {
            (Some(id), None) => Ok(id),
            _ => Err(not_found()),
        };
    }
    let digits: String = device
        .strip_prefix("tap")
        .unwrap_or(device)
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if digits.len() < 8 || digits.len() >= 32 {
        return Err(not_found());
    }
    let prefix = u128::from_str_radix(&digits, 16).map_err(|_| not_found())?;
    let free_bits = 128 - 4 * digits.len() as u32;
    let low = PortId(Uuid::from_u128(prefix << free_bits));
    let high = PortId(Uuid::from_u128(
        (prefix << free_bits) | ((1u128 << free_bits) - 1),
    ));
    let mut matches = state.ports.range(low..=high).map(|(id, _)| *id);
    match (matches.next(), matches.next()) {
        (Some(id), None) => Ok(id),
        _ => Err(not_found()),
    }
}

/// One device's details for the agent on `host`, in the shape of Neutron's
/// `RpcCallbacks.get_device_details` (ML2): `{"device"}` alone when the port is unknown or
/// bound elsewhere, else the port's network, segment, MAC, fixed IPs and admin state.
pub fn device_details(state: &ServerState, device: &str, host: &Host) -> Value {
    let Ok(id) = resolve_device(state, device, host) else {
        return json!({"device": device});
    };
    let (Some(port), Some(network)) = (
        state.ports.get(&id),
        state
            .ports
            .get(&id)
            .and_then(|port| state.networks.get(&port.network_id)),
    ) else {
        return json!({"device": device});
    };
    if port.host.as_ref() != Some(host) {
        return json!({"device": device});
    }
    let fixed_ips: Vec<Value> = port
        .fixed_ips
        .iter()
        .map(|ip| json!({"subnet_id": ip.subnet_id, "ip_address": ip.ip_address}))
        .collect();
    json!({
        "device": device,
        "network_id": port.network_id,
        "port_id": port.id,
        "mac_address": port.mac,
        "admin_state_up": port.admin_state_up,
        "network_type": network.network_type,
        "segmentation_id": network.segmentation_id,
        "physical_network": network.physical_network,
        "fixed_ips": fixed_ips,
        "device_owner": port.device_owner,
    })
}

/// Every network's full FDB for `host`, with the stream and the positions it reflects (resync).
pub fn full_fdb(state: &ServerState, host: &Host, stream_id: u64) -> Value {
    let engine = state.engine();
    let mut entries = FdbEntries::default();
    for network in engine.networks_of(host) {
        if let Ok(full) = engine.full_fdb(host, network, None) {
            entries.0.extend(full.fdb_entries.0);
        }
    }
    json!({
        "host": host,
        "stream_id": format!("{stream_id:016x}"),
        "fanout_seq": engine.fanout_seq(),
        "host_seq": engine.host_seq(host),
        "fdb_entries": entries,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::server::command::{Command, NetworkRecord, PortRecord};
    use l2pop_model::{Mac, NetworkId, NetworkType};

    fn state_with_ports(ids: &[u128]) -> ServerState {
        let mut state = ServerState::new();
        let network = NetworkId(Uuid::from_u128(1));
        let record = NetworkRecord {
            id: network,
            name: String::new(),
            description: String::new(),
            project_id: "p".into(),
            admin_state_up: true,
            network_type: NetworkType::Vxlan,
            segmentation_id: Some(7),
            physical_network: None,
            created_at: String::new(),
        };
        state
            .execute(&Command::NetworkCreate { network: record })
            .unwrap();
        for (n, id) in ids.iter().enumerate() {
            let port = PortRecord {
                id: PortId(Uuid::from_u128(*id)),
                name: String::new(),
                project_id: "p".into(),
                network_id: network,
                mac: Mac::new([0xfa, 0x16, 0x3e, 0, 0, n as u8 + 1]),
                fixed_ips: Vec::new(),
                device_owner: String::new(),
                device_id: String::new(),
                host: None,
                admin_state_up: true,
                created_at: String::new(),
            };
            state.execute(&Command::PortCreate { port }).unwrap();
        }
        state
    }

    fn nobody() -> Host {
        "nobody".parse().unwrap()
    }

    #[test]
    fn a_mac_names_the_one_port_with_it_bound_to_the_reporting_host() {
        let id = 0x1234_5678_9a00_0000_0000_0000_0000_0001_u128;
        let mut state = state_with_ports(&[id]);
        let host: Host = "compute-1".parse().unwrap();
        let mac = "fa:16:3e:00:00:01";
        // Not bound to the reporting host: not found.
        assert!(resolve_device(&state, mac, &host).is_err());
        state
            .ports
            .values_mut()
            .for_each(|p| p.host = Some(host.clone()));
        assert_eq!(
            resolve_device(&state, mac, &host).unwrap(),
            PortId(Uuid::from_u128(id))
        );
        assert!(resolve_device(&state, "fa:16:3e:00:00:09", &host).is_err());
    }

    #[test]
    fn tap_names_resolve_to_the_one_port_with_that_prefix() {
        let a = 0x1234_5678_9a00_0000_0000_0000_0000_0001_u128;
        let b = 0x1234_5678_9b00_0000_0000_0000_0000_0002_u128;
        let state = state_with_ports(&[a, b]);
        let tap = |id: u128| format!("tap{}", &PortId(Uuid::from_u128(id)).to_string()[..11]);
        assert_eq!(
            resolve_device(&state, &tap(a), &nobody()).unwrap(),
            PortId(Uuid::from_u128(a))
        );
        assert_eq!(
            resolve_device(&state, &tap(b), &nobody()).unwrap(),
            PortId(Uuid::from_u128(b))
        );
        // Ambiguous (both share 12345678-9) and unknown prefixes are not found.
        assert!(resolve_device(&state, "tap12345678-9", &nobody()).is_err());
        assert!(resolve_device(&state, "tapffffffff-ff", &nobody()).is_err());
        assert!(resolve_device(&state, "tapnothex", &nobody()).is_err());
        let full = PortId(Uuid::from_u128(a)).to_string();
        assert_eq!(
            resolve_device(&state, &full, &nobody()).unwrap(),
            PortId(Uuid::from_u128(a))
        );
    }

    #[test]
    fn device_details_answer_only_the_bound_host_in_neutron_shape() {
        let id = 0x1234_5678_9a00_0000_0000_0000_0000_0001_u128;
        let mut state = state_with_ports(&[id]);
        let host: Host = "compute-1".parse().unwrap();
        let tap = format!("tap{}", &PortId(Uuid::from_u128(id)).to_string()[..11]);
        // Not bound yet: the device alone, as Neutron answers an unbound port.
        assert_eq!(device_details(&state, &tap, &host), json!({"device": tap}));
        state
            .ports
            .values_mut()
            .for_each(|p| p.host = Some(host.clone()));
        let details = device_details(&state, &tap, &host);
        assert_eq!(details["device"], json!(tap));
        assert_eq!(details["port_id"], json!(PortId(Uuid::from_u128(id))));
        assert_eq!(details["network_type"], json!("vxlan"));
        assert_eq!(details["segmentation_id"], json!(7));
        assert_eq!(details["mac_address"], json!("fa:16:3e:00:00:01"));
        // Bound elsewhere, or unknown: the device alone.
        let other: Host = "compute-2".parse().unwrap();
        assert_eq!(device_details(&state, &tap, &other), json!({"device": tap}));
        assert_eq!(
            device_details(&state, "tapffffffff-ff", &host),
            json!({"device": "tapffffffff-ff"})
        );
    }
}

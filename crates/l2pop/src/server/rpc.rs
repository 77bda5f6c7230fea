//! Agent → server calls over the bus (oslo.messaging RPC on the l2pop topic), turned into owner
//! jobs exactly like the REST API's `/v2.0/l2pop` endpoints:
//!
//! | method | args | reply |
//! |---|---|---|
//! | `report_state` | `agent_state: {"agent_state": {host, agent_type, binary, start_flag, configurations: {tunneling_ip, tunnel_types, l2pop_network_types}}}`, `time` (Neutron's shape) | `"new"` or `"alive"` |
//! | `update_device_up` | `device` (port id or `tap` + its first 11 characters), `agent_id`, `host`, `refresh_tunnels` | `null` |
//! | `update_device_down` | `device`, `agent_id`, `host` | `{"device", "exists"}` |
//! | `get_fdb_entries` | `host` | `{"host", "stream_id", "fanout_seq", "host_seq", "fdb_entries"}`: every network's full FDB (resync); `stream_id` (16 hex digits) is the first half of every `_unique_id` this server sends |
//! | `get_bgp_export` | `host` (a BGP agent) | `{"host", "stream_id", "fanout_seq", "bgpvpns", "fdb_entries"}`: the l2 BGPVPNs bound to the speakers the BGP agent hosts (admin view) and their networks' full FDBs without the `bgpvpn` extension's entries; what `l2pop bgp` exports, followed on the fanout stream from `fanout_seq` |
//! | `get_stream_positions` | `host` | `{"stream_id", "fanout_seq", "host_seq"}`: where the streams stand (agents compare with their heartbeat to find a message lost at a stream's end) |
//! | `get_devices_details_list_and_failed_devices` | `devices`, `agent_id`, `host` | `{"devices": [details…], "failed_devices": []}` in Neutron's `get_device_details` shape |
//! | `get_device_details` | `device`, `agent_id`, `host` | one device's details |
//!
//! A device's details are what a Neutron L2 agent needs to wire a tap into its network
//! (network id, segment, MAC, fixed IPs, admin state). As in Neutron's ML2 RPC, a device
//! whose port is unknown or not bound to the asking host gets only `{"device": name}`.

use l2pop_bus::{RpcFailure, RpcRequest};
use l2pop_model::Host;
use l2pop_neutron::device::device_details;
use l2pop_neutron::request::{AgentReportBody, DeviceBody, DeviceName, DeviceReply, ReportReply};
use l2pop_neutron::{Caller, NeutronError, Query, Request};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::owner::OwnerHandle;

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

/// The RPC edge of a refusal: a failure whose class is Neutron's exception name.
fn failure(error: NeutronError) -> RpcFailure {
    RpcFailure::new(error.name, error.message)
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
    let parse_error = |e: serde_json::Error| invalid(method, e);
    let answer = match method {
        "report_state" => {
            let args: ReportStateArgs = serde_json::from_value(args).map_err(parse_error)?;
            let state = args.agent_state.agent_state;
            let body = AgentReportBody {
                host: state.host,
                tunneling_ip: state.configurations.tunneling_ip,
                tunnel_types: state.configurations.tunnel_types,
                l2pop_network_types: state.configurations.l2pop_network_types,
                start_flag: state.start_flag,
                agent_type: state.agent_type,
                binary: state.binary,
            };
            let reply = ReportReply::NewOrAlive;
            owner
                .write(Caller::Admin, Request::AgentReport { body, reply })
                .await
        }
        "update_device_up" | "update_device_down" => {
            let args: DeviceArgs = serde_json::from_value(args).map_err(parse_error)?;
            let request = Request::Device {
                device: DeviceName::Agent(args.device),
                up: method == "update_device_up",
                body: DeviceBody {
                    host: args.host,
                    refresh_tunnels: args.refresh_tunnels,
                },
                reply: DeviceReply::Rpc,
            };
            owner.write(Caller::Admin, request).await
        }
        "get_fdb_entries" => {
            let FdbArgs { host } = serde_json::from_value(args).map_err(parse_error)?;
            let query = Query::FullFdb { host, stream_id };
            owner.query(Caller::Admin, query).await
        }
        "get_bgp_export" => {
            let FdbArgs { host } = serde_json::from_value(args).map_err(parse_error)?;
            let query = Query::BgpExport { host, stream_id };
            owner.query(Caller::Admin, query).await
        }
        "get_stream_positions" => {
            let FdbArgs { host } = serde_json::from_value(args).map_err(parse_error)?;
            let query = Query::StreamPositions { host, stream_id };
            owner.query(Caller::Admin, query).await
        }
        // Device details come from the published catalog, without asking the owner.
        "get_devices_details_list_and_failed_devices" => {
            let args: DetailsArgs = serde_json::from_value(args).map_err(parse_error)?;
            let catalog = owner.catalog();
            let devices: Vec<Value> = args
                .devices
                .iter()
                .map(|device| device_details(&catalog, device, &args.host))
                .collect();
            Ok(json!({"devices": devices, "failed_devices": []}))
        }
        "get_device_details" => {
            let args: DetailArgs = serde_json::from_value(args).map_err(parse_error)?;
            Ok(device_details(&owner.catalog(), &args.device, &args.host))
        }
        other => {
            return Err(RpcFailure::new(
                "UnsupportedVersion",
                format!("Endpoint does not support RPC method {other}"),
            ));
        }
    };
    answer.map_err(failure)
}

//! The REST API (axum): Neutron's resources where Neutron has them, networking-bgpvpn's and
//! neutron-dynamic-routing's for BGPVPNs and speakers, and l2pop's own under `/v2.0/l2pop`
//! (agent reports and device state as the agent RPC carries them, BGP agents' learned routes,
//! and every host's desired FDB with provenance). Handlers only authenticate, parse and send
//! a job to the owner task; they never touch the state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use l2pop_bgpvpn::{BgpvpnId, DeviceRoute, GatewayRoute, SpeakerId};
use l2pop_model::{Host, NetworkId, PortId, Uuid};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::auth::{Caller, Tokens};
use super::command::Command;
use super::error::ApiError;
use super::owner::{OwnerHandle, Planned, Read};
use super::requests::{self, TenantNetworks, body};
use super::state::ServerState;
use super::views::desired_table_view;

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct App {
    /// `None` while this process stands by (another server is active).
    pub owner: watch::Receiver<Option<OwnerHandle>>,
    pub tokens: Arc<Tokens>,
    pub tenant: Arc<TenantNetworks>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// A failed server task and the bus connection, for `/healthz`.
    pub health: super::health::Health,
}

type Answer = Result<(StatusCode, Value), ApiError>;

fn respond(answer: Answer) -> Response {
    match answer {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, value)) => (status, axum::Json(value)).into_response(),
        Err(error) => {
            tracing::debug!(%error, "request refused");
            error.into_response()
        }
    }
}

impl App {
    fn caller(&self, headers: &HeaderMap) -> Result<(Caller, OwnerHandle), ApiError> {
        let token = headers
            .get("x-auth-token")
            .and_then(|value| value.to_str().ok());
        let caller = self.tokens.authenticate(token)?;
        let owner =
            self.owner.borrow().clone().ok_or_else(|| {
                ApiError::unavailable("standing by: another l2pop server is active")
            })?;
        Ok((caller, owner))
    }

    async fn write(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        plan: impl FnOnce(&ServerState, &Caller, &mut dyn requests::Fresh) -> Result<Planned, ApiError>
        + Send
        + 'static,
    ) -> Response {
        let answer = async {
            let (caller, owner) = self.caller(headers)?;
            let value = owner.write(caller, Box::new(plan)).await?;
            Ok((status, value))
        };
        respond(answer.await)
    }

    async fn read(
        &self,
        headers: &HeaderMap,
        read: impl FnOnce(&ServerState, &Caller) -> Result<Value, ApiError> + Send + 'static,
    ) -> Response {
        let answer = async {
            let (caller, owner) = self.caller(headers)?;
            let read: Read = Box::new(read);
            Ok((StatusCode::OK, owner.read(caller, read).await?))
        };
        respond(answer.await)
    }
}

/// Parses the request body as JSON; a malformed body is a 400, never a panic.
fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON in request body: {e}")))
}

/// A path id that does not parse names nothing that exists: 404, as Neutron.
fn path_id<T: std::str::FromStr>(resource: &str, text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::not_found(resource, text))
}

/// Neutron list filters: `?key=value` keeps items whose attribute equals the value.
fn filtered(items: impl Iterator<Item = Value>, filters: &HashMap<String, String>) -> Vec<Value> {
    const PAGING: [&str; 5] = ["fields", "limit", "marker", "sort_key", "sort_dir"];
    items
        .filter(|item| {
            filters
                .iter()
                .filter(|(key, _)| !PAGING.contains(&key.as_str()))
                .all(|(key, wanted)| match item.get(key) {
                    Some(Value::String(s)) => s == wanted,
                    Some(Value::Null) => wanted.is_empty(),
                    Some(other) => wanted.parse::<Value>().is_ok_and(|w| &w == other),
                    None => false,
                })
        })
        .collect()
}

/// A write whose answer is `{"<key>": view}` of the resource it created or changed.
fn planned(
    command: Command,
    view: impl FnOnce(&ServerState) -> Result<Value, ApiError> + Send + 'static,
) -> Planned {
    Planned {
        command: Some(command),
        view: Box::new(view),
    }
}

fn deleted(command: Command) -> Planned {
    planned(command, |_| Ok(Value::Null))
}

// ---- networks, subnets, ports ----

/// `{"network": view}` of a network the caller may see (show, and the answer to a write).
fn network_answer(state: &ServerState, id: NetworkId, caller: &Caller) -> Result<Value, ApiError> {
    let network = state
        .visible_network(id, caller)
        .ok_or_else(|| ApiError::not_found("network", id))?;
    Ok(json!({ "network": state.network_view(network, caller) }))
}

fn subnet_answer(state: &ServerState, id: Uuid, caller: &Caller) -> Result<Value, ApiError> {
    let subnet = state
        .subnets
        .get(&id)
        .filter(|s| caller.sees(&s.project_id))
        .ok_or_else(|| ApiError::not_found("subnet", id))?;
    Ok(json!({ "subnet": state.subnet_view(subnet) }))
}

fn port_answer(state: &ServerState, id: PortId, caller: &Caller) -> Result<Value, ApiError> {
    let port = state
        .ports
        .get(&id)
        .filter(|p| caller.sees(&p.project_id))
        .ok_or_else(|| ApiError::not_found("port", id))?;
    Ok(json!({ "port": state.port_view(port, caller) }))
}

async fn networks_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(filters): Query<HashMap<String, String>>,
) -> Response {
    app.read(&headers, move |state, caller| {
        let items = state
            .networks
            .values()
            .filter(|n| caller.sees(&n.project_id))
            .map(|n| state.network_view(n, caller));
        Ok(json!({ "networks": filtered(items, &filters) }))
    })
    .await
}

async fn network_create(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    let tenant = app.tenant.clone();
    app.write(
        &headers,
        StatusCode::CREATED,
        move |state, caller, fresh| {
            let request = body(json_body(&bytes)?, "network")?;
            let (id, command) = state.plan_network_create(caller, request, &tenant, fresh)?;
            let caller = caller.clone();
            Ok(planned(command, move |state| {
                network_answer(state, id, &caller)
            }))
        },
    )
    .await
}

async fn network_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        network_answer(state, path_id("network", &id)?, caller)
    })
    .await
}

async fn network_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        let id: NetworkId = path_id("network", &id)?;
        let request = body(json_body(&bytes)?, "network")?;
        let command = state.plan_network_update(caller, id, request)?;
        let caller = caller.clone();
        Ok(planned(command, move |state| {
            network_answer(state, id, &caller)
        }))
    })
    .await
}

async fn network_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, move |state, caller, _| {
        let id: NetworkId = path_id("network", &id)?;
        Ok(deleted(state.plan_network_delete(caller, id)?))
    })
    .await
}

async fn subnets_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(filters): Query<HashMap<String, String>>,
) -> Response {
    app.read(&headers, move |state, caller| {
        let items = state
            .subnets
            .values()
            .filter(|s| caller.sees(&s.project_id))
            .map(|s| state.subnet_view(s));
        Ok(json!({ "subnets": filtered(items, &filters) }))
    })
    .await
}

async fn subnet_create(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(
        &headers,
        StatusCode::CREATED,
        move |state, caller, fresh| {
            let request = body(json_body(&bytes)?, "subnet")?;
            let (id, command) = state.plan_subnet_create(caller, request, fresh)?;
            let caller = caller.clone();
            Ok(planned(command, move |state| {
                subnet_answer(state, id, &caller)
            }))
        },
    )
    .await
}

async fn subnet_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        subnet_answer(state, path_id("subnet", &id)?, caller)
    })
    .await
}

async fn subnet_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        let id: Uuid = path_id("subnet", &id)?;
        let request = body(json_body(&bytes)?, "subnet")?;
        let command = state.plan_subnet_update(caller, id, request)?;
        let caller = caller.clone();
        Ok(planned(command, move |state| {
            subnet_answer(state, id, &caller)
        }))
    })
    .await
}

async fn ports_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(filters): Query<HashMap<String, String>>,
) -> Response {
    app.read(&headers, move |state, caller| {
        // Narrow by network first when asked: listing one network's ports stays cheap.
        let network: Option<NetworkId> = filters.get("network_id").and_then(|n| n.parse().ok());
        let ids: Vec<PortId> = match network {
            Some(network) => state
                .network_ports
                .get(&network)
                .map(|ports| ports.iter().copied().collect())
                .unwrap_or_default(),
            None => state.ports.keys().copied().collect(),
        };
        let items = ids
            .iter()
            .filter_map(|id| state.ports.get(id))
            .filter(|p| caller.sees(&p.project_id))
            .map(|p| state.port_view(p, caller));
        Ok(json!({ "ports": filtered(items, &filters) }))
    })
    .await
}

async fn port_create(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(
        &headers,
        StatusCode::CREATED,
        move |state, caller, fresh| {
            let request = body(json_body(&bytes)?, "port")?;
            let (id, command) = state.plan_port_create(caller, request, fresh)?;
            let caller = caller.clone();
            Ok(planned(command, move |state| {
                port_answer(state, id, &caller)
            }))
        },
    )
    .await
}

async fn port_show(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    app.read(&headers, move |state, caller| {
        port_answer(state, path_id("port", &id)?, caller)
    })
    .await
}

async fn port_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        let id: PortId = path_id("port", &id)?;
        let request = body(json_body(&bytes)?, "port")?;
        let command = state.plan_port_update(caller, id, request)?;
        let caller = caller.clone();
        Ok(planned(command, move |state| {
            port_answer(state, id, &caller)
        }))
    })
    .await
}

async fn port_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, move |state, caller, _| {
        let id: PortId = path_id("port", &id)?;
        Ok(deleted(state.plan_port_delete(caller, id)?))
    })
    .await
}

// ---- agents ----

async fn agents_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(filters): Query<HashMap<String, String>>,
) -> Response {
    app.read(&headers, move |state, caller| {
        caller.require_admin("get_agent")?;
        let items = state
            .agents
            .values()
            .map(|a| state.agent_view(a))
            .chain(state.bgp_agents.values().map(|a| state.bgp_agent_view(a)));
        Ok(json!({ "agents": filtered(items, &filters) }))
    })
    .await
}

async fn agent_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        caller.require_admin("get_agent")?;
        let id: Uuid = path_id("agent", &id)?;
        let view = state
            .agents
            .values()
            .find(|a| a.id == id)
            .map(|a| state.agent_view(a))
            .or_else(|| {
                state
                    .bgp_agents
                    .values()
                    .find(|a| a.id == id)
                    .map(|a| state.bgp_agent_view(a))
            })
            .ok_or_else(|| ApiError::not_found("agent", id))?;
        Ok(json!({ "agent": view }))
    })
    .await
}

/// `POST /v2.0/agents/{id}/bgp-drinstances`: the BGP agent hosts a speaker.
async fn drinstance_add(
    State(app): State<App>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::CREATED, move |state, caller, _| {
        caller.require_admin("add_bgp_speaker_to_dragent")?;
        let agent: Uuid = path_id("agent", &agent)?;
        let host = state
            .bgp_agent_host(agent)
            .ok_or_else(|| ApiError::not_found("agent", agent))?;
        let request: requests::DrInstanceBody = whole_body(&bytes)?;
        let speaker = request.bgp_speaker_id;
        Ok(planned(
            Command::SpeakerAddAgent {
                speaker_id: speaker,
                host,
            },
            move |_| Ok(json!({ "bgp_speaker_id": speaker })),
        ))
    })
    .await
}

async fn drinstance_remove(
    State(app): State<App>,
    headers: HeaderMap,
    Path((agent, speaker)): Path<(String, String)>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, move |state, caller, _| {
        caller.require_admin("remove_bgp_speaker_from_dragent")?;
        let agent: Uuid = path_id("agent", &agent)?;
        let speaker: SpeakerId = path_id("bgp_speaker", &speaker)?;
        let host = state
            .bgp_agent_host(agent)
            .ok_or_else(|| ApiError::not_found("agent", agent))?;
        Ok(deleted(Command::SpeakerRemoveAgent {
            speaker_id: speaker,
            host,
        }))
    })
    .await
}

async fn drinstances_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path(agent): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        caller.require_admin("list_bgp_speaker_on_dragent")?;
        let agent: Uuid = path_id("agent", &agent)?;
        let host = state
            .bgp_agent_host(agent)
            .ok_or_else(|| ApiError::not_found("agent", agent))?;
        let speakers: Vec<Value> = state
            .speakers
            .values()
            .filter(|s| s.agents.contains(&host))
            .map(|s| state.speaker_view(s))
            .collect();
        Ok(json!({ "bgp_speakers": speakers }))
    })
    .await
}

// ---- BGPVPNs ----

async fn bgpvpns_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(filters): Query<HashMap<String, String>>,
) -> Response {
    app.read(&headers, move |state, caller| {
        let items: Vec<Value> = state
            .bgpvpn()
            .map(|b| {
                b.vpns()
                    .filter(|v| caller.sees(&v.project_id))
                    .map(|v| state.bgpvpn_view(v, caller))
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({ "bgpvpns": filtered(items.into_iter(), &filters) }))
    })
    .await
}

fn bgpvpn_answer(state: &ServerState, id: BgpvpnId, caller: &Caller) -> Result<Value, ApiError> {
    let vpn = state
        .visible_bgpvpn(id, caller)
        .ok_or_else(|| ApiError::not_found("bgpvpn", id))?;
    Ok(json!({ "bgpvpn": state.bgpvpn_view(vpn, caller) }))
}

async fn bgpvpn_create(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(
        &headers,
        StatusCode::CREATED,
        move |state, caller, fresh| {
            caller.require_admin("create_bgpvpn")?;
            let request = body(json_body(&bytes)?, "bgpvpn")?;
            let (id, command) = state.plan_bgpvpn_create(caller, request, fresh)?;
            let caller = caller.clone();
            Ok(planned(command, move |state| {
                bgpvpn_answer(state, id, &caller)
            }))
        },
    )
    .await
}

async fn bgpvpn_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        bgpvpn_answer(state, path_id("bgpvpn", &id)?, caller)
    })
    .await
}

async fn bgpvpn_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        let id: BgpvpnId = path_id("bgpvpn", &id)?;
        let request = body(json_body(&bytes)?, "bgpvpn")?;
        let command = state.plan_bgpvpn_update(caller, id, request)?;
        let caller = caller.clone();
        Ok(planned(command, move |state| {
            bgpvpn_answer(state, id, &caller)
        }))
    })
    .await
}

async fn bgpvpn_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, move |state, caller, _| {
        let id: BgpvpnId = path_id("bgpvpn", &id)?;
        Ok(deleted(state.plan_bgpvpn_delete(caller, id)?))
    })
    .await
}

async fn associations_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path(bgpvpn): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        let bgpvpn: BgpvpnId = path_id("bgpvpn", &bgpvpn)?;
        state
            .visible_bgpvpn(bgpvpn, caller)
            .ok_or_else(|| ApiError::not_found("bgpvpn", bgpvpn))?;
        let items: Vec<Value> = state
            .associations
            .values()
            .filter(|a| a.bgpvpn_id == bgpvpn && caller.sees(&a.project_id))
            .map(|a| state.association_view(a, caller))
            .collect();
        Ok(json!({ "network_associations": items }))
    })
    .await
}

async fn association_create(
    State(app): State<App>,
    headers: HeaderMap,
    Path(bgpvpn): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(
        &headers,
        StatusCode::CREATED,
        move |state, caller, fresh| {
            let bgpvpn: BgpvpnId = path_id("bgpvpn", &bgpvpn)?;
            let request = body(json_body(&bytes)?, "network_association")?;
            let (id, command) = state.plan_association_create(caller, bgpvpn, request, fresh)?;
            let caller = caller.clone();
            Ok(planned(command, move |state| {
                let association = state
                    .associations
                    .get(&id)
                    .ok_or_else(|| ApiError::not_found("network_association", id))?;
                Ok(json!({ "network_association": state.association_view(association, &caller) }))
            }))
        },
    )
    .await
}

async fn association_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path((bgpvpn, id)): Path<(String, String)>,
) -> Response {
    app.read(&headers, move |state, caller| {
        let bgpvpn: BgpvpnId = path_id("bgpvpn", &bgpvpn)?;
        let id: Uuid = path_id("network_association", &id)?;
        state
            .visible_bgpvpn(bgpvpn, caller)
            .ok_or_else(|| ApiError::not_found("bgpvpn", bgpvpn))?;
        let association = state
            .associations
            .get(&id)
            .filter(|a| a.bgpvpn_id == bgpvpn && caller.sees(&a.project_id))
            .ok_or_else(|| ApiError::not_found("network_association", id))?;
        Ok(json!({ "network_association": state.association_view(association, caller) }))
    })
    .await
}

async fn association_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path((bgpvpn, id)): Path<(String, String)>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, move |state, caller, _| {
        let bgpvpn: BgpvpnId = path_id("bgpvpn", &bgpvpn)?;
        let id: Uuid = path_id("network_association", &id)?;
        Ok(deleted(state.plan_association_delete(caller, bgpvpn, id)?))
    })
    .await
}

// ---- BGP speakers ----

async fn speakers_list(State(app): State<App>, headers: HeaderMap) -> Response {
    app.read(&headers, move |state, caller| {
        caller.require_admin("get_bgp_speaker")?;
        let items: Vec<Value> = state
            .speakers
            .values()
            .map(|s| state.speaker_view(s))
            .collect();
        Ok(json!({ "bgp_speakers": items }))
    })
    .await
}

fn speaker_answer(state: &ServerState, id: SpeakerId) -> Result<Value, ApiError> {
    let speaker = state
        .speakers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("bgp_speaker", id))?;
    Ok(json!({ "bgp_speaker": state.speaker_view(speaker) }))
}

async fn speaker_create(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(
        &headers,
        StatusCode::CREATED,
        move |state, caller, fresh| {
            caller.require_admin("create_bgp_speaker")?;
            let request = body(json_body(&bytes)?, "bgp_speaker")?;
            let (id, command) = state.plan_speaker_create(caller, request, fresh)?;
            Ok(planned(command, move |state| speaker_answer(state, id)))
        },
    )
    .await
}

async fn speaker_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        caller.require_admin("get_bgp_speaker")?;
        speaker_answer(state, path_id("bgp_speaker", &id)?)
    })
    .await
}

async fn speaker_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        let id: SpeakerId = path_id("bgp_speaker", &id)?;
        let request = body(json_body(&bytes)?, "bgp_speaker")?;
        let command = state.plan_speaker_update(caller, id, request)?;
        Ok(planned(command, move |state| speaker_answer(state, id)))
    })
    .await
}

async fn speaker_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, move |state, caller, _| {
        caller.require_admin("delete_bgp_speaker")?;
        let id: SpeakerId = path_id("bgp_speaker", &id)?;
        if !state.speakers.contains_key(&id) {
            return Err(ApiError::not_found("bgp_speaker", id));
        }
        Ok(deleted(Command::SpeakerDelete { id }))
    })
    .await
}

async fn speaker_vpn(
    app: App,
    headers: HeaderMap,
    id: String,
    bytes: Bytes,
    add: bool,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        let id: SpeakerId = path_id("bgp_speaker", &id)?;
        let request: requests::SpeakerVpnBody = whole_body(&bytes)?;
        let bgpvpn = request.bgpvpn_id;
        let command = state.plan_speaker_vpn(caller, id, request, add)?;
        Ok(planned(command, move |_| {
            Ok(json!({ "bgpvpn_id": bgpvpn }))
        }))
    })
    .await
}

async fn speaker_add_vpn(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    speaker_vpn(app, headers, id, bytes, true).await
}

async fn speaker_remove_vpn(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    speaker_vpn(app, headers, id, bytes, false).await
}

// ---- l2pop: agent reports, device state, BGP agents' routes, desired FDB ----

/// `POST /v2.0/l2pop/agents`: an L2 agent's `report_state` (the bus RPC carries the same).
async fn l2pop_agent_report(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, fresh| {
        caller.require_admin("l2pop:report_state")?;
        let request: requests::AgentReportBody = body(json_body(&bytes)?, "agent")?;
        let host = request.host.clone();
        let command = state.plan_agent_report(request, fresh);
        Ok(Planned {
            command,
            view: Box::new(move |state| {
                let agent = state
                    .agents
                    .get(&host)
                    .ok_or_else(|| ApiError::not_found("agent", &host))?;
                Ok(json!({ "agent": state.agent_view(agent) }))
            }),
        })
    })
    .await
}

async fn l2pop_device(
    app: App,
    headers: HeaderMap,
    port: String,
    bytes: Bytes,
    up: bool,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, _| {
        caller.require_admin("l2pop:update_device")?;
        let port: PortId = path_id("port", &port)?;
        let request: requests::DeviceBody = body(json_body(&bytes)?, "device")?;
        let command = state.plan_device(port, up, request)?;
        let caller = caller.clone();
        Ok(planned(command, move |state| {
            port_answer(state, port, &caller)
        }))
    })
    .await
}

async fn l2pop_device_up(
    State(app): State<App>,
    headers: HeaderMap,
    Path(port): Path<String>,
    bytes: Bytes,
) -> Response {
    l2pop_device(app, headers, port, bytes, true).await
}

async fn l2pop_device_down(
    State(app): State<App>,
    headers: HeaderMap,
    Path(port): Path<String>,
    bytes: Bytes,
) -> Response {
    l2pop_device(app, headers, port, bytes, false).await
}

fn host_param(text: &str) -> Result<Host, ApiError> {
    Host::new(text).map_err(|e| ApiError::invalid("host", text, e))
}

/// `PUT /v2.0/l2pop/bgp-agents/{host}`: a BGP agent's state (up/down, restart).
async fn bgp_agent_report(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |state, caller, fresh| {
        caller.require_admin("l2pop:bgp_agent")?;
        let host = host_param(&host)?;
        let request = body(json_body(&bytes)?, "bgp_agent")?;
        let command = state.plan_bgp_agent_report(host.clone(), request, fresh);
        Ok(planned(command, move |state| {
            let agent = state
                .bgp_agents
                .get(&host)
                .ok_or_else(|| ApiError::not_found("agent", &host))?;
            Ok(json!({ "agent": state.bgp_agent_view(agent) }))
        }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaysBody {
    gateways: Vec<GatewayRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesBody {
    devices: Vec<DeviceRoute>,
}

/// Parses a whole JSON body (no resource key) into `T`, naming the offending attribute.
fn whole_body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    requests::tracked(json_body(bytes)?)
}

/// `POST /v2.0/l2pop/bgp-agents/{host}/gateways`: EVPN type-3 routes learned or withdrawn.
async fn bgp_gateways(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |_, caller, _| {
        caller.require_admin("l2pop:bgp_routes")?;
        let host = host_param(&host)?;
        let request: GatewaysBody = whole_body(&bytes)?;
        let count = request.gateways.len();
        Ok(planned(
            Command::BgpGateways(l2pop_bgpvpn::GatewayRoutes {
                host,
                gateways: request.gateways,
            }),
            move |_| Ok(json!({ "accepted": count })),
        ))
    })
    .await
}

/// `POST /v2.0/l2pop/bgp-agents/{host}/devices`: EVPN type-2 routes learned or withdrawn.
async fn bgp_devices(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, move |_, caller, _| {
        caller.require_admin("l2pop:bgp_routes")?;
        let host = host_param(&host)?;
        let request: DevicesBody = whole_body(&bytes)?;
        let count = request.devices.len();
        Ok(planned(
            Command::BgpDevices(l2pop_bgpvpn::DeviceRoutes {
                host,
                devices: request.devices,
            }),
            move |_| Ok(json!({ "accepted": count })),
        ))
    })
    .await
}

/// `GET /v2.0/l2pop/hosts/{host}/fdb`: the host's desired table with provenance.
async fn host_fdb(
    State(app): State<App>,
    headers: HeaderMap,
    Path(host): Path<String>,
) -> Response {
    app.read(&headers, move |state, caller| {
        caller.require_admin("l2pop:get_fdb")?;
        let host = host_param(&host)?;
        let engine = state.engine();
        let table = engine.desired_table(&host);
        Ok(desired_table_view(
            &table,
            engine.fanout_seq(),
            engine.host_seq(&host),
        ))
    })
    .await
}

// ---- operations ----

async fn metrics_text(State(app): State<App>) -> Response {
    match &app.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `{"role": "active" | "standby", "bus": "up" | "down" | null, "failed": null | why}`: 503
/// once a server task has failed (the server is stopping), else 200.
async fn healthz(State(app): State<App>) -> Response {
    let role = if app.owner.borrow().is_some() {
        "active"
    } else {
        "standby"
    };
    let bus = app.health.bus_up().map(|up| if up { "up" } else { "down" });
    let failed = app.health.failure();
    let status = if failed.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(json!({ "role": role, "bus": bus, "failed": failed })),
    )
        .into_response()
}

async fn openapi() -> Response {
    axum::Json(super::openapi::document()).into_response()
}

/// Counts and times every request by route template.
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "l2pop_api_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The largest request body taken (axum's default, made explicit): a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Gives every error answer Neutron's body: the router's own answers (no route, a method the
/// route does not take, a body over [`MAX_BODY_BYTES`]) come without one. Answers that already
/// are JSON (every [`ApiError`]) pass unchanged; other headers (`Allow`) are kept.
async fn neutron_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => format!("The resource could not be found: no route {path}."),
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("The method {method} is not allowed for {path}.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("Request is too large: a body may be at most {MAX_BODY_BYTES} bytes.")
        }
        _ => {
            let (_, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let mut error = ApiError::http(status, String::from_utf8_lossy(&text).into_owned());
            if error.message.is_empty() {
                error.message = status.to_string();
            }
            return error.into_response();
        }
    };
    let (mut parts, _) = response.into_parts();
    let answer = ApiError::http(status, message).into_response();
    let (answer_parts, body) = answer.into_parts();
    for name in [
        axum::http::header::CONTENT_TYPE,
        axum::http::header::CONTENT_LENGTH,
    ] {
        parts.headers.remove(&name);
        if let Some(value) = answer_parts.headers.get(&name) {
            parts.headers.insert(name, value.clone());
        }
    }
    Response::from_parts(parts, body)
}

async fn no_route(request: Request) -> Response {
    ApiError::http(
        StatusCode::NOT_FOUND,
        format!(
            "The resource could not be found: no route {}.",
            request.uri().path()
        ),
    )
    .into_response()
}

/// Every route of the API. `super::openapi` documents the same list (a test checks).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v2.0/networks"),
    ("POST", "/v2.0/networks"),
    ("GET", "/v2.0/networks/{id}"),
    ("PUT", "/v2.0/networks/{id}"),
    ("DELETE", "/v2.0/networks/{id}"),
    ("GET", "/v2.0/subnets"),
    ("POST", "/v2.0/subnets"),
    ("GET", "/v2.0/subnets/{id}"),
    ("PUT", "/v2.0/subnets/{id}"),
    ("GET", "/v2.0/ports"),
    ("POST", "/v2.0/ports"),
    ("GET", "/v2.0/ports/{id}"),
    ("PUT", "/v2.0/ports/{id}"),
    ("DELETE", "/v2.0/ports/{id}"),
    ("GET", "/v2.0/agents"),
    ("GET", "/v2.0/agents/{id}"),
    ("GET", "/v2.0/agents/{id}/bgp-drinstances"),
    ("POST", "/v2.0/agents/{id}/bgp-drinstances"),
    ("DELETE", "/v2.0/agents/{id}/bgp-drinstances/{speaker_id}"),
    ("GET", "/v2.0/bgpvpn/bgpvpns"),
    ("POST", "/v2.0/bgpvpn/bgpvpns"),
    ("GET", "/v2.0/bgpvpn/bgpvpns/{id}"),
    ("PUT", "/v2.0/bgpvpn/bgpvpns/{id}"),
    ("DELETE", "/v2.0/bgpvpn/bgpvpns/{id}"),
    ("GET", "/v2.0/bgpvpn/bgpvpns/{id}/network_associations"),
    ("POST", "/v2.0/bgpvpn/bgpvpns/{id}/network_associations"),
    (
        "GET",
        "/v2.0/bgpvpn/bgpvpns/{id}/network_associations/{association_id}",
    ),
    (
        "DELETE",
        "/v2.0/bgpvpn/bgpvpns/{id}/network_associations/{association_id}",
    ),
    ("GET", "/v2.0/bgp-speakers"),
    ("POST", "/v2.0/bgp-speakers"),
    ("GET", "/v2.0/bgp-speakers/{id}"),
    ("PUT", "/v2.0/bgp-speakers/{id}"),
    ("DELETE", "/v2.0/bgp-speakers/{id}"),
    ("PUT", "/v2.0/bgp-speakers/{id}/add_bgp_vpn"),
    ("PUT", "/v2.0/bgp-speakers/{id}/remove_bgp_vpn"),
    ("POST", "/v2.0/l2pop/agents"),
    ("POST", "/v2.0/l2pop/devices/{port_id}/up"),
    ("POST", "/v2.0/l2pop/devices/{port_id}/down"),
    ("PUT", "/v2.0/l2pop/bgp-agents/{host}"),
    ("POST", "/v2.0/l2pop/bgp-agents/{host}/gateways"),
    ("POST", "/v2.0/l2pop/bgp-agents/{host}/devices"),
    ("GET", "/v2.0/l2pop/hosts/{host}/fdb"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
];

pub fn router(app: App) -> Router {
    Router::new()
        .route("/v2.0/networks", get(networks_list).post(network_create))
        .route(
            "/v2.0/networks/{id}",
            get(network_show).put(network_update).delete(network_delete),
        )
        .route("/v2.0/subnets", get(subnets_list).post(subnet_create))
        .route("/v2.0/subnets/{id}", get(subnet_show).put(subnet_update))
        .route("/v2.0/ports", get(ports_list).post(port_create))
        .route(
            "/v2.0/ports/{id}",
            get(port_show).put(port_update).delete(port_delete),
        )
        .route("/v2.0/agents", get(agents_list))
        .route("/v2.0/agents/{id}", get(agent_show))
        .route(
            "/v2.0/agents/{id}/bgp-drinstances",
            get(drinstances_list).post(drinstance_add),
        )
        .route(
            "/v2.0/agents/{id}/bgp-drinstances/{speaker_id}",
            axum::routing::delete(drinstance_remove),
        )
        .route(
            "/v2.0/bgpvpn/bgpvpns",
            get(bgpvpns_list).post(bgpvpn_create),
        )
        .route(
            "/v2.0/bgpvpn/bgpvpns/{id}",
            get(bgpvpn_show).put(bgpvpn_update).delete(bgpvpn_delete),
        )
        .route(
            "/v2.0/bgpvpn/bgpvpns/{id}/network_associations",
            get(associations_list).post(association_create),
        )
        .route(
            "/v2.0/bgpvpn/bgpvpns/{id}/network_associations/{association_id}",
            get(association_show).delete(association_delete),
        )
        .route(
            "/v2.0/bgp-speakers",
            get(speakers_list).post(speaker_create),
        )
        .route(
            "/v2.0/bgp-speakers/{id}",
            get(speaker_show).put(speaker_update).delete(speaker_delete),
        )
        .route("/v2.0/bgp-speakers/{id}/add_bgp_vpn", put(speaker_add_vpn))
        .route(
            "/v2.0/bgp-speakers/{id}/remove_bgp_vpn",
            put(speaker_remove_vpn),
        )
        .route("/v2.0/l2pop/agents", post(l2pop_agent_report))
        .route("/v2.0/l2pop/devices/{port_id}/up", post(l2pop_device_up))
        .route(
            "/v2.0/l2pop/devices/{port_id}/down",
            post(l2pop_device_down),
        )
        .route("/v2.0/l2pop/bgp-agents/{host}", put(bgp_agent_report))
        .route("/v2.0/l2pop/bgp-agents/{host}/gateways", post(bgp_gateways))
        .route("/v2.0/l2pop/bgp-agents/{host}/devices", post(bgp_devices))
        .route("/v2.0/l2pop/hosts/{host}/fdb", get(host_fdb))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(neutron_errors))
        .layer(middleware::from_fn(observe))
        .with_state(app)
}

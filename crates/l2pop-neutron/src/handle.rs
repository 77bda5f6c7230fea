//! The owner's two entry points: [`NeutronState::handle`] takes one [`Request`] through planning,
//! execution, the liveness it moves and the rendering of its answer; [`NeutronState::query`]
//! answers a [`Query`] that needs the engine. Both are synchronous and deterministic given the
//! [`Fresh`] values; the owner task around them only logs, publishes and replies.

use l2pop_bgpvpn::{BgpvpnId, SpeakerId};
use l2pop_model::{FdbEntries, Host, NetworkId, Notification, PortId, Uuid};
use serde_json::{Value, json};

use crate::command::{Command, SegmentId, SubnetId};
use crate::device::resolve_device;
use crate::error::NeutronError;
use crate::policy::Caller;
use crate::request::{DeviceName, DeviceReply, Fresh, Query, ReportReply, Request, TenantNetworks};
use crate::state::NeutronState;
use crate::time::Time;
use crate::view::{bgpvpn_view, desired_table_view};

/// What a write answers once its command executed.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Network(NetworkId),
    Subnet(SubnetId),
    Segment(SegmentId),
    Port(PortId),
    Bgpvpn(BgpvpnId),
    Association(Uuid),
    Speaker(SpeakerId),
    Agent(Host),
    BgpAgent(Host),
    Router(l2pop_model::RouterId),
    /// A bulk create: `{"<collection>": [each item's resource]}`.
    Bulk(&'static str, Vec<Answer>),
    /// Known when planning (`{"accepted": n}`, `"new"`, a delete's nothing).
    Fixed(Value),
}

/// A planned write: the command to log and execute (none for a request that changes nothing
/// durable), and what to answer.
#[derive(Clone, Debug)]
pub struct Planned {
    pub command: Option<Command>,
    pub answer: Answer,
}

impl Planned {
    fn new(command: Command, answer: Answer) -> Self {
        Planned {
            command: Some(command),
            answer,
        }
    }

    fn deleted(command: Command) -> Self {
        Planned::new(command, Answer::Fixed(Value::Null))
    }
}

/// One handled write.
#[derive(Debug)]
pub struct Outcome {
    /// The command executed (to be logged), if any.
    pub command: Option<Command>,
    pub notifications: Vec<Notification>,
    /// The rendered answer. An error here leaves the command executed: it must still be logged.
    pub answer: Result<Value, NeutronError>,
}

impl NeutronState {
    /// A whole write: plan, execute (all or nothing), move the reporting agent's liveness, render
    /// the answer. On `Err` nothing changed.
    pub fn handle(
        &mut self,
        caller: &Caller,
        request: Request,
        tenant: &TenantNetworks,
        fresh: &mut dyn Fresh,
    ) -> Result<Outcome, NeutronError> {
        let reporter = match &request {
            Request::AgentReport { body, .. } => Some((body.host.clone(), false)),
            Request::BgpAgentReport(host, _) => Some((host.clone(), true)),
            _ => None,
        };
        let (command, answer, notifications) = match request {
            Request::Bulk { collection, items } => {
                self.bulk(caller, collection, items, tenant, fresh)?
            }
            request => {
                let Planned { command, answer } = self.plan(caller, request, tenant, fresh)?;
                let notifications = match &command {
                    Some(command) => self.execute(command)?,
                    None => Vec::new(),
                };
                (command, answer, notifications)
            }
        };
        let now = fresh.now();
        match reporter {
            Some((host, false)) => self.heartbeat(&host, now),
            Some((host, true)) => self.bgp_heartbeat(&host, now),
            None => {}
        }
        Ok(Outcome {
            command,
            notifications,
            answer: self.render(caller, answer, now),
        })
    }

    /// A bulk create, all or none: each item is planned against the state that the items before
    /// it made (so ids, MACs, addresses and segmentation ids they took are taken) and executed;
    /// if an item is refused, those before it are taken back ([`NeutronState::roll_back`]) and
    /// the error names the item. One command is logged for all of them.
    fn bulk(
        &mut self,
        caller: &Caller,
        collection: &'static str,
        items: Vec<Request>,
        tenant: &TenantNetworks,
        fresh: &mut dyn Fresh,
    ) -> Result<(Option<Command>, Answer, Vec<Notification>), NeutronError> {
        let saved = self.save_for_rollback();
        let mut commands = Vec::with_capacity(items.len());
        let mut answers = Vec::with_capacity(items.len());
        let mut notifications = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let creates = matches!(
                item,
                Request::NetworkCreate(_) | Request::SubnetCreate(_) | Request::PortCreate(_)
            );
            let step = if creates {
                self.plan(caller, item, tenant, fresh).and_then(|planned| {
                    let command = planned.command.ok_or_else(|| {
                        NeutronError::bad_request("a bulk create item planned no command")
                    })?;
                    let sent = self.execute_inner(&command)?;
                    Ok((command, planned.answer, sent))
                })
            } else {
                Err(NeutronError::bad_request(
                    "only creates may be sent in bulk",
                ))
            };
            match step {
                Ok((command, answer, sent)) => {
                    commands.push(command);
                    answers.push(answer);
                    notifications.extend(sent);
                }
                Err(error) => {
                    self.roll_back(&commands, saved);
                    return Err(error.in_item(collection, index));
                }
            }
        }
        self.executed += 1;
        self.publish_extension_maps();
        Ok((
            Some(Command::Bulk { commands }),
            Answer::Bulk(collection, answers),
            notifications,
        ))
    }

    /// Plans `request` against the state (see `plan`); the state is not changed.
    pub fn plan(
        &self,
        caller: &Caller,
        request: Request,
        tenant: &TenantNetworks,
        fresh: &mut dyn Fresh,
    ) -> Result<Planned, NeutronError> {
        Ok(match request {
            Request::NetworkCreate(body) => {
                let (id, command) = self.plan_network_create(caller, body, tenant, fresh)?;
                Planned::new(command, Answer::Network(id))
            }
            Request::NetworkUpdate(id, body) => Planned::new(
                self.plan_network_update(caller, id, body)?,
                Answer::Network(id),
            ),
            Request::NetworkDelete(id) => Planned::deleted(self.plan_network_delete(caller, id)?),
            Request::SubnetCreate(body) => {
                let (id, command) = self.plan_subnet_create(caller, body, fresh)?;
                Planned::new(command, Answer::Subnet(id))
            }
            Request::SubnetUpdate(id, body) => Planned::new(
                self.plan_subnet_update(caller, id, body)?,
                Answer::Subnet(id),
            ),
            Request::SegmentCreate(body) => {
                let (id, command) = self.plan_segment_create(caller, body, tenant, fresh)?;
                Planned::new(command, Answer::Segment(id))
            }
            Request::SegmentUpdate(id, body) => Planned::new(
                self.plan_segment_update(caller, id, body)?,
                Answer::Segment(id),
            ),
            Request::SegmentDelete(id) => Planned::deleted(self.plan_segment_delete(caller, id)?),
            Request::PortCreate(body) => {
                let (id, command) = self.plan_port_create(caller, body, fresh)?;
                Planned::new(command, Answer::Port(id))
            }
            Request::PortUpdate(id, body) => {
                Planned::new(self.plan_port_update(caller, id, body)?, Answer::Port(id))
            }
            Request::SubnetDelete(id) => Planned::deleted(self.plan_subnet_delete(caller, id)?),
            Request::PortDelete(id) => Planned::deleted(self.plan_port_delete(caller, id)?),
            Request::Bulk { .. } => {
                return Err(NeutronError::bad_request(
                    "a bulk create is handled whole (NeutronState::handle), not planned alone",
                ));
            }
            Request::AgentReport { body, reply } => {
                caller.require_admin("l2pop:report_state")?;
                let host = body.host.clone();
                let answer = match reply {
                    ReportReply::Agent => Answer::Agent(host.clone()),
                    ReportReply::NewOrAlive => {
                        let known = self.catalog.agents.contains_key(&host);
                        Answer::Fixed(json!(if known { "alive" } else { "new" }))
                    }
                };
                Planned {
                    command: self.plan_agent_report(body, fresh),
                    answer,
                }
            }
            Request::AgentUpdate(id, body) => self.plan_agent_update(caller, id, body)?,
            Request::Device {
                device,
                up,
                body,
                reply,
            } => {
                caller.require_admin("l2pop:update_device")?;
                let (port, name) = match device {
                    DeviceName::Port(port) => (Ok(port), port.to_string()),
                    DeviceName::Agent(name) => {
                        (resolve_device(&self.catalog, &name, &body.host), name)
                    }
                };
                let port = match (port, up, reply) {
                    (Ok(port), _, _) if self.catalog.ports.contains_key(&port) => port,
                    // Neutron's update_device_down answers an unknown device, it does not fail.
                    (_, false, DeviceReply::Rpc) => {
                        return Ok(Planned {
                            command: None,
                            answer: Answer::Fixed(json!({"device": name, "exists": false})),
                        });
                    }
                    (Ok(port), _, _) => return Err(NeutronError::not_found("port", port)),
                    (Err(error), _, _) => return Err(error),
                };
                let command = self.plan_device(port, up, body)?;
                let answer = match (reply, up) {
                    (DeviceReply::Port, _) => Answer::Port(port),
                    (DeviceReply::Rpc, true) => Answer::Fixed(Value::Null),
                    (DeviceReply::Rpc, false) => {
                        Answer::Fixed(json!({"device": name, "exists": true}))
                    }
                };
                Planned::new(command, answer)
            }
            Request::BgpvpnCreate(body) => {
                let (id, command) = self.plan_bgpvpn_create(caller, body, fresh)?;
                Planned::new(command, Answer::Bgpvpn(id))
            }
            Request::BgpvpnUpdate(id, body) => Planned::new(
                self.plan_bgpvpn_update(caller, id, body)?,
                Answer::Bgpvpn(id),
            ),
            Request::BgpvpnDelete(id) => Planned::deleted(self.plan_bgpvpn_delete(caller, id)?),
            Request::AssociationCreate(bgpvpn, body) => {
                let (id, command) = self.plan_association_create(caller, bgpvpn, body, fresh)?;
                Planned::new(command, Answer::Association(id))
            }
            Request::AssociationDelete(bgpvpn, id) => {
                Planned::deleted(self.plan_association_delete(caller, bgpvpn, id)?)
            }
            Request::SpeakerCreate(body) => {
                let (id, command) = self.plan_speaker_create(caller, body, fresh)?;
                Planned::new(command, Answer::Speaker(id))
            }
            Request::SpeakerUpdate(id, body) => Planned::new(
                self.plan_speaker_update(caller, id, body)?,
                Answer::Speaker(id),
            ),
            Request::SpeakerDelete(id) => {
                caller.require_admin("delete_bgp_speaker")?;
                if !self.catalog.speakers.contains_key(&id) {
                    return Err(NeutronError::not_found("bgp_speaker", id));
                }
                Planned::deleted(Command::SpeakerDelete { id })
            }
            Request::SpeakerVpn { speaker, body, add } => {
                let bgpvpn = body.bgpvpn_id;
                let command = self.plan_speaker_vpn(caller, speaker, body, add)?;
                Planned::new(command, Answer::Fixed(json!({ "bgpvpn_id": bgpvpn })))
            }
            Request::DrInstanceAdd { agent, body } => {
                caller.require_admin("add_bgp_speaker_to_dragent")?;
                let host = self
                    .catalog
                    .bgp_agent_host(agent)
                    .ok_or_else(|| NeutronError::not_found("agent", agent))?;
                let speaker = body.bgp_speaker_id;
                Planned::new(
                    Command::SpeakerAddAgent {
                        speaker_id: speaker,
                        host,
                    },
                    Answer::Fixed(json!({ "bgp_speaker_id": speaker })),
                )
            }
            Request::DrInstanceRemove { agent, speaker } => {
                caller.require_admin("remove_bgp_speaker_from_dragent")?;
                let host = self
                    .catalog
                    .bgp_agent_host(agent)
                    .ok_or_else(|| NeutronError::not_found("agent", agent))?;
                Planned::deleted(Command::SpeakerRemoveAgent {
                    speaker_id: speaker,
                    host,
                })
            }
            Request::BgpAgentReport(host, body) => {
                caller.require_admin("l2pop:bgp_agent")?;
                Planned {
                    command: self.plan_bgp_agent_report(host.clone(), body, fresh),
                    answer: Answer::BgpAgent(host),
                }
            }
            Request::BgpGateways(routes) => {
                caller.require_admin("l2pop:bgp_routes")?;
                let count = routes.gateways.len();
                Planned::new(
                    Command::BgpGateways(routes),
                    Answer::Fixed(json!({ "accepted": count })),
                )
            }
            Request::BgpDevices(routes) => {
                caller.require_admin("l2pop:bgp_routes")?;
                let count = routes.devices.len();
                Planned::new(
                    Command::BgpDevices(routes),
                    Answer::Fixed(json!({ "accepted": count })),
                )
            }
            Request::RouterPut(record) => {
                let id = record.id;
                Planned {
                    command: self.plan_router_put(caller, record)?,
                    answer: Answer::Router(id),
                }
            }
            Request::RouterDelete(id) => Planned::deleted(self.plan_router_delete(caller, id)?),
            Request::BgpEndOfRib(host) => {
                caller.require_admin("l2pop:bgp_routes")?;
                Planned::new(
                    Command::BgpEndOfRib { host },
                    Answer::Fixed(json!({ "end_of_rib": true })),
                )
            }
        })
    }

    /// The answer to a write, rendered from the state right after it executed.
    pub fn render(
        &self,
        caller: &Caller,
        answer: Answer,
        now: Time,
    ) -> Result<Value, NeutronError> {
        let catalog = &self.catalog;
        match answer {
            Answer::Network(id) => catalog.network_answer(id, caller),
            Answer::Subnet(id) => catalog.subnet_answer(id, caller),
            Answer::Segment(id) => catalog.segment_answer(id, caller),
            Answer::Port(id) => catalog.port_answer(id, caller),
            Answer::Bgpvpn(id) => self.bgpvpn_answer(id, caller),
            Answer::Association(id) => {
                let association = catalog
                    .associations
                    .get(&id)
                    .ok_or_else(|| NeutronError::not_found("network_association", id))?;
                Ok(json!({ "network_association": catalog.association_view(association, caller) }))
            }
            Answer::Speaker(id) => catalog.speaker_answer(id),
            Answer::Router(id) => catalog.router_answer(id, caller),
            Answer::Agent(host) => {
                let agent = catalog
                    .agents
                    .get(&host)
                    .ok_or_else(|| NeutronError::not_found("agent", &host))?;
                Ok(json!({ "agent": catalog.agent_view(agent, now) }))
            }
            Answer::BgpAgent(host) => {
                let agent = catalog
                    .bgp_agents
                    .get(&host)
                    .ok_or_else(|| NeutronError::not_found("agent", &host))?;
                Ok(json!({ "agent": catalog.bgp_agent_view(agent) }))
            }
            Answer::Bulk(collection, answers) => {
                let key = collection.strip_suffix('s').unwrap_or(collection);
                let items = answers
                    .into_iter()
                    .map(|answer| {
                        let mut one = self.render(caller, answer, now)?;
                        Ok(one.get_mut(key).map(Value::take).unwrap_or(one))
                    })
                    .collect::<Result<Vec<Value>, NeutronError>>()?;
                Ok(json!({ collection: items }))
            }
            Answer::Fixed(value) => Ok(value),
        }
    }

    /// Neutron's agent update. An L2 agent keeps and shows both attributes (Neutron's
    /// l2population ignores `admin_state_up`); a BGP agent's `admin_state_up` is the BGPVPN
    /// extension's (case 6b), so it goes there as a report keeping the agent's liveness.
    fn plan_agent_update(
        &self,
        caller: &Caller,
        id: Uuid,
        body: crate::request::AgentUpdateBody,
    ) -> Result<Planned, NeutronError> {
        caller.require_admin("update_agent")?;
        crate::request::check_len(
            "description",
            body.description.as_deref(),
            crate::request::DESCRIPTION_MAX_LEN,
        )?;
        if let Some(agent) = self.catalog.agents.values().find(|a| a.id == id) {
            let host = agent.host.clone();
            return Ok(Planned::new(
                Command::AgentUpdate {
                    host: host.clone(),
                    admin_state_up: body.admin_state_up,
                    description: body.description,
                },
                Answer::Agent(host),
            ));
        }
        let agent = self
            .catalog
            .bgp_agents
            .values()
            .find(|a| a.id == id)
            .ok_or_else(|| NeutronError::not_found("agent", id))?;
        if let Some(description) = body.description {
            return Err(NeutronError::invalid(
                "description",
                description,
                "is not kept for BGP agents",
            ));
        }
        let state = self.catalog.bgpvpn.agents.get(&agent.host);
        let alive = state.is_none_or(|s| s.alive);
        let admin_state_up = body
            .admin_state_up
            .unwrap_or_else(|| state.is_none_or(|s| s.admin_state_up));
        let unchanged = state.is_some_and(|s| s.admin_state_up == admin_state_up);
        Ok(Planned {
            command: (!unchanged).then(|| Command::BgpAgentReport {
                id,
                at: agent.heartbeat_at.to_string(),
                report: l2pop_bgpvpn::BgpAgentReport {
                    host: agent.host.clone(),
                    admin_state_up,
                    alive,
                    start_flag: false,
                    graceful_restart: false,
                },
            }),
            answer: Answer::BgpAgent(agent.host.clone()),
        })
    }

    fn bgpvpn_answer(&self, id: BgpvpnId, caller: &Caller) -> Result<Value, NeutronError> {
        let vpn = self
            .visible_bgpvpn(id, caller)
            .ok_or_else(|| NeutronError::not_found("bgpvpn", id))?;
        Ok(json!({ "bgpvpn": bgpvpn_view(vpn, caller) }))
    }

    /// Answers a read that needs the engine or the BGPVPN extension.
    pub fn query(&self, caller: &Caller, query: Query) -> Result<Value, NeutronError> {
        let catalog = &self.catalog;
        match query {
            Query::BgpvpnList => {
                let items: Vec<Value> = self
                    .bgpvpn()
                    .map(|b| {
                        b.vpns()
                            .filter(|v| caller.sees(&v.project_id))
                            .map(|v| bgpvpn_view(v, caller))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(json!({ "bgpvpns": items }))
            }
            Query::BgpvpnShow(id) => self.bgpvpn_answer(id, caller),
            Query::AssociationList(bgpvpn) => {
                self.visible_bgpvpn(bgpvpn, caller)
                    .ok_or_else(|| NeutronError::not_found("bgpvpn", bgpvpn))?;
                let items: Vec<Value> = catalog
                    .associations
                    .values()
                    .filter(|a| a.bgpvpn_id == bgpvpn && caller.sees(&a.project_id))
                    .map(|a| catalog.association_view(a, caller))
                    .collect();
                Ok(json!({ "network_associations": items }))
            }
            Query::AssociationShow(bgpvpn, id) => {
                self.visible_bgpvpn(bgpvpn, caller)
                    .ok_or_else(|| NeutronError::not_found("bgpvpn", bgpvpn))?;
                let association = catalog
                    .associations
                    .get(&id)
                    .filter(|a| a.bgpvpn_id == bgpvpn && caller.sees(&a.project_id))
                    .ok_or_else(|| NeutronError::not_found("network_association", id))?;
                Ok(json!({ "network_association": catalog.association_view(association, caller) }))
            }
            Query::HostFdb(host) => {
                caller.require_admin("l2pop:get_fdb")?;
                let engine = self.engine();
                let table = engine.desired_table(&host);
                Ok(desired_table_view(
                    &table,
                    engine.fanout_seq(),
                    engine.host_seq(&host),
                ))
            }
            Query::FullFdb { host, stream_id } => {
                caller.require_admin("l2pop:get_fdb")?;
                let engine = self.engine();
                let mut entries = FdbEntries::default();
                for network in engine.networks_of(&host) {
                    if let Ok(full) = engine.full_fdb(&host, network, None) {
                        entries.0.extend(full.fdb_entries.0);
                    }
                }
                Ok(json!({
                    "host": host,
                    "stream_id": format!("{stream_id:016x}"),
                    "fanout_seq": engine.fanout_seq(),
                    "host_seq": engine.host_seq(&host),
                    "fdb_entries": entries,
                }))
            }
            Query::BgpExport { host, stream_id } => {
                caller.require_admin("l2pop:get_fdb")?;
                let engine = self.engine();
                let served: Vec<&l2pop_bgpvpn::Vpn> = self
                    .bgpvpn()
                    .map(|b| {
                        let bound: std::collections::BTreeSet<BgpvpnId> = b
                            .speakers()
                            .values()
                            .filter(|s| s.agents.contains(&host))
                            .flat_map(|s| s.vpns.iter().copied())
                            .collect();
                        b.vpns()
                            .filter(|v| {
                                v.vpn_type == l2pop_bgpvpn::VpnType::L2 && bound.contains(&v.id)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let networks: std::collections::BTreeSet<NetworkId> = served
                    .iter()
                    .flat_map(|v| v.networks.iter().copied())
                    .collect();
                // The FDB as no compute host sees it (a full FDB leaves out the asking host's
                // own VTEP, and a BGP agent may also be a compute host): every host's entries.
                let observer = Host::new(&format!("{host}.bgp-export")).unwrap_or(host.clone());
                let mut entries = FdbEntries::default();
                for network in networks {
                    if let Ok(full) = engine.full_fdb(&observer, network, Some(l2pop_bgpvpn::NAME))
                    {
                        entries.0.extend(full.fdb_entries.0);
                    }
                }
                let vpns: Vec<Value> = served
                    .iter()
                    .map(|v| bgpvpn_view(v, &Caller::Admin))
                    .collect();
                Ok(json!({
                    "host": host,
                    "stream_id": format!("{stream_id:016x}"),
                    "fanout_seq": engine.fanout_seq(),
                    "bgpvpns": vpns,
                    "fdb_entries": entries,
                }))
            }
            Query::StreamPositions { host, stream_id } => {
                caller.require_admin("l2pop:get_fdb")?;
                let engine = self.engine();
                Ok(json!({
                    "stream_id": format!("{stream_id:016x}"),
                    "fanout_seq": engine.fanout_seq(),
                    "host_seq": engine.host_seq(&host),
                }))
            }
        }
    }
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod tests;

//! The state machine of the resource layer: Neutron-shaped resources (networks, subnets, ports,
//! agents, BGPVPN associations, BGP speakers) around the engine with the BGPVPN extension
//! registered.
//!
//! [`NeutronState::execute`] is the only mutator of durable state; [`NeutronState::heartbeat`]
//! moves an agent's liveness, which is not durable. It is synchronous, deterministic and atomic:
//! it checks everything the resources know, lets the engine (or the extension) apply its part
//! (which is itself all-or-nothing), then updates the resources, which cannot fail. Live
//! requests and the replay of the command log at start-up both go through it, so a restarted
//! server holds exactly the state it acknowledged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use l2pop_bgpvpn::{Bgpvpn, BgpvpnError, BgpvpnId, BgpvpnOp, SpeakerBinding, SpeakerId};
use l2pop_engine::{Engine, EngineBuilder, Event, ExtensionError, NetworkCreate, PortCreate};
use l2pop_model::{Host, NetworkId, Notification, PortId};

use crate::catalog::{AgentRecord, BgpAgentRecord, Catalog, SpeakerMeta, WithoutMatching as _};
use crate::command::{
    Command, FixedIp, NetworkRecord, PortRecord, SegmentId, SegmentRecord, SubnetId, SubnetRecord,
};
use crate::error::NeutronError;
use crate::time::Time;

/// Everything the server knows. See the module documentation.
#[derive(Debug)]
pub struct NeutronState {
    pub(crate) engine: Engine,
    /// The resources as the API shows them; the owner publishes a clone after every round.
    pub(crate) catalog: Catalog,
    /// Where each subnet's next allocation scan starts (the addresses in use are the engine's:
    /// `Engine::port_with_ip`).
    pub(crate) allocations: HashMap<SubnetId, Allocation>,
    /// Commands executed (the next command's log sequence number is this + 1).
    pub(crate) executed: u64,
    /// Planning policy, not state: fixed IPs one port may ask for (Neutron's
    /// `max_fixed_ips_per_port`).
    pub(crate) max_fixed_ips_per_port: usize,
}

/// Neutron's default `agent_down_time` (seconds).
pub const DEFAULT_AGENT_DOWN_TIME: u64 = 75;

/// Neutron's default `max_fixed_ips_per_port`.
pub const DEFAULT_MAX_FIXED_IPS_PER_PORT: usize = 5;

/// See [`NeutronState::save_for_rollback`].
#[derive(Debug)]
pub(crate) struct Saved {
    catalog: Catalog,
    allocations: HashMap<SubnetId, Allocation>,
}

/// A subnet's allocation cursor: the address taken last, after which the next scan starts.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Allocation {
    pub(crate) cursor: Option<IpAddr>,
}

impl Default for NeutronState {
    fn default() -> Self {
        NeutronState::new()
    }
}

impl NeutronState {
    /// An empty state with the BGPVPN extension registered (its name is `bgpvpn`).
    pub fn new() -> Self {
        // One extension under a fixed name: registration cannot meet a duplicate.
        let engine = EngineBuilder::new()
            .extension(l2pop_bgpvpn::NAME, Bgpvpn::new())
            .expect("the only registered extension has a unique name")
            .build();
        let mut state = NeutronState {
            engine,
            catalog: Catalog::default(),
            allocations: HashMap::new(),
            executed: 0,
            max_fixed_ips_per_port: DEFAULT_MAX_FIXED_IPS_PER_PORT,
        };
        state.set_agent_down_time(DEFAULT_AGENT_DOWN_TIME);
        state
    }

    /// Sets how many fixed IPs a port create or update may ask for (checked when planning;
    /// replaying the log never refuses what was accepted under another setting).
    pub fn set_max_fixed_ips_per_port(&mut self, max: usize) {
        self.max_fixed_ips_per_port = max;
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Commands executed so far (= the log sequence number of the last one).
    pub fn executed(&self) -> u64 {
        self.executed
    }

    pub fn bgpvpn(&self) -> Option<&Bgpvpn> {
        self.engine.extension::<Bgpvpn>(l2pop_bgpvpn::NAME)
    }

    /// Applies one command. On error nothing changed.
    pub fn execute(&mut self, command: &Command) -> Result<Vec<Notification>, NeutronError> {
        let notifications = self.execute_inner(command)?;
        self.executed += 1;
        self.publish_extension_maps();
        Ok(notifications)
    }

    /// Copies the BGPVPN extension's maps into the catalog (O(1): persistent maps).
    pub(crate) fn publish_extension_maps(&mut self) {
        if let Some(bgpvpn) = self.engine.extension::<Bgpvpn>(l2pop_bgpvpn::NAME) {
            self.catalog.bgpvpn = crate::catalog::BgpvpnMaps {
                speakers: bgpvpn.speakers().clone(),
                agents: bgpvpn.agents().clone(),
            };
        }
    }

    /// Extension reports gathered since the last call (logged and counted by the owner).
    pub fn take_reports(&mut self) -> Vec<l2pop_engine::Report> {
        self.engine.take_reports()
    }

    /// What a bulk create's rollback restores besides the engine: O(1) for the catalog
    /// (persistent maps), O(subnets) for the allocation cursors.
    pub(crate) fn save_for_rollback(&self) -> Saved {
        Saved {
            catalog: self.catalog.clone(),
            allocations: self.allocations.clone(),
        }
    }

    /// Takes back the creates `done` executed since `saved`: the engine deletes them in reverse
    /// order (creates of resources nothing else refers to yet, so each delete is accepted and
    /// the engine is as before), then the catalog and cursors are restored. Their
    /// notifications, never sent, are dropped with the deletes'.
    pub(crate) fn roll_back(&mut self, done: &[Command], saved: Saved) {
        for command in done.iter().rev() {
            if let Some(undo) = command.undo() {
                let undone = self.execute_inner(&undo);
                debug_assert!(undone.is_ok(), "rolling back {command:?}: {undone:?}");
            }
        }
        self.catalog = saved.catalog;
        self.allocations = saved.allocations;
    }

    pub(crate) fn execute_inner(
        &mut self,
        command: &Command,
    ) -> Result<Vec<Notification>, NeutronError> {
        match command {
            Command::Bulk { commands } => {
                let saved = self.save_for_rollback();
                let mut notifications = Vec::new();
                for (index, inner) in commands.iter().enumerate() {
                    let step = match inner.undo() {
                        Some(_) => self.execute_inner(inner),
                        None => Err(NeutronError::bad_request("only creates may be bulk")),
                    };
                    match step {
                        Ok(sent) => notifications.extend(sent),
                        Err(error) => {
                            self.roll_back(&commands[..index], saved);
                            return Err(error.in_item("bulk", index));
                        }
                    }
                }
                Ok(notifications)
            }
            Command::NetworkCreate { network } => self.network_create(network),
            Command::NetworkUpdate {
                id,
                name,
                description,
                admin_state_up,
                mtu,
                port_security_enabled,
            } => {
                let network = self
                    .catalog
                    .networks
                    .get_mut(id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| NeutronError::not_found("network", id))?;
                if let Some(name) = name {
                    network.name.clone_from(name);
                }
                if let Some(description) = description {
                    network.description.clone_from(description);
                }
                if let Some(up) = admin_state_up {
                    network.admin_state_up = *up;
                }
                if let Some(mtu) = mtu {
                    network.mtu = Some(*mtu);
                }
                if let Some(enabled) = port_security_enabled {
                    network.port_security_enabled = *enabled;
                }
                Ok(Vec::new())
            }
            Command::NetworkDelete { id } => self.network_delete(*id),
            Command::SubnetCreate { subnet } => self.subnet_create(subnet),
            Command::SubnetUpdate {
                id,
                name,
                description,
                dns_nameservers,
                host_routes,
                enable_dhcp,
            } => {
                let subnet = self
                    .catalog
                    .subnets
                    .get_mut(id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| NeutronError::not_found("subnet", id))?;
                if let Some(name) = name {
                    subnet.name.clone_from(name);
                }
                if let Some(description) = description {
                    subnet.description.clone_from(description);
                }
                if let Some(servers) = dns_nameservers {
                    subnet.dns_nameservers.clone_from(servers);
                }
                if let Some(routes) = host_routes {
                    subnet.host_routes.clone_from(routes);
                }
                if let Some(dhcp) = enable_dhcp {
                    subnet.enable_dhcp = *dhcp;
                }
                Ok(Vec::new())
            }
            Command::SubnetDelete { id } => self.subnet_delete(*id),
            Command::SegmentCreate { segment } => self.segment_create(segment),
            Command::SegmentUpdate {
                id,
                name,
                description,
            } => {
                let segment = self
                    .catalog
                    .segments
                    .get_mut(id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| NeutronError::not_found("segment", id))?;
                if let Some(name) = name {
                    segment.name.clone_from(name);
                }
                if let Some(description) = description {
                    segment.description.clone_from(description);
                }
                Ok(Vec::new())
            }
            Command::SegmentDelete { id } => self.segment_delete(*id),
            Command::PortCreate { port } => self.port_create(port),
            Command::PortUpdate { .. } => self.port_update(command),
            Command::PortDelete { id } => self.port_delete(*id),
            Command::AgentReport {
                id,
                agent_type,
                binary,
                at,
                report,
            } => {
                let notifications = self.engine.apply(&Event::Agent(report.clone()))?;
                let configurations = serde_json::json!({
                    "tunneling_ip": report.tunneling_ip,
                    "tunnel_types": report.tunnel_types,
                    "l2pop_network_types": report.l2pop_network_types,
                });
                let known = self.catalog.agents.get(&report.host);
                let started_at = match known {
                    Some(agent) if !report.start_flag => agent.started_at.clone(),
                    _ => at.clone(),
                };
                let (admin_state_up, description) = known.map_or((true, String::new()), |a| {
                    (a.admin_state_up, a.description.clone())
                });
                let heartbeat_at = Time::parse_neutron(at).unwrap_or_default();
                self.catalog.agents.insert(
                    report.host.clone(),
                    Arc::new(AgentRecord {
                        id: *id,
                        host: report.host.clone(),
                        agent_type: agent_type.clone(),
                        binary: binary.clone(),
                        configurations,
                        started_at,
                        heartbeat_at,
                        admin_state_up,
                        description,
                    }),
                );
                Ok(notifications)
            }
            Command::AgentUpdate {
                host,
                admin_state_up,
                description,
            } => {
                let agent = self
                    .catalog
                    .agents
                    .get_mut(host)
                    .map(Arc::make_mut)
                    .ok_or_else(|| NeutronError::not_found("agent", host))?;
                if let Some(up) = admin_state_up {
                    agent.admin_state_up = *up;
                }
                if let Some(description) = description {
                    agent.description.clone_from(description);
                }
                Ok(Vec::new())
            }
            Command::RouterPut { router } => self.router_put(router),
            Command::RouterDelete { id } => self.router_delete(*id),
            Command::DeviceUp(up) => {
                let notifications = self.engine.apply(&Event::DeviceUp(up.clone()))?;
                self.sync_status(up.id);
                Ok(notifications)
            }
            Command::DeviceDown(down) => {
                let notifications = self.engine.apply(&Event::DeviceDown(down.clone()))?;
                self.sync_status(down.id);
                Ok(notifications)
            }
            Command::BgpvpnCreate(create) => {
                self.bgpvpn_op(&BgpvpnOp::BgpvpnCreate(create.clone()))
            }
            Command::BgpvpnUpdate(update) => {
                self.bgpvpn_op(&BgpvpnOp::BgpvpnUpdate(update.clone()))
            }
            Command::BgpvpnDelete { id } => {
                let notifications =
                    self.bgpvpn_op(&BgpvpnOp::BgpvpnDelete(l2pop_bgpvpn::BgpvpnDelete {
                        id: *id,
                    }))?;
                let catalog = &mut self.catalog;
                catalog.associations = catalog
                    .associations
                    .without_matching(|a: &crate::command::AssociationRecord| a.bgpvpn_id == *id);
                Ok(notifications)
            }
            Command::AssociationCreate { association } => {
                if self.catalog.associations.contains_key(&association.id) {
                    return Err(NeutronError::conflict(
                        "Conflict",
                        format!("network_association {} already exists", association.id),
                    ));
                }
                let notifications = self.bgpvpn_op(&BgpvpnOp::NetworkAssociationCreate(
                    l2pop_bgpvpn::NetworkAssociation {
                        bgpvpn_id: association.bgpvpn_id,
                        network_id: association.network_id,
                    },
                ))?;
                self.catalog
                    .associations
                    .insert(association.id, association.clone());
                Ok(notifications)
            }
            Command::AssociationDelete { id } => {
                let association = self
                    .catalog
                    .associations
                    .get(id)
                    .ok_or_else(|| NeutronError::not_found("network_association", id))?;
                let notifications = self.bgpvpn_op(&BgpvpnOp::NetworkAssociationDelete(
                    l2pop_bgpvpn::NetworkAssociation {
                        bgpvpn_id: association.bgpvpn_id,
                        network_id: association.network_id,
                    },
                ))?;
                self.catalog.associations.remove(id);
                Ok(notifications)
            }
            Command::SpeakerCreate { speaker } => {
                if self.catalog.speakers.contains_key(&speaker.id) {
                    return Err(NeutronError::conflict(
                        "Conflict",
                        format!("bgp_speaker {} already exists", speaker.id),
                    ));
                }
                let notifications =
                    self.bgpvpn_op(&BgpvpnOp::BgpSpeaker(l2pop_bgpvpn::BgpSpeaker {
                        id: speaker.id,
                        agents: speaker.agents.iter().cloned().collect(),
                    }))?;
                self.catalog
                    .speakers
                    .insert(speaker.id, Arc::new(SpeakerMeta::of(speaker)));
                Ok(notifications)
            }
            Command::SpeakerUpdate { id, name } => {
                let speaker = self
                    .catalog
                    .speakers
                    .get_mut(id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| NeutronError::not_found("bgp_speaker", id))?;
                speaker.name.clone_from(name);
                Ok(Vec::new())
            }
            Command::SpeakerDelete { id } => {
                if !self.catalog.speakers.contains_key(id) {
                    return Err(NeutronError::not_found("bgp_speaker", id));
                }
                let notifications = self.bgpvpn_op(&BgpvpnOp::BgpSpeakerDelete(
                    l2pop_bgpvpn::BgpSpeakerDelete { id: *id },
                ))?;
                self.catalog.speakers.remove(id);
                Ok(notifications)
            }
            Command::SpeakerAddVpn {
                speaker_id,
                bgpvpn_id,
            } => {
                self.speaker(*speaker_id)?;
                let notifications =
                    self.bgpvpn_op(&BgpvpnOp::BgpSpeakerAddVpn(SpeakerBinding {
                        speaker_id: *speaker_id,
                        bgpvpn_id: *bgpvpn_id,
                    }))?;
                Ok(notifications)
            }
            Command::SpeakerRemoveVpn {
                speaker_id,
                bgpvpn_id,
            } => {
                self.speaker(*speaker_id)?;
                let notifications =
                    self.bgpvpn_op(&BgpvpnOp::BgpSpeakerRemoveVpn(SpeakerBinding {
                        speaker_id: *speaker_id,
                        bgpvpn_id: *bgpvpn_id,
                    }))?;
                Ok(notifications)
            }
            Command::SpeakerAddAgent { speaker_id, host }
            | Command::SpeakerRemoveAgent { speaker_id, host } => {
                let adding = matches!(command, Command::SpeakerAddAgent { .. });
                self.speaker(*speaker_id)?;
                let mut agents = self
                    .bgpvpn()
                    .and_then(|b| b.speakers().get(speaker_id))
                    .map(|s| s.agents.clone())
                    .unwrap_or_default();
                let changed = if adding {
                    agents.insert(host.clone())
                } else {
                    agents.remove(host)
                };
                if !changed {
                    return Err(if adding {
                        NeutronError::conflict(
                            "BgpSpeakerHostedByAgent",
                            format!("bgp_speaker {speaker_id} is already hosted by {host}"),
                        )
                    } else {
                        NeutronError::not_found("bgp_speaker hosting on agent", host)
                    });
                }
                let notifications =
                    self.bgpvpn_op(&BgpvpnOp::BgpSpeaker(l2pop_bgpvpn::BgpSpeaker {
                        id: *speaker_id,
                        agents: agents.iter().cloned().collect(),
                    }))?;
                Ok(notifications)
            }
            Command::BgpAgentReport { id, at, report } => {
                let notifications = self.bgpvpn_op(&BgpvpnOp::BgpAgent(report.clone()))?;
                let started_at = match self.catalog.bgp_agents.get(&report.host) {
                    Some(agent) if !report.start_flag => agent.started_at.clone(),
                    _ => at.clone(),
                };
                self.catalog.bgp_agents.insert(
                    report.host.clone(),
                    BgpAgentRecord {
                        id: *id,
                        host: report.host.clone(),
                        started_at,
                        heartbeat_at: Time::parse_neutron(at).unwrap_or_default(),
                    },
                );
                Ok(notifications)
            }
            Command::BgpGateways(routes) => self.bgpvpn_op(&BgpvpnOp::BgpGateways(routes.clone())),
            Command::BgpDevices(routes) => self.bgpvpn_op(&BgpvpnOp::BgpDevices(routes.clone())),
            Command::BgpEndOfRib { host } => {
                self.bgpvpn_op(&BgpvpnOp::BgpEndOfRib(l2pop_bgpvpn::EndOfRib {
                    host: host.clone(),
                }))
            }
        }
    }

    fn speaker(&self, id: SpeakerId) -> Result<&SpeakerMeta, NeutronError> {
        self.catalog
            .speakers
            .get(&id)
            .map(|s| &**s)
            .ok_or_else(|| NeutronError::not_found("bgp_speaker", id))
    }

    /// Hands one operation to the BGPVPN extension; its refusal comes back typed.
    fn bgpvpn_op(&mut self, op: &BgpvpnOp) -> Result<Vec<Notification>, NeutronError> {
        let mut refused: Option<BgpvpnError> = None;
        let result =
            self.engine
                .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |extension, topology| {
                    extension.apply(op, topology).map_err(|error| {
                        let message = ExtensionError::new(error.to_string());
                        refused = Some(error);
                        message
                    })
                });
        if let Some(error) = refused {
            return Err(error.into());
        }
        Ok(result?)
    }

    fn network_create(
        &mut self,
        network: &NetworkRecord,
    ) -> Result<Vec<Notification>, NeutronError> {
        let first = network.first_segment();
        self.check_segment_free(&first)?;
        if self.catalog.segments.contains_key(&first.id) {
            return Err(segment_exists(first.id));
        }
        let event = Event::Network(NetworkCreate {
            id: network.id,
            network_type: network.network_type,
            segmentation_id: network.segmentation_id.map(u64::from),
            physical_network: network.physical_network.clone(),
        });
        let notifications = self.engine.apply(&event)?;
        self.catalog
            .networks
            .insert(network.id, Arc::new(network.clone()));
        self.catalog.insert_segment(first);
        Ok(notifications)
    }

    /// 409 when another segment, of any network, has `segment`'s key: its type and
    /// segmentation id (vlan: and physical network; flat: its physical network). Neutron's
    /// type drivers allocate each key once across all segments; the engine knows only first
    /// segments, so this is checked here for all of them.
    fn check_segment_free(&self, segment: &SegmentRecord) -> Result<(), NeutronError> {
        let Some(key) = crate::catalog::segment_key(segment) else {
            return Ok(());
        };
        let Some(owner) = self
            .catalog
            .segment_keys
            .get(&key)
            .filter(|owner| **owner != segment.id)
            .and_then(|owner| self.catalog.segments.get(owner))
        else {
            return Ok(());
        };
        let network = owner.network_id;
        Err(match segment.segmentation_id {
            Some(segmentation_id) => l2pop_engine::EventError::SegmentInUse {
                network_type: segment.network_type,
                segmentation_id,
                network,
            },
            None => l2pop_engine::EventError::FlatNetworkInUse {
                physical_network: segment.physical_network.clone().unwrap_or_default(),
                network,
            },
        }
        .into())
    }

    /// A segment after the network's first: checked as ML2's type drivers check one (the
    /// engine checks a network's first segment) and kept; l2pop serves no port on it.
    fn segment_create(
        &mut self,
        segment: &SegmentRecord,
    ) -> Result<Vec<Notification>, NeutronError> {
        if !self.catalog.networks.contains_key(&segment.network_id) {
            return Err(
                NeutronError::not_found("network", segment.network_id).with_field("network_id")
            );
        }
        if self.catalog.segments.contains_key(&segment.id) {
            return Err(segment_exists(segment.id));
        }
        l2pop_engine::checked_segment(
            segment.network_type,
            segment.segmentation_id.map(u64::from),
            segment.physical_network.clone(),
        )
        .map_err(|error| {
            // The segments API names its attributes without `provider:`.
            let field = match &error {
                l2pop_engine::EventError::Invalid { field, .. } => *field,
                _ => "segmentation_id",
            };
            NeutronError::from(error).with_field(field)
        })?;
        self.check_segment_free(segment).map_err(|error| {
            let field = if segment.segmentation_id.is_some() {
                "segmentation_id"
            } else {
                "physical_network"
            };
            error.with_field(field)
        })?;
        self.catalog.insert_segment(segment.clone());
        Ok(Vec::new())
    }

    /// Neutron's segment delete, with l2pop's rule that every port is bound to the network's
    /// first segment: deleting the first is refused (`SegmentInUse`) while a port of the network
    /// has a binding host, and then the next segment becomes the network's, in the engine too
    /// (`network_segment`). The network's only segment is not deleted: the engine serves a
    /// network on exactly one.
    fn segment_delete(&mut self, id: SegmentId) -> Result<Vec<Notification>, NeutronError> {
        let segment = self
            .catalog
            .segments
            .get(&id)
            .ok_or_else(|| NeutronError::not_found("segment", id))?;
        let network_id = segment.network_id;
        let segments = self.catalog.network_segments(network_id);
        let in_use = |reason: String| {
            let mut error = NeutronError::conflict(
                "SegmentInUse",
                format!("Segment '{id}' cannot be deleted: {reason}."),
            )
            .with_field("id");
            error.value = Some(serde_json::Value::String(id.to_string()));
            error
        };
        let next = match segments.as_slice() {
            [only] if only.id == id => {
                return Err(in_use(format!(
                    "it is the only segment of network {network_id}, and l2pop serves a network on one segment"
                )));
            }
            [first, next, ..] if first.id == id => Some((*next).clone()),
            _ => None,
        };
        let mut notifications = Vec::new();
        if let Some(next) = next {
            let bound = self
                .catalog
                .network_ports
                .get(&network_id)
                .into_iter()
                .flatten()
                .filter_map(|port| self.catalog.ports.get(port))
                .filter(|port| port.host.is_some())
                .count();
            if bound > 0 {
                return Err(in_use(format!(
                    "The segment is still bound with {bound} port(s)"
                )));
            }
            notifications =
                self.engine
                    .apply(&Event::NetworkSegment(l2pop_engine::NetworkSegment {
                        id: network_id,
                        network_type: next.network_type,
                        segmentation_id: next.segmentation_id.map(u64::from),
                        physical_network: next.physical_network.clone(),
                    }))?;
            if let Some(network) = self
                .catalog
                .networks
                .get_mut(&network_id)
                .map(Arc::make_mut)
            {
                network.network_type = next.network_type;
                network.segmentation_id = next.segmentation_id;
                network.physical_network = next.physical_network;
            }
        }
        self.catalog.remove_segment(id);
        Ok(notifications)
    }

    fn network_delete(&mut self, id: NetworkId) -> Result<Vec<Notification>, NeutronError> {
        if !self.catalog.networks.contains_key(&id) {
            return Err(NeutronError::not_found("network", id));
        }
        let ports = self.catalog.network_ports.get(&id).map_or(0, |p| p.len());
        if ports > 0 {
            return Err(NeutronError::conflict(
                "NetworkInUse",
                format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network ({ports})."
                ),
            ));
        }
        let notifications = self
            .engine
            .apply(&Event::NetworkDelete(l2pop_engine::NetworkDelete { id }))?;
        self.catalog.networks.remove(&id);
        self.catalog.network_ports.remove(&id);
        let segments: Vec<SegmentId> = self
            .catalog
            .network_segments(id)
            .iter()
            .map(|s| s.id)
            .collect();
        for segment in segments {
            self.catalog.remove_segment(segment);
        }
        let subnets: Vec<SubnetId> = self
            .catalog
            .subnets
            .values()
            .filter(|s| s.network_id == id)
            .map(|s| s.id)
            .collect();
        for subnet in subnets {
            self.catalog.subnets.remove(&subnet);
            self.allocations.remove(&subnet);
        }
        self.catalog.associations = self
            .catalog
            .associations
            .without_matching(|a: &crate::command::AssociationRecord| a.network_id == id);
        Ok(notifications)
    }

    fn subnet_create(&mut self, subnet: &SubnetRecord) -> Result<Vec<Notification>, NeutronError> {
        if self.catalog.subnets.contains_key(&subnet.id) {
            return Err(NeutronError::conflict(
                "Conflict",
                format!("subnet {} already exists", subnet.id),
            ));
        }
        if !self.catalog.networks.contains_key(&subnet.network_id) {
            return Err(
                NeutronError::not_found("network", subnet.network_id).with_field("network_id")
            );
        }
        let notifications = self
            .engine
            .apply(&Event::Subnet(l2pop_engine::SubnetCreate {
                network_id: subnet.network_id,
                cidr: subnet.cidr,
            }))?;
        self.catalog
            .subnets
            .insert(subnet.id, Arc::new(subnet.clone()));
        self.allocations.insert(subnet.id, Allocation::default());
        Ok(notifications)
    }

    fn subnet_delete(&mut self, id: SubnetId) -> Result<Vec<Notification>, NeutronError> {
        let subnet = self
            .catalog
            .subnets
            .get(&id)
            .ok_or_else(|| NeutronError::not_found("subnet", id))?;
        let notifications =
            self.engine
                .apply(&Event::SubnetDelete(l2pop_engine::SubnetDelete {
                    network_id: subnet.network_id,
                    cidr: subnet.cidr,
                }))?;
        self.catalog.subnets.remove(&id);
        self.allocations.remove(&id);
        Ok(notifications)
    }

    /// Each fixed IP must name a subnet of the port's network that contains it.
    fn check_fixed_ips(
        &self,
        network: NetworkId,
        fixed_ips: &[FixedIp],
    ) -> Result<(), NeutronError> {
        for fixed in fixed_ips {
            let subnet = self.catalog.subnets.get(&fixed.subnet_id).ok_or_else(|| {
                NeutronError::invalid(
                    "fixed_ips",
                    fixed.subnet_id.to_string(),
                    "is not a known subnet",
                )
            })?;
            if subnet.network_id != network {
                return Err(NeutronError::invalid(
                    "fixed_ips",
                    fixed.subnet_id.to_string(),
                    format!("is a subnet of another network than {network}"),
                ));
            }
            if !subnet.cidr.contains(&fixed.ip_address) {
                return Err(NeutronError::invalid(
                    "fixed_ips",
                    fixed.ip_address.to_string(),
                    format!("is not in subnet {} ({})", subnet.id, subnet.cidr),
                ));
            }
        }
        Ok(())
    }

    fn port_create(&mut self, port: &PortRecord) -> Result<Vec<Notification>, NeutronError> {
        if !self.catalog.networks.contains_key(&port.network_id) {
            return Err(
                NeutronError::not_found("network", port.network_id).with_field("network_id")
            );
        }
        self.check_fixed_ips(port.network_id, &port.fixed_ips)?;
        let notifications = self.engine.apply(&Event::PortCreate(PortCreate {
            id: port.id,
            network_id: port.network_id,
            mac: port.mac,
            fixed_ips: port.fixed_ips.iter().map(|f| f.ip_address).collect(),
            device_owner: port.device_owner.clone(),
            device_id: port.device_id.clone(),
            host: port.host.clone(),
        }))?;
        self.claim(&port.fixed_ips);
        self.catalog
            .network_ports
            .entry(port.network_id)
            .or_default()
            .insert(port.id);
        self.catalog.ports.insert(port.id, Arc::new(port.clone()));
        self.sync_status(port.id);
        Ok(notifications)
    }

    fn port_update(&mut self, command: &Command) -> Result<Vec<Notification>, NeutronError> {
        let Command::PortUpdate {
            id,
            name,
            admin_state_up,
            mac,
            fixed_ips,
            device_owner,
            device_id,
            host,
            description,
            port_security_enabled,
            vnic_type,
        } = command
        else {
            return Ok(Vec::new());
        };
        let network = self
            .catalog
            .ports
            .get(id)
            .ok_or_else(|| NeutronError::not_found("port", id))?
            .network_id;
        if let Some(fixed_ips) = fixed_ips {
            self.check_fixed_ips(network, fixed_ips)?;
        }
        let engine_changes = mac.is_some()
            || fixed_ips.is_some()
            || device_owner.is_some()
            || device_id.is_some()
            || host.is_some();
        let notifications = if engine_changes {
            self.engine
                .apply(&Event::PortUpdate(l2pop_engine::PortUpdate {
                    id: *id,
                    host: host.clone(),
                    fixed_ips: fixed_ips
                        .as_ref()
                        .map(|ips| ips.iter().map(|f| f.ip_address).collect()),
                    mac: *mac,
                    device_owner: device_owner.clone(),
                    device_id: device_id.clone(),
                }))?
        } else {
            Vec::new()
        };
        if let Some(new) = fixed_ips {
            self.claim(new);
        }
        if let Some(port) = self.catalog.ports.get_mut(id).map(Arc::make_mut) {
            if let Some(name) = name {
                port.name.clone_from(name);
            }
            if let Some(up) = admin_state_up {
                port.admin_state_up = *up;
            }
            if let Some(mac) = mac {
                port.mac = *mac;
            }
            if let Some(fixed_ips) = fixed_ips {
                port.fixed_ips.clone_from(fixed_ips);
            }
            if let Some(owner) = device_owner {
                port.device_owner.clone_from(owner);
            }
            if let Some(device) = device_id {
                port.device_id.clone_from(device);
            }
            if let Some(host) = host {
                port.host.clone_from(host);
            }
            if let Some(description) = description {
                port.description.clone_from(description);
            }
            if let Some(enabled) = port_security_enabled {
                port.port_security_enabled = *enabled;
            }
            if let Some(vnic_type) = vnic_type {
                port.vnic_type = *vnic_type;
            }
        }
        self.sync_status(*id);
        Ok(notifications)
    }

    fn port_delete(&mut self, id: PortId) -> Result<Vec<Notification>, NeutronError> {
        if !self.catalog.ports.contains_key(&id) {
            return Err(NeutronError::not_found("port", id));
        }
        let notifications = self
            .engine
            .apply(&Event::PortDelete(l2pop_engine::PortDelete { id }))?;
        if let Some(port) = self.catalog.ports.remove(&id)
            && let Some(ports) = self.catalog.network_ports.get_mut(&port.network_id)
        {
            ports.remove(&id);
        }
        self.catalog.active_ports.remove(&id);
        Ok(notifications)
    }

    /// Moves the allocation cursors of the subnets `fixed_ips` took addresses in.
    fn claim(&mut self, fixed_ips: &[FixedIp]) {
        for fixed in fixed_ips {
            let allocation = self.allocations.entry(fixed.subnet_id).or_default();
            allocation.cursor = Some(fixed.ip_address);
        }
    }

    /// The BGPVPN ids that exist (for validating a binding before logging it).
    pub fn bgpvpn_exists(&self, id: BgpvpnId) -> bool {
        self.bgpvpn().is_some_and(|b| b.vpn(id).is_some())
    }

    /// Refreshes the catalog's index of the engine's status of port `id` (after an engine event
    /// that may have changed it).
    fn sync_status(&mut self, id: PortId) {
        let active = self
            .engine
            .port(id)
            .is_some_and(|p| p.status == l2pop_model::PortStatus::Active);
        if active {
            self.catalog.active_ports.insert(id);
        } else {
            self.catalog.active_ports.remove(&id);
        }
    }

    /// An agent's heartbeat at `at`: moves its liveness, changes nothing durable. Unknown hosts
    /// are ignored (their first report, which is logged, makes them known).
    pub fn heartbeat(&mut self, host: &Host, at: Time) {
        if let Some(agent) = self.catalog.agents.get_mut(host).map(Arc::make_mut)
            && agent.heartbeat_at < at
        {
            agent.heartbeat_at = at;
        }
    }

    /// A BGP agent's heartbeat at `at` (see [`Self::heartbeat`]).
    pub fn bgp_heartbeat(&mut self, host: &Host, at: Time) {
        if let Some(agent) = self.catalog.bgp_agents.get_mut(host)
            && agent.heartbeat_at < at
        {
            agent.heartbeat_at = at;
        }
    }

    /// After taking the leadership at `now`: every agent counts as heard from now. Heartbeats
    /// are not logged, so the replayed ones are as old as the last logged report; agents get a
    /// down time to report to the new leader before they are shown, or reported, dead.
    pub fn grace(&mut self, now: Time) {
        let hosts: Vec<Host> = self.catalog.agents.keys().cloned().collect();
        for host in hosts {
            self.heartbeat(&host, now);
        }
        let hosts: Vec<Host> = self.catalog.bgp_agents.keys().cloned().collect();
        for host in hosts {
            self.bgp_heartbeat(&host, now);
        }
    }

    /// Reports that BGP agents alive in the state but silent for longer than the down time at
    /// `now` are dead: a killed speaker sends no `alive: false`, and its routes must not outlive
    /// it (case 6b). The owner handles them as writes, so they are logged like any report.
    pub fn silent_bgp_agents(&self, now: Time) -> Vec<crate::Request> {
        let deadline = now.minus(self.catalog.agent_down_time);
        self.catalog
            .bgp_agents
            .values()
            .filter(|agent| agent.heartbeat_at < deadline)
            .filter_map(|agent| {
                let state = self.catalog.bgpvpn.agents.get(&agent.host)?;
                state.alive.then(|| {
                    crate::Request::BgpAgentReport(
                        agent.host.clone(),
                        crate::request::BgpAgentBody {
                            admin_state_up: state.admin_state_up,
                            alive: false,
                            start_flag: false,
                            graceful_restart: false,
                        },
                    )
                })
            })
            .collect()
    }

    /// The resources as the API shows them (see [`Catalog`]).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Sets Neutron's `agent_down_time` in seconds (how long an agent may stay silent and still
    /// be shown alive).
    pub fn set_agent_down_time(&mut self, seconds: u64) {
        self.catalog.agent_down_time = seconds;
    }
}

/// 409 for a segment id in use.
fn segment_exists(id: SegmentId) -> NeutronError {
    let mut error = NeutronError::conflict(
        "Conflict",
        format!("Unable to create the segment: id {id} is in use."),
    )
    .with_field("id");
    error.value = Some(serde_json::Value::String(id.to_string()));
    error
}

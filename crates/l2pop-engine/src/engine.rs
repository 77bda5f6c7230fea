//! [`Engine`]: the single owner of l2pop state. `apply(event)` validates the whole event first
//! (a refused event changes nothing), mutates the topology, then turns what changed into
//! Neutron's notifications: fanouts first, network by network, then host casts of full FDBs.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use l2pop_model::{
    Agent, FLOODING_ENTRY, FdbEntries, FdbPayload, Host, Mac, Method, ModelError, Network,
    NetworkFdb, NetworkId, NetworkType, Notification, Port, PortId, PortInfo, PortStatus, RouterId,
    Subnet, Target,
};
use serde::Serialize;

use crate::change::{Change, Origin};
use crate::error::{EventError, QueryError, RegistryError};
use crate::event::{
    AgentReport, DeviceDown, DeviceUp, Event, NetworkCreate, PortCreate, PortUpdate, RouterSpec,
    SubnetCreate, SubnetDelete,
};
use crate::extension::{
    ExtensionChanges, ExtensionClaims, ExtensionError, ExtensionStats, FdbExtension, MacClaim,
    Registry, Report,
};
use crate::full_fdb::{self, PayloadSink, Provenance, ProvenanceSink};
use crate::topology::{NetworkState, PortKind, PortState, Presence, RouterState, Topology};

/// Registers extensions, in order, before the engine starts (STYLE habit 8: one readable list).
#[derive(Debug, Default)]
pub struct EngineBuilder {
    registry: Registry,
}

impl EngineBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `extension` under `name`; a name can be registered once.
    pub fn extension(
        mut self,
        name: &str,
        extension: impl FdbExtension,
    ) -> Result<Self, RegistryError> {
        self.registry.register(name, Box::new(extension))?;
        Ok(self)
    }

    pub fn build(self) -> Engine {
        Engine {
            registry: self.registry,
            ..Engine::default()
        }
    }
}

/// A host's refresh (rule 16, difference 1): a run of `refresh_tunnels` device reports.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Refresh {
    open: bool,
    /// Networks whose full FDB this refresh already sent.
    served: HashSet<NetworkId>,
}

/// The l2pop state machine. Deterministic: the same events give the same notifications.
#[derive(Debug, Default)]
pub struct Engine {
    pub(crate) topology: Topology,
    pub(crate) registry: Registry,
    /// (network type, physical network, segmentation id) → network, for segment uniqueness.
    pub(crate) segments: HashMap<(NetworkType, Option<String>, Option<u32>), NetworkId>,
    pub(crate) refresh: HashMap<Host, Refresh>,
    pub(crate) seq: u64,
    pub(crate) fanout_seq: u64,
    pub(crate) host_seqs: HashMap<Host, u64>,
    reports: Vec<Report>,
}

/// One network of a host's desired table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredNetwork {
    pub network_id: NetworkId,
    pub segment_id: Option<u32>,
    pub network_type: NetworkType,
    pub vteps: Vec<(IpAddr, Vec<(PortInfo, Provenance)>)>,
}

/// What a host's forwarding tables must hold now: the full FDB of every network it is on, each
/// entry with who put it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredTable {
    pub host: Host,
    pub networks: Vec<DesiredNetwork>,
    pub reports: Vec<Report>,
}

/// A full FDB built on request (resync), with what the extensions reported while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullFdb {
    pub fdb_entries: FdbEntries,
    pub reports: Vec<Report>,
}

/// Read access to the topology for extensions while they compute their changes.
#[derive(Debug, Clone, Copy)]
pub struct TopologyView<'a> {
    topology: &'a Topology,
}

impl<'a> TopologyView<'a> {
    pub fn network(&self, id: NetworkId) -> Option<&'a Network> {
        self.topology.networks.get(&id).map(|s| &s.network)
    }

    /// The port of `network` that owns `mac`, if any.
    pub fn port_with_mac(&self, network: NetworkId, mac: Mac) -> Option<PortId> {
        self.topology
            .networks
            .get(&network)
            .and_then(|s| s.macs.get(&mac))
            .copied()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event. On error nothing changed.
    pub fn apply(&mut self, event: &Event) -> Result<Vec<Notification>, EventError> {
        let mut change = Change::default();
        match event {
            Event::Agent(report) => self.agent_report(report, &mut change)?,
            Event::Network(create) => self.network_create(create)?,
            Event::NetworkSegment(segment) => self.network_segment(segment)?,
            Event::NetworkDelete(delete) => self.network_delete(delete.id)?,
            Event::Subnet(create) => self.subnet_create(create)?,
            Event::SubnetDelete(delete) => self.subnet_delete(delete)?,
            Event::PortCreate(create) => self.port_create(create, &mut change)?,
            Event::PortUpdate(update) => self.port_update(update, &mut change)?,
            Event::PortDelete(delete) => self.port_delete(delete.id, &mut change)?,
            Event::DeviceUp(up) => self.device_up(up, &mut change)?,
            Event::DeviceDown(down) => self.device_down(down, &mut change)?,
            Event::Router(spec) => self.router_upsert(spec, &mut change),
            Event::RouterDelete(delete) => self.router_delete(delete.id, &mut change)?,
        }
        Ok(self.finish(change))
    }

    // ---- agents ----

    fn agent_report(
        &mut self,
        report: &AgentReport,
        change: &mut Change,
    ) -> Result<(), EventError> {
        let agent = Agent::new(
            report.host.clone(),
            report.tunneling_ip,
            report.tunnel_types.clone(),
            report.l2pop_network_types.clone(),
        )
        .map_err(|e| match e {
            ModelError::NotATunnelType(_) => EventError::Invalid {
                field: "tunnel_types",
                source: e,
            },
            _ => EventError::Invalid {
                field: "tunneling_ip",
                source: e,
            },
        })?;
        if let Some(ip) = agent.tunneling_ip
            && let Some(owner) = self
                .topology
                .agent_by_ip
                .get(&ip)
                .filter(|h| **h != agent.host)
        {
            return Err(EventError::TunnelingIpInUse {
                ip,
                host: owner.clone(),
            });
        }
        let host = agent.host.clone();
        let networks: Vec<NetworkId> = self
            .topology
            .host_networks
            .get(&host)
            .map(|n| n.iter().copied().collect())
            .unwrap_or_default();
        for network in networks {
            change.touch(&self.topology, &host, network);
        }
        if let Some(old) = self.topology.agents.get(&host).and_then(|a| a.tunneling_ip) {
            self.topology.agent_by_ip.remove(&old);
        }
        if let Some(ip) = agent.tunneling_ip {
            self.topology.agent_by_ip.insert(ip, host.clone());
        }
        self.topology.agents.insert(host.clone(), agent);
        if report.start_flag {
            let refresh = self.refresh.entry(host).or_default();
            refresh.open = true;
            refresh.served.clear();
        }
        Ok(())
    }

    // ---- networks and subnets ----

    fn network_create(&mut self, create: &NetworkCreate) -> Result<(), EventError> {
        let segment = self.free_segment(
            create.id,
            create.network_type,
            create.segmentation_id,
            create.physical_network.clone(),
        )?;
        if self.topology.networks.contains_key(&create.id) {
            return Err(EventError::NetworkExists(create.id));
        }
        if let Some(key) = Self::segment_key(&segment) {
            self.segments.insert(key, create.id);
        }
        self.topology.networks.insert(
            create.id,
            NetworkState {
                network: Network {
                    id: create.id,
                    segment,
                },
                subnets: Vec::new(),
                macs: HashMap::new(),
                ips: HashMap::new(),
                members: HashMap::new(),
                port_count: 0,
                claims: ExtensionClaims::default(),
            },
        );
        Ok(())
    }

    fn network_delete(&mut self, id: NetworkId) -> Result<(), EventError> {
        let state = self
            .topology
            .networks
            .get(&id)
            .ok_or(EventError::UnknownNetwork { field: "id", id })?;
        if state.port_count > 0 {
            return Err(EventError::NetworkInUse {
                network: id,
                ports: state.port_count,
            });
        }
        if let Some(state) = self.topology.networks.remove(&id)
            && let Some(key) = Self::segment_key(&state.network.segment)
        {
            self.segments.remove(&key);
        }
        // No host can be on a network without ports, so there is nothing to withdraw; the
        // extensions forget their entries with the network, as the engine's mirror does.
        for slot in &mut self.registry.slots {
            slot.network_deleted(id, &mut self.reports);
        }
        Ok(())
    }

    fn subnet_create(&mut self, create: &SubnetCreate) -> Result<(), EventError> {
        let state = self.topology.networks.get_mut(&create.network_id).ok_or(
            EventError::UnknownNetwork {
                field: "network_id",
                id: create.network_id,
            },
        )?;
        let subnet =
            Subnet::new(create.network_id, create.cidr).map_err(EventError::invalid("cidr"))?;
        if let Some(other) = state.subnets.iter().find(|s| s.overlaps(&subnet)) {
            return Err(EventError::SubnetOverlap {
                cidr: subnet.cidr,
                other: other.cidr,
                network: create.network_id,
            });
        }
        state.subnets.push(subnet);
        Ok(())
    }

    fn subnet_delete(&mut self, delete: &SubnetDelete) -> Result<(), EventError> {
        let state = self.topology.networks.get_mut(&delete.network_id).ok_or(
            EventError::UnknownNetwork {
                field: "network_id",
                id: delete.network_id,
            },
        )?;
        let index = state
            .subnets
            .iter()
            .position(|s| s.cidr == delete.cidr)
            .ok_or(EventError::UnknownSubnet {
                cidr: delete.cidr,
                network: delete.network_id,
            })?;
        if let Some((ip, port)) = state
            .ips
            .iter()
            .filter(|(ip, _)| delete.cidr.contains(*ip))
            .min()
        {
            return Err(EventError::SubnetInUse {
                cidr: delete.cidr,
                ip: *ip,
                port: *port,
            });
        }
        state.subnets.remove(index);
        Ok(())
    }

    // ---- ports ----

    fn network_of(&self, field: &'static str, id: NetworkId) -> Result<&NetworkState, EventError> {
        self.topology
            .networks
            .get(&id)
            .ok_or(EventError::UnknownNetwork { field, id })
    }

    /// Checks a port's fixed IPs: distinct, inside a subnet, not another port's.
    fn check_fixed_ips(
        state: &NetworkState,
        port: PortId,
        ips: &[IpAddr],
    ) -> Result<(), EventError> {
        let mut seen = HashSet::new();
        for ip in ips {
            if !seen.insert(*ip) {
                return Err(EventError::DuplicateFixedIp(*ip));
            }
            if !state.subnets.iter().any(|s| s.cidr.contains(ip)) {
                return Err(EventError::IpNotInSubnet {
                    ip: *ip,
                    network: state.network.id,
                });
            }
            if let Some(owner) = state.ips.get(ip).filter(|p| **p != port) {
                return Err(EventError::IpInUse {
                    ip: *ip,
                    port: *owner,
                });
            }
        }
        Ok(())
    }

    fn check_mac(state: &NetworkState, port: PortId, mac: Mac) -> Result<(), EventError> {
        mac.validate_unicast().map_err(EventError::invalid("mac"))?;
        match state.macs.get(&mac) {
            Some(owner) if *owner != port => Err(EventError::MacInUse {
                mac,
                port: *owner,
                network: state.network.id,
            }),
            _ => Ok(()),
        }
    }

    fn port_create(&mut self, create: &PortCreate, change: &mut Change) -> Result<(), EventError> {
        let state = self.network_of("network_id", create.network_id)?;
        if self.topology.ports.contains_key(&create.id) {
            return Err(EventError::PortExists(create.id));
        }
        Self::check_mac(state, create.id, create.mac)?;
        Self::check_fixed_ips(state, create.id, &create.fixed_ips)?;

        let port = Port {
            id: create.id,
            network_id: create.network_id,
            mac: create.mac,
            fixed_ips: create.fixed_ips.clone(),
            device_owner: create.device_owner.clone(),
            device_id: create.device_id.clone(),
            host: create.host.clone(),
            status: PortStatus::Down,
        };
        let (macs, ips) = ([create.mac], &create.fixed_ips);
        self.with_visibility(change, create.network_id, &macs, ips, |topology| {
            let state = topology
                .networks
                .get_mut(&port.network_id)
                .expect("network checked above");
            state.macs.insert(port.mac, port.id);
            for ip in &port.fixed_ips {
                state.ips.insert(*ip, port.id);
            }
            state.port_count += 1;
        });
        self.topology.index_router_port(&port);
        self.topology.ports.insert(
            port.id,
            PortState {
                port,
                dvr_active: BTreeSet::new(),
            },
        );
        Ok(())
    }

    fn port_update(&mut self, update: &PortUpdate, change: &mut Change) -> Result<(), EventError> {
        let current = self
            .topology
            .ports
            .get(&update.id)
            .ok_or(EventError::UnknownPort(update.id))?;
        let old = current.port.clone();
        let state = self.network_of("network_id", old.network_id)?;
        let mut new = old.clone();
        if let Some(mac) = update.mac {
            if mac != old.mac {
                if old.status == PortStatus::Active {
                    return Err(EventError::MacChangeOnActivePort(old.id));
                }
                Self::check_mac(state, old.id, mac)?;
            }
            new.mac = mac;
        }
        if let Some(ips) = &update.fixed_ips {
            Self::check_fixed_ips(state, old.id, ips)?;
            new.fixed_ips = ips.clone();
        }
        if let Some(host) = &update.host {
            new.host = host.clone();
        }
        if let Some(owner) = &update.device_owner {
            new.device_owner = owner.clone();
        }
        if let Some(device_id) = &update.device_id {
            new.device_id = device_id.clone();
        }
        // Rule 10: a binding change resets an ordinary port to DOWN (ML2 does this on any binding
        // change); an HA port's presence follows its router, so it keeps its status.
        if new.host != old.host && self.topology.kind(&old) == PortKind::Ordinary {
            new.status = PortStatus::Down;
        }
        if new == old {
            return Ok(());
        }

        let network = old.network_id;
        let id = old.id;
        if self.ip_change_only(&old, &new) {
            // Rule 8: announced as chg_ip (or add/remove); the membership follows silently.
            self.announce_ip_change(&old, &new, change);
            let before = self
                .topology
                .ports
                .get(&id)
                .map(|s| self.topology.presence(s))
                .unwrap_or_default();
            self.replace_port(change, &old, &new);
            let after = self
                .topology
                .ports
                .get(&id)
                .map(|s| self.topology.presence(s))
                .unwrap_or_default();
            self.topology.account(network, &before, false);
            self.topology.account(network, &after, true);
        } else {
            self.move_presence(change, network, &[id], |engine, change| {
                engine.replace_port(change, &old, &new)
            });
        }
        Ok(())
    }

    /// Swaps a port's record and every index that names it (MACs, IPs, router ports).
    fn replace_port(&mut self, change: &mut Change, old: &Port, new: &Port) {
        let network = old.network_id;
        let id = old.id;
        if new.mac != old.mac || new.fixed_ips != old.fixed_ips {
            let macs = [old.mac, new.mac];
            let ips: Vec<IpAddr> = old
                .fixed_ips
                .iter()
                .chain(&new.fixed_ips)
                .copied()
                .collect();
            self.with_visibility(change, network, &macs, &ips, |topology| {
                if let Some(state) = topology.networks.get_mut(&network) {
                    state.macs.remove(&old.mac);
                    state.macs.insert(new.mac, id);
                    for ip in &old.fixed_ips {
                        state.ips.remove(ip);
                    }
                    for ip in &new.fixed_ips {
                        state.ips.insert(*ip, id);
                    }
                }
            });
        }
        let topology = &mut self.topology;
        topology.unindex_router_port(old);
        topology.index_router_port(new);
        if let Some(state) = topology.ports.get_mut(&id) {
            state.port = new.clone();
        }
    }

    /// Rule 8: the update only changes the fixed IPs of a port present on one visible host.
    fn ip_change_only(&self, old: &Port, new: &Port) -> bool {
        old.fixed_ips != new.fixed_ips
            && old.mac == new.mac
            && old.host == new.host
            && old.status == PortStatus::Active
            && new.status == PortStatus::Active
            && self.topology.kind(old) == PortKind::Ordinary
            && self.topology.kind(new) == PortKind::Ordinary
    }

    /// Rule 8 as `chg_ip`, or as add/remove when the port had no IP before or has none after
    /// (agents program a MAC's forwarding entry only from add/remove).
    fn announce_ip_change(&self, old: &Port, new: &Port, change: &mut Change) {
        let Some(host) = &old.host else { return };
        let network = old.network_id;
        if !self.topology.is_on(host, network) {
            return;
        }
        let Some(vtep) = self.topology.vtep(host) else {
            return;
        };
        let before: BTreeSet<IpAddr> = old.fixed_ips.iter().copied().collect();
        let after: BTreeSet<IpAddr> = new.fixed_ips.iter().copied().collect();
        let removed: Vec<PortInfo> = before
            .difference(&after)
            .map(|ip| PortInfo::new(old.mac, *ip))
            .collect();
        let added: Vec<PortInfo> = after
            .difference(&before)
            .map(|ip| PortInfo::new(old.mac, *ip))
            .collect();
        if before.is_empty() {
            change.add(network, Origin::Native, vtep, added);
        } else if after.is_empty() {
            change.remove(network, Origin::Native, vtep, removed);
        } else {
            change.chg_ip(network, vtep, removed, added);
        }
    }

    fn port_delete(&mut self, id: PortId, change: &mut Change) -> Result<(), EventError> {
        let state = self
            .topology
            .ports
            .get(&id)
            .ok_or(EventError::UnknownPort(id))?;
        let port = state.port.clone();
        let network = port.network_id;
        self.move_presence(change, network, &[id], |engine, change| {
            let macs = [port.mac];
            engine.with_visibility(change, network, &macs, &port.fixed_ips, |topology| {
                if let Some(state) = topology.networks.get_mut(&network) {
                    state.macs.remove(&port.mac);
                    for ip in &port.fixed_ips {
                        state.ips.remove(ip);
                    }
                    state.port_count = state.port_count.saturating_sub(1);
                }
            });
            engine.topology.unindex_router_port(&port);
            engine.topology.ports.remove(&id);
        });
        Ok(())
    }

    // ---- agent device reports ----

    fn device_up(&mut self, up: &DeviceUp, change: &mut Change) -> Result<(), EventError> {
        let state = self
            .topology
            .ports
            .get(&up.id)
            .ok_or(EventError::UnknownPort(up.id))?;
        let port = &state.port;
        let network = port.network_id;
        let kind = self.topology.kind(port);
        let relevant = match kind {
            PortKind::Ordinary => port.host.as_ref() == Some(&up.host),
            PortKind::Dvr => true,
            PortKind::Ha => self
                .router_of(port)
                .is_some_and(|r| r.hosts.contains(&up.host)),
        };
        let refresh = self.refresh.entry(up.host.clone()).or_default();
        if up.refresh_tunnels {
            if !refresh.open {
                refresh.open = true;
                refresh.served.clear();
            }
        } else {
            refresh.open = false;
        }
        if !relevant {
            return Ok(());
        }
        let host = up.host.clone();
        let id = up.id;
        self.move_presence(change, network, &[id], |engine, _| {
            if let Some(state) = engine.topology.ports.get_mut(&id) {
                match kind {
                    PortKind::Dvr => {
                        state.dvr_active.insert(host);
                    }
                    PortKind::Ordinary | PortKind::Ha => state.port.status = PortStatus::Active,
                }
            }
        });
        if up.refresh_tunnels {
            change.refresh.insert((up.host.clone(), network));
        }
        Ok(())
    }

    fn device_down(&mut self, down: &DeviceDown, change: &mut Change) -> Result<(), EventError> {
        let state = self
            .topology
            .ports
            .get(&down.id)
            .ok_or(EventError::UnknownPort(down.id))?;
        let port = &state.port;
        let network = port.network_id;
        let kind = self.topology.kind(port);
        let relevant = match kind {
            PortKind::Ordinary => port.host.as_ref() == Some(&down.host),
            PortKind::Dvr => state.dvr_active.contains(&down.host),
            PortKind::Ha => false,
        };
        if !relevant {
            return Ok(());
        }
        let host = down.host.clone();
        let id = down.id;
        self.move_presence(change, network, &[id], |engine, _| {
            if let Some(state) = engine.topology.ports.get_mut(&id) {
                match kind {
                    PortKind::Dvr => {
                        state.dvr_active.remove(&host);
                    }
                    PortKind::Ordinary | PortKind::Ha => state.port.status = PortStatus::Down,
                }
            }
        });
        Ok(())
    }

    // ---- routers ----

    fn router_of(&self, port: &Port) -> Option<&RouterState> {
        port.device_id
            .parse::<RouterId>()
            .ok()
            .and_then(|id| self.topology.routers.get(&id))
    }

    fn router_upsert(&mut self, spec: &RouterSpec, change: &mut Change) {
        let router = RouterState {
            ha: spec.ha,
            hosts: spec.hosts.iter().cloned().collect(),
        };
        let id = spec.id;
        self.change_router(change, id, |routers| {
            routers.insert(id, router);
        });
    }

    fn router_delete(&mut self, id: RouterId, change: &mut Change) -> Result<(), EventError> {
        if !self.topology.routers.contains_key(&id) {
            return Err(EventError::UnknownRouter(id));
        }
        self.change_router(change, id, |routers| {
            routers.remove(&id);
        });
        Ok(())
    }

    /// Moves the presence of every HA-capable port of router `id` across a router change.
    fn change_router(
        &mut self,
        change: &mut Change,
        id: RouterId,
        mutate: impl FnOnce(&mut HashMap<RouterId, RouterState>),
    ) {
        let ports: Vec<PortId> = self
            .topology
            .router_ports
            .get(&id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        let mut by_network: Vec<(NetworkId, PortId)> = ports
            .iter()
            .filter_map(|p| self.topology.ports.get(p).map(|s| (s.port.network_id, *p)))
            .collect();
        by_network.sort_unstable();
        let befores: Vec<(NetworkId, Presence)> = by_network
            .iter()
            .filter_map(|(n, p)| {
                self.topology
                    .ports
                    .get(p)
                    .map(|s| (*n, self.topology.presence(s)))
            })
            .collect();
        for (network, presence) in &befores {
            for host in &presence.hosts {
                change.touch(&self.topology, host, *network);
            }
        }
        mutate(&mut self.topology.routers);
        let afters: Vec<(NetworkId, Presence)> = by_network
            .iter()
            .filter_map(|(n, p)| {
                self.topology
                    .ports
                    .get(p)
                    .map(|s| (*n, self.topology.presence(s)))
            })
            .collect();
        self.account(change, befores, afters);
    }

    // ---- presence bookkeeping ----

    /// Runs `mutate` on ports of `network`, moving their presence in the membership index and
    /// recording the touched (host, network) pairs.
    fn move_presence(
        &mut self,
        change: &mut Change,
        network: NetworkId,
        ports: &[PortId],
        mutate: impl FnOnce(&mut Self, &mut Change),
    ) {
        let befores: Vec<(NetworkId, Presence)> = ports
            .iter()
            .filter_map(|p| {
                self.topology
                    .ports
                    .get(p)
                    .map(|s| (network, self.topology.presence(s)))
            })
            .collect();
        for (net, presence) in &befores {
            for host in &presence.hosts {
                change.touch(&self.topology, host, *net);
            }
        }
        mutate(self, change);
        let afters: Vec<(NetworkId, Presence)> = ports
            .iter()
            .filter_map(|p| {
                self.topology
                    .ports
                    .get(p)
                    .map(|s| (network, self.topology.presence(s)))
            })
            .collect();
        self.account(change, befores, afters);
    }

    fn account(
        &mut self,
        change: &mut Change,
        befores: Vec<(NetworkId, Presence)>,
        afters: Vec<(NetworkId, Presence)>,
    ) {
        for (network, presence) in &afters {
            for host in &presence.hosts {
                change.touch(&self.topology, host, *network);
            }
        }
        for (network, presence) in &befores {
            self.topology.account(*network, presence, false);
            for host in &presence.hosts {
                change.port_entries(host, *network, &presence.entries, false);
            }
        }
        for (network, presence) in &afters {
            self.topology.account(*network, presence, true);
            for host in &presence.hosts {
                change.port_entries(host, *network, &presence.entries, true);
            }
        }
    }

    /// The extension claim visible for `mac` on a network: none while a native port owns the
    /// MAC, and without the IPs native ports hold (a native port wins both).
    fn visible_claim(state: &NetworkState, mac: &Mac) -> Option<(usize, MacClaim)> {
        if state.macs.contains_key(mac) {
            return None;
        }
        state.claims.winner(mac).map(|(i, c)| {
            let mut claim = c.clone();
            claim.ips.retain(|ip| state.port_with_ip(ip).is_none());
            (i, claim)
        })
    }

    /// Runs `mutate` (a change of ports' MACs or IPs, or of an extension's claims) and records
    /// how the visible extension entries changed: those of `macs`, and of every MAC an extension
    /// claims with one of `ips`. Entries a port now hides are reported.
    fn with_visibility(
        &mut self,
        change: &mut Change,
        network: NetworkId,
        macs: &[Mac],
        ips: &[IpAddr],
        mutate: impl FnOnce(&mut Topology),
    ) {
        let before: Vec<(Mac, Option<(usize, MacClaim)>)> =
            match self.topology.networks.get(&network) {
                Some(state) => {
                    let mut affected: BTreeSet<Mac> = macs.iter().copied().collect();
                    for ip in ips {
                        if let Some(claimed) = state.claims.ips.get(ip) {
                            affected.extend(claimed.iter().copied());
                        }
                    }
                    affected
                        .into_iter()
                        .map(|mac| (mac, Self::visible_claim(state, &mac)))
                        .collect()
                }
                None => Vec::new(),
            };
        mutate(&mut self.topology);
        let Some(state) = self.topology.networks.get(&network) else {
            return;
        };
        let mut diffs = Vec::with_capacity(before.len());
        for (mac, before) in before {
            let after = Self::visible_claim(state, &mac);
            if let Some((index, claim)) = &before {
                let extension = &self.registry.slots[*index].name;
                if after.is_none()
                    && let Some(port) = state.macs.get(&mac)
                {
                    self.reports.push(Report::CollidesWithPort {
                        extension: extension.clone(),
                        network,
                        vtep: claim.vtep,
                        mac,
                        port: *port,
                    });
                } else if let Some((_, now)) = after.as_ref().filter(|(i, _)| i == index) {
                    for ip in claim.ips.difference(&now.ips) {
                        if let Some(port) = state.port_with_ip(ip) {
                            self.reports.push(Report::CollidesWithPortIp {
                                extension: extension.clone(),
                                network,
                                vtep: claim.vtep,
                                mac,
                                ip: *ip,
                                port,
                            });
                        }
                    }
                }
            }
            diffs.push((mac, before, after));
        }
        if let Some(state) = self.topology.networks.get_mut(&network) {
            for (mac, before, after) in &diffs {
                state
                    .claims
                    .set_visible(*mac, before.as_ref(), after.as_ref());
            }
        }
        for (mac, before, after) in diffs {
            record_claim_diff(change, network, mac, before, after);
        }
    }

    // ---- extensions ----

    /// Lets the extension registered as `name` change its state and hand back the resulting
    /// changes; the engine validates them and emits fanouts tagged with `name`. Invalid entries
    /// and entries for unknown networks are dropped and reported, never sent.
    pub fn update_extension<E: FdbExtension>(
        &mut self,
        name: &str,
        update: impl FnOnce(&mut E, TopologyView<'_>) -> Result<ExtensionChanges, ExtensionError>,
    ) -> Result<Vec<Notification>, EventError> {
        let index = self
            .registry
            .index(name)
            .ok_or_else(|| EventError::UnknownExtension(name.to_owned()))?;
        let view = TopologyView {
            topology: &self.topology,
        };
        let slot = &mut self.registry.slots[index];
        if slot.quarantined {
            return Err(EventError::ExtensionQuarantined(name.to_owned()));
        }
        if !(&*slot.extension as &dyn Any).is::<E>() {
            return Err(EventError::ExtensionType {
                name: name.to_owned(),
                expected: std::any::type_name::<E>(),
            });
        }
        // Fault isolation (difference 5): a panic leaves the extension's state unknown, so
        // nothing of the update is applied and the extension is quarantined.
        let outcome = slot.update(|any| match any.downcast_mut::<E>() {
            Some(extension) => update(extension, view),
            None => Ok(ExtensionChanges::default()),
        });
        let changes = match outcome {
            Ok(result) => result?,
            Err(message) => {
                self.reports.push(Report::ExtensionUpdatePanicked {
                    extension: name.to_owned(),
                    message: message.clone(),
                });
                return Err(EventError::ExtensionPanicked {
                    name: name.to_owned(),
                    message,
                });
            }
        };
        let mut change = Change::default();
        for (network, vtep, entry) in changes.removes {
            if self.check_extension_entry(index, network, vtep, entry) {
                self.unclaim(&mut change, index, network, vtep, entry);
            }
        }
        for (network, vtep, entry) in changes.adds {
            if self.check_extension_entry(index, network, vtep, entry) {
                self.claim(&mut change, index, network, vtep, entry);
            }
        }
        Ok(self.finish(change))
    }

    fn check_extension_entry(
        &mut self,
        index: usize,
        network: NetworkId,
        vtep: IpAddr,
        entry: PortInfo,
    ) -> bool {
        let name = self.registry.slots[index].name.clone();
        if !self.topology.networks.contains_key(&network) {
            self.registry.slots[index].count_dropped();
            self.reports.push(Report::UnknownNetwork {
                extension: name,
                network,
            });
            return false;
        }
        if let Err(reason) = full_fdb::validate_entry(vtep, entry) {
            self.registry.slots[index].count_dropped();
            self.reports.push(Report::InvalidEntry {
                extension: name,
                network,
                vtep,
                entry,
                reason,
            });
            return false;
        }
        true
    }

    fn claim(
        &mut self,
        change: &mut Change,
        index: usize,
        network: NetworkId,
        vtep: IpAddr,
        entry: PortInfo,
    ) {
        if entry.is_flooding() {
            let Some(state) = self.topology.networks.get_mut(&network) else {
                return;
            };
            let claimants = state.claims.flood.entry(vtep).or_default();
            if claimants.is_empty() {
                change.add(network, Origin::Extension(index), vtep, [FLOODING_ENTRY]);
            }
            claimants.insert(index);
            return;
        }
        self.with_visibility(change, network, &[entry.mac], &[], |topology| {
            if let Some(state) = topology.networks.get_mut(&network) {
                state
                    .claims
                    .ips
                    .entry(entry.ip)
                    .or_default()
                    .insert(entry.mac);
                let claim = state
                    .claims
                    .macs
                    .entry(entry.mac)
                    .or_default()
                    .entry(index)
                    .or_insert_with(|| MacClaim {
                        vtep,
                        ips: BTreeSet::new(),
                    });
                claim.vtep = vtep;
                claim.ips.insert(entry.ip);
            }
        });
        let Some(state) = self.topology.networks.get(&network) else {
            return;
        };
        if let Some(port) = state.macs.get(&entry.mac) {
            self.registry.slots[index].count_dropped();
            self.reports.push(Report::CollidesWithPort {
                extension: self.registry.slots[index].name.clone(),
                network,
                vtep,
                mac: entry.mac,
                port: *port,
            });
        } else if let Some(port) = state.port_with_ip(&entry.ip) {
            self.registry.slots[index].count_dropped();
            self.reports.push(Report::CollidesWithPortIp {
                extension: self.registry.slots[index].name.clone(),
                network,
                vtep,
                mac: entry.mac,
                ip: entry.ip,
                port,
            });
        } else if let Some((winner, _)) =
            state.claims.winner(&entry.mac).filter(|(w, _)| *w != index)
        {
            self.registry.slots[index].count_dropped();
            self.reports.push(Report::CollidesWithExtension {
                extension: self.registry.slots[index].name.clone(),
                network,
                vtep,
                mac: entry.mac,
                winner: self.registry.slots[winner].name.clone(),
            });
        }
    }

    fn unclaim(
        &mut self,
        change: &mut Change,
        index: usize,
        network: NetworkId,
        vtep: IpAddr,
        entry: PortInfo,
    ) {
        if entry.is_flooding() {
            let Some(state) = self.topology.networks.get_mut(&network) else {
                return;
            };
            if let Some(claimants) = state.claims.flood.get_mut(&vtep)
                && claimants.remove(&index)
                && claimants.is_empty()
            {
                state.claims.flood.remove(&vtep);
                change.remove(network, Origin::Extension(index), vtep, [FLOODING_ENTRY]);
            }
            return;
        }
        self.with_visibility(change, network, &[entry.mac], &[], |topology| {
            let Some(state) = topology.networks.get_mut(&network) else {
                return;
            };
            let Some(claims) = state.claims.macs.get_mut(&entry.mac) else {
                return;
            };
            // Move-safe: a removal naming another VTEP than the MAC's current one is ignored.
            if let Some(claim) = claims.get_mut(&index).filter(|c| c.vtep == vtep) {
                claim.ips.remove(&entry.ip);
                if claim.ips.is_empty() {
                    claims.remove(&index);
                }
            }
            let still_claimed = claims.values().any(|c| c.ips.contains(&entry.ip));
            if claims.is_empty() {
                state.claims.macs.remove(&entry.mac);
            }
            if !still_claimed && let Some(macs) = state.claims.ips.get_mut(&entry.ip) {
                macs.remove(&entry.mac);
                if macs.is_empty() {
                    state.claims.ips.remove(&entry.ip);
                }
            }
        });
    }

    // ---- settling ----

    /// Turns an event's changes into numbered notifications: fanouts, then full FDBs.
    fn finish(&mut self, mut change: Change) -> Vec<Notification> {
        let (joined, left) = change.settle_touches(&self.topology);
        let mut full: BTreeSet<(Host, NetworkId)> = BTreeSet::new();
        for (host, network) in &left {
            if let Some(refresh) = self.refresh.get_mut(host) {
                refresh.served.remove(network);
            }
        }
        for (host, network) in joined {
            if let Some(refresh) = self.refresh.get_mut(&host).filter(|r| r.open) {
                refresh.served.insert(network);
            }
            full.insert((host, network));
        }
        for (host, network) in std::mem::take(&mut change.refresh) {
            if full.contains(&(host.clone(), network)) || !self.topology.is_on(&host, network) {
                continue;
            }
            let refresh = self.refresh.entry(host.clone()).or_default();
            if refresh.open && refresh.served.insert(network) {
                full.insert((host, network));
            }
        }

        let mut out = Vec::new();
        for fanout in change.fanouts(&self.topology) {
            self.seq += 1;
            self.fanout_seq += 1;
            let source = match fanout.origin {
                Origin::Native => None,
                Origin::Extension(index) => Some(self.registry.slots[index].name.clone()),
            };
            out.push(Notification {
                seq: self.seq,
                target: Target::Fanout,
                method: fanout.method,
                source,
                fdb_entries: fanout.payload,
                fanout_seq: self.fanout_seq,
                host_seq: None,
            });
        }
        for (host, network) in full {
            let mut reports = Vec::new();
            let fdb = self.network_fdb(&host, network, None, &mut reports);
            self.reports.append(&mut reports);
            let Some(fdb) = fdb else {
                continue;
            };
            if fdb.ports.is_empty() {
                continue;
            }
            self.seq += 1;
            let host_seq = self.host_seqs.entry(host.clone()).or_default();
            *host_seq += 1;
            out.push(Notification {
                seq: self.seq,
                target: Target::Host(host),
                method: Method::AddFdbEntries,
                source: None,
                fdb_entries: FdbPayload::Entries(FdbEntries::single(network, fdb)),
                fanout_seq: self.fanout_seq,
                host_seq: Some(*host_seq),
            });
        }
        out
    }

    /// Builds `host`'s full FDB of `network` (None for an unknown network): the one builder
    /// behind the host casts of `apply` and the `full_fdb` query.
    fn network_fdb(
        &self,
        host: &Host,
        network: NetworkId,
        skip_source: Option<&str>,
        reports: &mut Vec<Report>,
    ) -> Option<NetworkFdb> {
        let state = self.topology.networks.get(&network)?;
        let mut sink = PayloadSink::default();
        full_fdb::build(
            &self.topology,
            &self.registry,
            state,
            host,
            skip_source,
            &mut sink,
            reports,
        );
        let segment = &state.network.segment;
        Some(NetworkFdb {
            segment_id: segment.segmentation_id(),
            network_type: segment.network_type(),
            ports: sink.ports,
        })
    }

    // ---- queries ----

    /// The full FDB of `host` for `network` as it would be sent now, skipping the extension
    /// named `skip_source` (a requester asking without its own entries, as StarlingX's
    /// `get_fdb_entries(source=...)`).
    pub fn full_fdb(
        &self,
        host: &Host,
        network: NetworkId,
        skip_source: Option<&str>,
    ) -> Result<FullFdb, QueryError> {
        let mut reports = Vec::new();
        let fdb = self
            .network_fdb(host, network, skip_source, &mut reports)
            .ok_or(QueryError::UnknownNetwork(network))?;
        Ok(FullFdb {
            fdb_entries: FdbEntries::single(network, fdb),
            reports,
        })
    }

    /// Every network `host` is on, with its full FDB and the provenance of each entry.
    pub fn desired_table(&self, host: &Host) -> DesiredTable {
        let mut networks = Vec::new();
        let mut reports = Vec::new();
        for network in self.networks_of(host) {
            let Some(state) = self.topology.networks.get(&network) else {
                continue;
            };
            let mut sink = ProvenanceSink {
                state,
                registry: &self.registry,
                vteps: Vec::new(),
            };
            full_fdb::build(
                &self.topology,
                &self.registry,
                state,
                host,
                None,
                &mut sink,
                &mut reports,
            );
            let segment = &state.network.segment;
            networks.push(DesiredNetwork {
                network_id: network,
                segment_id: segment.segmentation_id(),
                network_type: segment.network_type(),
                vteps: sink.vteps,
            });
        }
        DesiredTable {
            host: host.clone(),
            networks,
            reports,
        }
    }

    /// Networks `host` is on (has present ports, is visible, covers the type), ascending.
    pub fn networks_of(&self, host: &Host) -> Vec<NetworkId> {
        self.topology
            .host_networks
            .get(host)
            .map(|nets| {
                nets.iter()
                    .copied()
                    .filter(|n| self.topology.is_on(host, *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `host` is on `network`: it receives the network's fanouts and full FDB.
    pub fn is_on(&self, host: &Host, network: NetworkId) -> bool {
        self.topology.is_on(host, network)
    }

    /// Hosts with a reported agent, ascending.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = self.topology.agents.keys().cloned().collect();
        hosts.sort();
        hosts
    }

    /// The agent's VTEP, if the host is visible.
    pub fn vtep(&self, host: &Host) -> Option<IpAddr> {
        self.topology.vtep(host)
    }

    pub fn port(&self, id: PortId) -> Option<&Port> {
        self.topology.ports.get(&id).map(|s| &s.port)
    }

    pub fn network(&self, id: NetworkId) -> Option<&Network> {
        self.topology.networks.get(&id).map(|s| &s.network)
    }

    /// The latest report of `host`'s agent.
    pub fn agent(&self, host: &Host) -> Option<&Agent> {
        self.topology.agents.get(host)
    }

    /// Ports present on `host` (D6: what its agent reports up), ascending by id. A scan: for
    /// resync and diagnostics, not for the event path.
    pub fn present_ports(&self, host: &Host) -> Vec<PortId> {
        let mut ids: Vec<PortId> = self
            .topology
            .ports
            .values()
            .filter(|s| self.topology.presence(s).hosts.contains(host))
            .map(|s| s.port.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Every port, in no particular order.
    pub fn ports(&self) -> impl Iterator<Item = &Port> {
        self.topology.ports.values().map(|s| &s.port)
    }

    pub fn port_count(&self) -> usize {
        self.topology.ports.len()
    }

    /// Reports gathered while applying events since the last call (extension failures,
    /// collisions, dropped entries): the caller logs and counts them.
    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }

    pub fn extension_stats(&self) -> Vec<(String, ExtensionStats)> {
        self.registry
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.stats()))
            .collect()
    }

    /// The last sequence number emitted.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The last fanout's place in the fanout stream (what a full FDB built now reflects).
    pub fn fanout_seq(&self) -> u64 {
        self.fanout_seq
    }

    /// The last host cast's place in `host`'s stream (0 before the first).
    pub fn host_seq(&self, host: &Host) -> u64 {
        self.host_seqs.get(host).copied().unwrap_or(0)
    }

    /// The port of `network` that owns `mac`, if any.
    pub fn port_with_mac(&self, network: NetworkId, mac: Mac) -> Option<PortId> {
        TopologyView {
            topology: &self.topology,
        }
        .port_with_mac(network, mac)
    }

    /// The port of `network` that holds fixed IP `ip`, if any: the one index of addresses in
    /// use, which the server's allocator reads too.
    pub fn port_with_ip(&self, network: NetworkId, ip: IpAddr) -> Option<PortId> {
        self.topology
            .networks
            .get(&network)
            .and_then(|s| s.port_with_ip(&ip))
    }

    /// How many fixed IPs the ports of `network` hold.
    pub fn ips_in_use(&self, network: NetworkId) -> usize {
        self.topology
            .networks
            .get(&network)
            .map_or(0, |s| s.ips.len())
    }

    /// Read access to the extension registered as `name`, if it is an `E`.
    pub fn extension<E: FdbExtension>(&self, name: &str) -> Option<&E> {
        let index = self.registry.index(name)?;
        let any: &dyn Any = &*self.registry.slots[index].extension;
        any.downcast_ref::<E>()
    }
}

/// Records the entry difference between two visible claims of one MAC.
fn record_claim_diff(
    change: &mut Change,
    network: NetworkId,
    mac: Mac,
    before: Option<(usize, MacClaim)>,
    after: Option<(usize, MacClaim)>,
) {
    let pairs = |c: &Option<(usize, MacClaim)>| -> BTreeSet<(IpAddr, IpAddr)> {
        c.as_ref()
            .map(|(_, c)| c.ips.iter().map(|ip| (c.vtep, *ip)).collect())
            .unwrap_or_default()
    };
    let (b, a) = (pairs(&before), pairs(&after));
    if let Some((index, _)) = before {
        for (vtep, ip) in b.difference(&a) {
            change.remove(
                network,
                Origin::Extension(index),
                *vtep,
                [PortInfo::new(mac, *ip)],
            );
        }
    }
    if let Some((index, _)) = after {
        for (vtep, ip) in a.difference(&b) {
            change.add(
                network,
                Origin::Extension(index),
                *vtep,
                [PortInfo::new(mac, *ip)],
            );
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

//! [`Bgpvpn`]: the extension's state and its rules.
//!
//! State: BGPVPNs with their network associations and speaker bindings, BGP agents (liveness),
//! BGP speakers (which agents host them), and the routes each agent learned. What the extension
//! has announced to the engine is kept per network ([`Entries`]); every operation recomputes the
//! entries it can change — the whole of the affected networks for topology operations, only the
//! MACs and VTEPs named for route updates — and hands the engine the difference. The full FDB
//! is answered from the announced entries, so the two paths always agree (the engine's
//! convergence contract).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use l2pop_engine::{
    ExtensionChanges, ExtensionEntries, ExtensionError, FdbExtension, FullFdbRequest, TopologyView,
};
use l2pop_model::{FLOODING_ENTRY, Host, Mac, NetworkId, NetworkType, PortInfo};
use serde::{Deserialize, Serialize};

use crate::ops::{
    BgpAgentReport, BgpSpeaker, BgpvpnCreate, BgpvpnOp, BgpvpnUpdate, DeviceRoutes, GatewayRoutes,
    NetworkAssociation, SpeakerBinding,
};
use crate::{BgpvpnError, BgpvpnId, RouteTarget, SpeakerId, VpnType};

/// A BGPVPN as networking-bgpvpn defines it, with its associations and bindings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpn {
    pub id: BgpvpnId,
    pub project_id: String,
    pub name: String,
    pub vpn_type: VpnType,
    pub route_targets: BTreeSet<RouteTarget>,
    pub import_targets: BTreeSet<RouteTarget>,
    pub export_targets: BTreeSet<RouteTarget>,
    pub route_distinguishers: Vec<RouteTarget>,
    pub vni: Option<u32>,
    pub local_pref: Option<u32>,
    pub networks: BTreeSet<NetworkId>,
    pub speakers: BTreeSet<SpeakerId>,
}

impl Vpn {
    /// Routes carrying one of these are imported: `route_targets` ∪ `import_targets`.
    pub fn imports(&self, targets: &BTreeSet<RouteTarget>) -> bool {
        targets
            .iter()
            .any(|t| self.route_targets.contains(t) || self.import_targets.contains(t))
    }
}

/// A BGP agent's state as the extension acts on it (cases 6a and 6b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub admin_state_up: bool,
    pub alive: bool,
}

/// A BGP speaker: the BGP agents hosting it and the BGPVPNs bound to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speaker {
    pub agents: BTreeSet<Host>,
    pub vpns: BTreeSet<BgpvpnId>,
}

/// (VTEP, VNI): a type-3 route's identity as l2pop needs it.
type GatewayKey = (IpAddr, Option<u32>);

/// (MAC, IP or none, VTEP, VNI): a type-2 route's identity as l2pop needs it.
type DeviceKey = (Mac, Option<IpAddr>, IpAddr, Option<u32>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DeviceAttributes {
    route_targets: BTreeSet<RouteTarget>,
    seq: u32,
}

/// What one BGP agent learned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Learned {
    /// (VTEP, VNI) → route targets of the type-3 route.
    gateways: BTreeMap<GatewayKey, BTreeSet<RouteTarget>>,
    devices: BTreeMap<DeviceKey, DeviceAttributes>,
    /// Routes kept across a graceful restart and not re-learned yet (RFC 4724 §4.2): they
    /// count as any other until re-learned (the mark goes) or purged by End-of-RIB.
    stale_gateways: BTreeSet<GatewayKey>,
    stale_devices: BTreeSet<DeviceKey>,
}

/// The entries the extension contributes to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entries {
    flood: BTreeSet<IpAddr>,
    /// MAC → (VTEP, IPs); `0.0.0.0` stands for a MAC-only device.
    macs: BTreeMap<Mac, (IpAddr, BTreeSet<IpAddr>)>,
}

/// Which entries of a network an operation can change.
#[derive(Debug, Clone)]
enum Scope {
    All,
    Keys {
        macs: BTreeSet<Mac>,
        vteps: BTreeSet<IpAddr>,
    },
}

/// Something an operator should know; the caller logs and counts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum BgpvpnReport {
    /// A route whose VNI (its own, else the BGPVPN's) differs from the network's segmentation
    /// id, or is unknown: skipped for that network.
    VniMismatch {
        bgpvpn: BgpvpnId,
        network: NetworkId,
        vtep: IpAddr,
        mac: Option<Mac>,
        route_vni: Option<u32>,
        segmentation_id: Option<u32>,
    },
}

/// The BGPVPN extension. Register it as `"bgpvpn"`; drive it with [`Bgpvpn::apply`] through
/// `Engine::update_extension`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bgpvpn {
    vpns: BTreeMap<BgpvpnId, Vpn>,
    network_vpns: BTreeMap<NetworkId, BTreeSet<BgpvpnId>>,
    /// Persistent maps: the server publishes them with its catalog at O(1) cost.
    agents: imbl::OrdMap<Host, AgentState>,
    speakers: imbl::OrdMap<SpeakerId, Speaker>,
    learned: BTreeMap<Host, Learned>,
    announced: BTreeMap<NetworkId, Entries>,
    reports: BTreeSet<BgpvpnReport>,
}

const MAC_ONLY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn check_vni(vni: Option<u64>) -> Result<Option<u32>, BgpvpnError> {
    match vni {
        Some(v) if v == 0 || v > 0xff_ffff => Err(BgpvpnError::VniOutOfRange(v)),
        other => Ok(other.map(|v| v as u32)),
    }
}

fn check_local_pref(local_pref: Option<u64>) -> Result<Option<u32>, BgpvpnError> {
    match local_pref {
        Some(v) if v > u64::from(u32::MAX) => Err(BgpvpnError::LocalPrefOutOfRange(v)),
        other => Ok(other.map(|v| v as u32)),
    }
}

fn check_vtep(vtep: IpAddr) -> Result<(), BgpvpnError> {
    let unicast = match vtep {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    };
    if unicast {
        Ok(())
    } else {
        Err(BgpvpnError::InvalidVtep(vtep))
    }
}

impl Bgpvpn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn vpn(&self, id: BgpvpnId) -> Option<&Vpn> {
        self.vpns.get(&id)
    }

    pub fn vpns(&self) -> impl Iterator<Item = &Vpn> {
        self.vpns.values()
    }

    /// The BGP speakers, their agents and bound BGPVPNs (the extension is their only holder).
    pub fn speakers(&self) -> &imbl::OrdMap<SpeakerId, Speaker> {
        &self.speakers
    }

    /// The BGP agents' states, as last reported.
    pub fn agents(&self) -> &imbl::OrdMap<Host, AgentState> {
        &self.agents
    }

    /// Reports gathered since the last call (routes skipped for a VNI mismatch).
    pub fn take_reports(&mut self) -> Vec<BgpvpnReport> {
        std::mem::take(&mut self.reports).into_iter().collect()
    }

    /// Applies one operation; returns what changed in the entries announced to the engine.
    /// Validates first: on error nothing changed.
    pub fn apply(
        &mut self,
        op: &BgpvpnOp,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        match op {
            BgpvpnOp::BgpvpnCreate(create) => {
                self.create(create).map(|()| ExtensionChanges::default())
            }
            BgpvpnOp::BgpvpnUpdate(update) => self.update(update, topology),
            BgpvpnOp::BgpvpnDelete(delete) => self.delete(delete.id, topology),
            BgpvpnOp::NetworkAssociationCreate(assoc) => self.associate(assoc, topology),
            BgpvpnOp::NetworkAssociationDelete(assoc) => self.dissociate(assoc, topology),
            BgpvpnOp::BgpAgent(report) => Ok(self.agent_report(report, topology)),
            BgpvpnOp::BgpSpeaker(speaker) => Ok(self.speaker_upsert(speaker, topology)),
            BgpvpnOp::BgpSpeakerDelete(delete) => self.speaker_delete(delete.id, topology),
            BgpvpnOp::BgpSpeakerAddVpn(binding) => self.bind(binding, true, topology),
            BgpvpnOp::BgpSpeakerRemoveVpn(binding) => self.bind(binding, false, topology),
            BgpvpnOp::BgpGateways(routes) => self.gateways(routes, topology),
            BgpvpnOp::BgpDevices(routes) => self.devices(routes, topology),
            BgpvpnOp::BgpEndOfRib(end) => self.end_of_rib(&end.host, topology),
        }
    }

    // ---- BGPVPNs and associations ----

    fn create(&mut self, create: &BgpvpnCreate) -> Result<(), BgpvpnError> {
        if self.vpns.contains_key(&create.id) {
            return Err(BgpvpnError::BgpvpnExists(create.id));
        }
        let vni = check_vni(create.vni)?;
        let local_pref = check_local_pref(create.local_pref)?;
        self.vpns.insert(
            create.id,
            Vpn {
                id: create.id,
                project_id: create.project_id.clone(),
                name: create.name.clone(),
                vpn_type: create.vpn_type,
                route_targets: create.route_targets.iter().copied().collect(),
                import_targets: create.import_targets.iter().copied().collect(),
                export_targets: create.export_targets.iter().copied().collect(),
                route_distinguishers: create.route_distinguishers.clone(),
                vni,
                local_pref,
                networks: BTreeSet::new(),
                speakers: BTreeSet::new(),
            },
        );
        Ok(())
    }

    fn update(
        &mut self,
        update: &BgpvpnUpdate,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        if update.vpn_type.is_some() {
            return Err(BgpvpnError::Immutable("type"));
        }
        if update.vni.is_some() {
            return Err(BgpvpnError::Immutable("vni"));
        }
        let vpn = self
            .vpns
            .get(&update.id)
            .ok_or(BgpvpnError::UnknownBgpvpn {
                field: "id",
                id: update.id,
            })?;
        let local_pref = match update.local_pref {
            Some(value) => Some(check_local_pref(value)?),
            None => None,
        };
        let networks = vpn.networks.clone();
        let vpn = self
            .vpns
            .get_mut(&update.id)
            .ok_or(BgpvpnError::UnknownBgpvpn {
                field: "id",
                id: update.id,
            })?;
        if let Some(name) = &update.name {
            vpn.name = name.clone();
        }
        if let Some(targets) = &update.route_targets {
            vpn.route_targets = targets.iter().copied().collect();
        }
        if let Some(targets) = &update.import_targets {
            vpn.import_targets = targets.iter().copied().collect();
        }
        if let Some(targets) = &update.export_targets {
            vpn.export_targets = targets.iter().copied().collect();
        }
        if let Some(rds) = &update.route_distinguishers {
            vpn.route_distinguishers = rds.clone();
        }
        if let Some(local_pref) = local_pref {
            vpn.local_pref = local_pref;
        }
        Ok(self.settle(networks, &Scope::All, topology))
    }

    fn delete(
        &mut self,
        id: BgpvpnId,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        let vpn = self
            .vpns
            .remove(&id)
            .ok_or(BgpvpnError::UnknownBgpvpn { field: "id", id })?;
        for network in &vpn.networks {
            if let Some(set) = self.network_vpns.get_mut(network) {
                set.remove(&id);
                if set.is_empty() {
                    self.network_vpns.remove(network);
                }
            }
        }
        for speaker in &vpn.speakers {
            if let Some(s) = self.speakers.get_mut(speaker) {
                s.vpns.remove(&id);
            }
        }
        Ok(self.settle(vpn.networks, &Scope::All, topology))
    }

    fn associate(
        &mut self,
        assoc: &NetworkAssociation,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        let vpn = self
            .vpns
            .get(&assoc.bgpvpn_id)
            .ok_or(BgpvpnError::UnknownBgpvpn {
                field: "bgpvpn_id",
                id: assoc.bgpvpn_id,
            })?;
        let network = topology
            .network(assoc.network_id)
            .ok_or(BgpvpnError::UnknownNetwork(assoc.network_id))?;
        if vpn.networks.contains(&assoc.network_id) {
            return Err(BgpvpnError::AssociationExists {
                bgpvpn: assoc.bgpvpn_id,
                network: assoc.network_id,
            });
        }
        if vpn.vpn_type == VpnType::L2 {
            let segment = &network.segment;
            if segment.network_type() != NetworkType::Vxlan {
                return Err(BgpvpnError::NotVxlan {
                    network: network.id,
                    network_type: segment.network_type(),
                });
            }
            if let (Some(vni), Some(segmentation_id)) = (vpn.vni, segment.segmentation_id())
                && vni != segmentation_id
            {
                return Err(BgpvpnError::VniMismatch {
                    bgpvpn: vpn.id,
                    network: network.id,
                    segmentation_id,
                    vni,
                });
            }
        }
        if let Some(vpn) = self.vpns.get_mut(&assoc.bgpvpn_id) {
            vpn.networks.insert(assoc.network_id);
        }
        self.network_vpns
            .entry(assoc.network_id)
            .or_default()
            .insert(assoc.bgpvpn_id);
        Ok(self.settle([assoc.network_id], &Scope::All, topology))
    }

    fn dissociate(
        &mut self,
        assoc: &NetworkAssociation,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        let vpn = self
            .vpns
            .get_mut(&assoc.bgpvpn_id)
            .ok_or(BgpvpnError::UnknownBgpvpn {
                field: "bgpvpn_id",
                id: assoc.bgpvpn_id,
            })?;
        if !vpn.networks.remove(&assoc.network_id) {
            return Err(BgpvpnError::NoAssociation {
                bgpvpn: assoc.bgpvpn_id,
                network: assoc.network_id,
            });
        }
        if let Some(set) = self.network_vpns.get_mut(&assoc.network_id) {
            set.remove(&assoc.bgpvpn_id);
            if set.is_empty() {
                self.network_vpns.remove(&assoc.network_id);
            }
        }
        Ok(self.settle([assoc.network_id], &Scope::All, topology))
    }

    // ---- BGP agents and speakers ----

    /// Networks that a BGP agent's routes can reach: those of the BGPVPNs bound to the speakers
    /// it hosts.
    fn agent_networks(&self, host: &Host) -> BTreeSet<NetworkId> {
        self.speakers
            .values()
            .filter(|s| s.agents.contains(host))
            .flat_map(|s| s.vpns.iter())
            .filter_map(|id| self.vpns.get(id))
            .flat_map(|vpn| vpn.networks.iter().copied())
            .collect()
    }

    fn speaker_networks(&self, speaker: &Speaker) -> BTreeSet<NetworkId> {
        speaker
            .vpns
            .iter()
            .filter_map(|id| self.vpns.get(id))
            .flat_map(|vpn| vpn.networks.iter().copied())
            .collect()
    }

    fn agent_report(
        &mut self,
        report: &BgpAgentReport,
        topology: TopologyView<'_>,
    ) -> ExtensionChanges {
        let state = AgentState {
            admin_state_up: report.admin_state_up,
            alive: report.alive,
        };
        // A heartbeat that changes nothing does nothing (reports arrive every few seconds).
        if !report.start_flag && self.agents.get(&report.host) == Some(&state) {
            return ExtensionChanges::default();
        }
        let networks = self.agent_networks(&report.host);
        self.agents.insert(report.host.clone(), state);
        if report.start_flag && report.graceful_restart {
            // Case 6a with graceful restart: what it learned before stays, marked stale, until
            // re-learned or purged at End-of-RIB; nothing changes for the hosts now.
            if let Some(learned) = self.learned.get_mut(&report.host) {
                learned.stale_gateways = learned.gateways.keys().copied().collect();
                learned.stale_devices = learned.devices.keys().copied().collect();
            }
        } else if report.start_flag {
            // Case 6a: the agent restarted; what it learned before is stale.
            self.learned.remove(&report.host);
        }
        self.settle(networks, &Scope::All, topology)
    }

    fn speaker_upsert(
        &mut self,
        spec: &BgpSpeaker,
        topology: TopologyView<'_>,
    ) -> ExtensionChanges {
        let speaker = self.speakers.entry(spec.id).or_default();
        speaker.agents = spec.agents.iter().cloned().collect();
        let networks = self.speaker_networks(&self.speakers[&spec.id]);
        self.settle(networks, &Scope::All, topology)
    }

    fn speaker_delete(
        &mut self,
        id: SpeakerId,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        let speaker = self
            .speakers
            .remove(&id)
            .ok_or(BgpvpnError::UnknownSpeaker { field: "id", id })?;
        for vpn in &speaker.vpns {
            if let Some(v) = self.vpns.get_mut(vpn) {
                v.speakers.remove(&id);
            }
        }
        let networks = self.speaker_networks(&speaker);
        Ok(self.settle(networks, &Scope::All, topology))
    }

    fn bind(
        &mut self,
        binding: &SpeakerBinding,
        add: bool,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        let (speaker_id, bgpvpn_id) = (binding.speaker_id, binding.bgpvpn_id);
        let speaker = self
            .speakers
            .get(&speaker_id)
            .ok_or(BgpvpnError::UnknownSpeaker {
                field: "speaker_id",
                id: speaker_id,
            })?;
        let vpn = self
            .vpns
            .get(&bgpvpn_id)
            .ok_or(BgpvpnError::UnknownBgpvpn {
                field: "bgpvpn_id",
                id: bgpvpn_id,
            })?;
        match (add, speaker.vpns.contains(&bgpvpn_id)) {
            (true, true) => {
                return Err(BgpvpnError::BindingExists {
                    speaker: speaker_id,
                    bgpvpn: bgpvpn_id,
                });
            }
            (false, false) => {
                return Err(BgpvpnError::NoBinding {
                    speaker: speaker_id,
                    bgpvpn: bgpvpn_id,
                });
            }
            _ => {}
        }
        let networks = vpn.networks.clone();
        if let (Some(speaker), Some(vpn)) = (
            self.speakers.get_mut(&speaker_id),
            self.vpns.get_mut(&bgpvpn_id),
        ) {
            if add {
                speaker.vpns.insert(bgpvpn_id);
                vpn.speakers.insert(speaker_id);
            } else {
                speaker.vpns.remove(&bgpvpn_id);
                vpn.speakers.remove(&speaker_id);
            }
        }
        Ok(self.settle(networks, &Scope::All, topology))
    }

    // ---- learned routes ----

    fn gateways(
        &mut self,
        update: &GatewayRoutes,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        if !self.agents.contains_key(&update.host) {
            return Err(BgpvpnError::UnknownAgent(update.host.clone()));
        }
        let mut routes = Vec::with_capacity(update.gateways.len());
        for route in &update.gateways {
            check_vtep(route.vtep)?;
            routes.push((route.vtep, check_vni(route.vni)?, route));
        }
        let learned = self.learned.entry(update.host.clone()).or_default();
        let mut vteps = BTreeSet::new();
        for (vtep, vni, route) in routes {
            vteps.insert(vtep);
            learned.stale_gateways.remove(&(vtep, vni));
            if route.withdrawn {
                learned.gateways.remove(&(vtep, vni));
            } else {
                learned
                    .gateways
                    .insert((vtep, vni), route.route_targets.iter().copied().collect());
            }
        }
        let networks = self.agent_networks(&update.host);
        Ok(self.settle(
            networks,
            &Scope::Keys {
                macs: BTreeSet::new(),
                vteps,
            },
            topology,
        ))
    }

    fn devices(
        &mut self,
        update: &DeviceRoutes,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        if !self.agents.contains_key(&update.host) {
            return Err(BgpvpnError::UnknownAgent(update.host.clone()));
        }
        let mut routes = Vec::with_capacity(update.devices.len());
        for route in &update.devices {
            check_vtep(route.vtep)?;
            route
                .mac
                .validate_unicast()
                .map_err(BgpvpnError::InvalidMac)?;
            if let Some(ip) = route.ip
                && (ip.is_multicast() || ip.is_unspecified())
            {
                return Err(BgpvpnError::InvalidDeviceIp { mac: route.mac, ip });
            }
            routes.push((
                (route.mac, route.ip, route.vtep, check_vni(route.vni)?),
                route,
            ));
        }
        let learned = self.learned.entry(update.host.clone()).or_default();
        let mut macs = BTreeSet::new();
        for (key, route) in routes {
            macs.insert(key.0);
            learned.stale_devices.remove(&key);
            if route.withdrawn {
                learned.devices.remove(&key);
            } else {
                let attributes = DeviceAttributes {
                    route_targets: route.route_targets.iter().copied().collect(),
                    seq: route.seq.unwrap_or(0),
                };
                learned.devices.insert(key, attributes);
            }
        }
        let networks = self.agent_networks(&update.host);
        Ok(self.settle(
            networks,
            &Scope::Keys {
                macs,
                vteps: BTreeSet::new(),
            },
            topology,
        ))
    }

    /// Purges the routes of `host` still stale after a graceful restart, in one diff.
    fn end_of_rib(
        &mut self,
        host: &Host,
        topology: TopologyView<'_>,
    ) -> Result<ExtensionChanges, BgpvpnError> {
        if !self.agents.contains_key(host) {
            return Err(BgpvpnError::UnknownAgent(host.clone()));
        }
        let Some(learned) = self.learned.get_mut(host) else {
            return Ok(ExtensionChanges::default());
        };
        let mut vteps = BTreeSet::new();
        for key in std::mem::take(&mut learned.stale_gateways) {
            learned.gateways.remove(&key);
            vteps.insert(key.0);
        }
        let mut macs = BTreeSet::new();
        for key in std::mem::take(&mut learned.stale_devices) {
            learned.devices.remove(&key);
            macs.insert(key.0);
        }
        if vteps.is_empty() && macs.is_empty() {
            return Ok(ExtensionChanges::default());
        }
        let networks = self.agent_networks(host);
        Ok(self.settle(networks, &Scope::Keys { macs, vteps }, topology))
    }

    // ---- what counts, and the diff ----

    fn agent_up(&self, host: &Host) -> bool {
        self.agents
            .get(host)
            .is_some_and(|a| a.admin_state_up && a.alive)
    }

    /// The BGP agents whose routes count for `vpn`: up, and hosting a speaker bound to it.
    fn counting_agents(&self, vpn: &Vpn) -> BTreeSet<&Host> {
        vpn.speakers
            .iter()
            .filter_map(|s| self.speakers.get(s))
            .flat_map(|s| s.agents.iter())
            .filter(|h| self.agent_up(h))
            .collect()
    }

    /// The entries `network` should have now, within `scope`.
    fn desired(
        &mut self,
        network: NetworkId,
        scope: &Scope,
        topology: TopologyView<'_>,
    ) -> Entries {
        let mut entries = Entries::default();
        let Some(net) = topology.network(network) else {
            return entries;
        };
        if net.segment.network_type() != NetworkType::Vxlan {
            return entries;
        }
        let segmentation_id = net.segment.segmentation_id();
        let Some(vpn_ids) = self.network_vpns.get(&network) else {
            return entries;
        };
        // Per MAC: candidate routes (seq, VTEP, IP or none).
        let mut candidates: BTreeMap<Mac, Vec<(u32, IpAddr, Option<IpAddr>)>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for vpn in vpn_ids
            .iter()
            .filter_map(|id| self.vpns.get(id))
            .filter(|v| v.vpn_type == VpnType::L2)
        {
            // The route's VNI, else the BGPVPN's, must be the network's: agents use the local
            // segmentation id as the VNI toward every VTEP. Unknown is not a match.
            let vni_ok = |route_vni: Option<u32>| match route_vni.or(vpn.vni) {
                Some(v) if Some(v) == segmentation_id => Ok(()),
                other => Err(other),
            };
            for host in self.counting_agents(vpn) {
                let Some(learned) = self.learned.get(host) else {
                    continue;
                };
                for ((vtep, vni), targets) in gateways_in(learned, scope) {
                    if !vpn.imports(targets) {
                        continue;
                    }
                    match vni_ok(*vni) {
                        Ok(()) => {
                            entries.flood.insert(*vtep);
                        }
                        Err(route_vni) => skipped.push(BgpvpnReport::VniMismatch {
                            bgpvpn: vpn.id,
                            network,
                            vtep: *vtep,
                            mac: None,
                            route_vni,
                            segmentation_id,
                        }),
                    }
                }
                for ((mac, ip, vtep, vni), attributes) in devices_in(learned, scope) {
                    if !vpn.imports(&attributes.route_targets) {
                        continue;
                    }
                    match vni_ok(*vni) {
                        Ok(()) => {
                            candidates
                                .entry(*mac)
                                .or_default()
                                .push((attributes.seq, *vtep, *ip))
                        }
                        Err(route_vni) => skipped.push(BgpvpnReport::VniMismatch {
                            bgpvpn: vpn.id,
                            network,
                            vtep: *vtep,
                            mac: Some(*mac),
                            route_vni,
                            segmentation_id,
                        }),
                    }
                }
            }
        }
        self.reports.extend(skipped);
        for (mac, routes) in candidates {
            // RFC 7432 §7.7: the highest sequence wins, then the lowest VTEP address.
            let Some(&(_, vtep, _)) = routes
                .iter()
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            else {
                continue;
            };
            let mut ips: BTreeSet<IpAddr> = routes
                .iter()
                .filter(|r| r.1 == vtep)
                .filter_map(|r| r.2)
                .collect();
            if ips.is_empty() {
                ips.insert(MAC_ONLY);
            }
            entries.macs.insert(mac, (vtep, ips));
        }
        entries
    }

    /// Recomputes `networks` within `scope`, records the new announced entries and returns the
    /// difference as engine changes (removes, then adds; the engine turns a VTEP change of a MAC
    /// into a move).
    fn settle(
        &mut self,
        networks: impl IntoIterator<Item = NetworkId>,
        scope: &Scope,
        topology: TopologyView<'_>,
    ) -> ExtensionChanges {
        let mut changes = ExtensionChanges::default();
        for network in networks {
            let desired = self.desired(network, scope, topology);
            let announced = self.announced.entry(network).or_default();
            // A route update names its keys: look them up, never walk the whole network.
            let flood_before: BTreeSet<IpAddr> = match scope {
                Scope::All => announced.flood.clone(),
                Scope::Keys { vteps, .. } => vteps
                    .iter()
                    .filter(|v| announced.flood.contains(v))
                    .copied()
                    .collect(),
            };
            for vtep in flood_before.difference(&desired.flood) {
                changes.removes.push((network, *vtep, FLOODING_ENTRY));
                announced.flood.remove(vtep);
            }
            for vtep in desired.flood.difference(&flood_before) {
                changes.adds.push((network, *vtep, FLOODING_ENTRY));
                announced.flood.insert(*vtep);
            }
            let macs: BTreeSet<Mac> = match scope {
                Scope::All => announced
                    .macs
                    .keys()
                    .chain(desired.macs.keys())
                    .copied()
                    .collect(),
                Scope::Keys { macs, .. } => macs.clone(),
            };
            for mac in macs {
                let pairs = |e: Option<&(IpAddr, BTreeSet<IpAddr>)>| -> BTreeSet<(IpAddr, IpAddr)> {
                    e.map(|(vtep, ips)| ips.iter().map(|ip| (*vtep, *ip)).collect())
                        .unwrap_or_default()
                };
                let before = pairs(announced.macs.get(&mac));
                let after = pairs(desired.macs.get(&mac));
                for (vtep, ip) in before.difference(&after) {
                    changes
                        .removes
                        .push((network, *vtep, PortInfo::new(mac, *ip)));
                }
                for (vtep, ip) in after.difference(&before) {
                    changes.adds.push((network, *vtep, PortInfo::new(mac, *ip)));
                }
                match desired.macs.get(&mac) {
                    Some(entry) => announced.macs.insert(mac, entry.clone()),
                    None => announced.macs.remove(&mac),
                };
            }
            if *announced == Entries::default() {
                self.announced.remove(&network);
            }
        }
        changes
    }
}

fn gateways_in<'a>(
    learned: &'a Learned,
    scope: &'a Scope,
) -> Box<dyn Iterator<Item = (&'a GatewayKey, &'a BTreeSet<RouteTarget>)> + 'a> {
    match scope {
        Scope::All => Box::new(learned.gateways.iter()),
        Scope::Keys { vteps, .. } => Box::new(vteps.iter().flat_map(move |vtep| {
            learned
                .gateways
                .range((*vtep, None)..=(*vtep, Some(u32::MAX)))
        })),
    }
}

fn devices_in<'a>(
    learned: &'a Learned,
    scope: &'a Scope,
) -> Box<dyn Iterator<Item = (&'a DeviceKey, &'a DeviceAttributes)> + 'a> {
    match scope {
        Scope::All => Box::new(learned.devices.iter()),
        Scope::Keys { macs, .. } => Box::new(macs.iter().flat_map(move |mac| {
            learned
                .devices
                .range((*mac, None, IpAddr::V4(Ipv4Addr::UNSPECIFIED), None)..)
                .take_while(move |(k, _)| k.0 == *mac)
        })),
    }
}

impl FdbExtension for Bgpvpn {
    fn extend_full_fdb(
        &self,
        request: &FullFdbRequest<'_>,
        out: &mut ExtensionEntries,
    ) -> Result<(), ExtensionError> {
        let Some(entries) = self.announced.get(&request.network.id) else {
            return Ok(());
        };
        for vtep in &entries.flood {
            out.flood(*vtep);
        }
        for (mac, (vtep, ips)) in &entries.macs {
            for ip in ips {
                out.unicast(*vtep, PortInfo::new(*mac, *ip));
            }
        }
        Ok(())
    }

    /// Neutron deletes a network's BGPVPN associations with it; so does the extension.
    fn network_deleted(&mut self, network: NetworkId) {
        if let Some(vpns) = self.network_vpns.remove(&network) {
            for id in vpns {
                if let Some(vpn) = self.vpns.get_mut(&id) {
                    vpn.networks.remove(&network);
                }
            }
        }
        self.announced.remove(&network);
    }

    fn save_state(&self) -> Result<Vec<u8>, ExtensionError> {
        let mut bytes = Vec::new();
        ciborium::into_writer(self, &mut bytes).map_err(|e| ExtensionError::new(e.to_string()))?;
        Ok(bytes)
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), ExtensionError> {
        *self = ciborium::from_reader(state).map_err(|e| ExtensionError::new(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "extension_tests.rs"]
mod tests;

//! Import: Adj-RIB-In changes of every peer → the learned-route events of the BGPVPN extension
//! (`l2pop_bgpvpn::GatewayRoute`, `DeviceRoute`, as `POST /v2.0/l2pop/bgp-agents/{host}/…`
//! takes them; `docs/bgpvpn.md` §3).
//!
//! Mapping (RFC 7432, RFC 8365):
//! - type 3 → gateway: VTEP = PMSI Tunnel Ingress Replication endpoint, else the originating
//!   router's IP; VNI = PMSI label. A PMSI of another tunnel type means "do not ingress
//!   replicate to me", so no gateway.
//! - type 2 → device: MAC, IP (none for MAC-only), VTEP = next hop, VNI = Label1,
//!   `seq` = MAC Mobility sequence; a MAC with a sticky route (RFC 7432 §15.2) keeps only its
//!   sticky routes.
//! - a route is imported when it carries a route target of the import set (every route with
//!   a route target when the set is empty); the server then matches it to BGPVPNs by RT. Routes
//!   whose encapsulation is not VXLAN, or whose values the server would refuse, are skipped
//!   and counted.
//!
//! The importer is level-triggered: it keeps every peer's imported routes and what it has
//! reported, and for each touched gateway or MAC reports only the difference. Two NLRIs that
//! give the same server identity (two RDs, two peers) are one report, withdrawn with the last.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use l2pop_bgpvpn::{DeviceRoute, GatewayRoute, RouteTarget};
use l2pop_model::Mac;

use crate::codec::ENCAP_VXLAN;
use crate::rib::{Path, Pmsi, RibChange, RouteKey};

/// Which peer a change came from (the neighbour's address).
pub type PeerId = IpAddr;

/// One learned-route event, in the order the server must apply them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    Gateway(GatewayRoute),
    Device(DeviceRoute),
}

/// A gateway's identity on the server: (VTEP, VNI).
type GatewayKey = (IpAddr, Option<u32>);
/// A device's identity under its MAC: (IP, VTEP, VNI).
type DeviceKey = (Option<IpAddr>, IpAddr, Option<u32>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceCandidate {
    key: DeviceKey,
    route_targets: BTreeSet<RouteTarget>,
    seq: u32,
    sticky: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceReport {
    route_targets: BTreeSet<RouteTarget>,
    seq: u32,
}

/// Why a route was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    NoRouteTarget,
    NotImported,
    NotVxlan,
    NotIngressReplication,
    InvalidVtep,
    InvalidMac,
    InvalidIp,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NoRouteTarget => "no_route_target",
            Skip::NotImported => "route_target_not_imported",
            Skip::NotVxlan => "not_vxlan",
            Skip::NotIngressReplication => "not_ingress_replication",
            Skip::InvalidVtep => "invalid_vtep",
            Skip::InvalidMac => "invalid_mac",
            Skip::InvalidIp => "invalid_ip",
        }
    }
}

/// Adj-RIB-In changes in, learned-route events out.
#[derive(Debug, Clone, Default)]
pub struct Importer {
    import_targets: BTreeSet<RouteTarget>,
    gateways: BTreeMap<GatewayKey, BTreeMap<(PeerId, RouteKey), BTreeSet<RouteTarget>>>,
    devices: BTreeMap<Mac, BTreeMap<(PeerId, RouteKey), DeviceCandidate>>,
    reported_gateways: BTreeMap<GatewayKey, BTreeSet<RouteTarget>>,
    reported_devices: BTreeMap<Mac, BTreeMap<DeviceKey, DeviceReport>>,
    skipped: BTreeMap<Skip, u64>,
}

enum Candidate {
    Gateway(GatewayKey, BTreeSet<RouteTarget>),
    Device(Mac, DeviceCandidate),
}

fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// A VNI the server accepts (1..=2^24-1); 0 means "not given".
fn vni(value: u32) -> Option<u32> {
    (value != 0 && value <= 0x00ff_ffff).then_some(value)
}

impl Importer {
    /// `import_targets` empty: every route that carries a route target is reported.
    pub fn new(import_targets: BTreeSet<RouteTarget>) -> Self {
        Importer {
            import_targets,
            ..Importer::default()
        }
    }

    /// Routes not imported, by reason, since start.
    pub fn skipped(&self) -> &BTreeMap<Skip, u64> {
        &self.skipped
    }

    /// What is currently reported: gateways and devices.
    pub fn reported(&self) -> (usize, usize) {
        (
            self.reported_gateways.len(),
            self.reported_devices.values().map(BTreeMap::len).sum(),
        )
    }

    fn candidate(&self, key: &RouteKey, path: &Path) -> Result<Candidate, Skip> {
        if path.route_targets.is_empty() {
            return Err(Skip::NoRouteTarget);
        }
        if !self.import_targets.is_empty() && path.route_targets.is_disjoint(&self.import_targets) {
            return Err(Skip::NotImported);
        }
        // RFC 8365 §5.1.3: EVPN-VXLAN routes carry encapsulation VXLAN; absent, we still
        // accept (older PEs), but another encapsulation alone is not for us.
        if !path.encapsulations.is_empty() && !path.encapsulations.contains(&ENCAP_VXLAN) {
            return Err(Skip::NotVxlan);
        }
        match *key {
            RouteKey::Imet { originator, .. } => {
                let (vtep, vni) = match path.pmsi {
                    Some(Pmsi {
                        tunnel_type: Pmsi::INGRESS_REPLICATION,
                        vni: label,
                        endpoint,
                    }) => (endpoint.unwrap_or(originator), vni(label)),
                    Some(_) => return Err(Skip::NotIngressReplication),
                    None => (originator, None),
                };
                if !unicast(vtep) {
                    return Err(Skip::InvalidVtep);
                }
                Ok(Candidate::Gateway((vtep, vni), path.route_targets.clone()))
            }
            RouteKey::MacIp { mac, ip, .. } => {
                if mac.validate_unicast().is_err() {
                    return Err(Skip::InvalidMac);
                }
                if ip.is_some_and(|ip| !unicast(ip)) {
                    return Err(Skip::InvalidIp);
                }
                if !unicast(path.next_hop) {
                    return Err(Skip::InvalidVtep);
                }
                let mobility = path.mobility.unwrap_or(crate::rib::Mobility {
                    sequence: 0,
                    sticky: false,
                });
                Ok(Candidate::Device(
                    mac,
                    DeviceCandidate {
                        key: (ip, path.next_hop, path.vni.and_then(vni)),
                        route_targets: path.route_targets.clone(),
                        seq: mobility.sequence,
                        sticky: mobility.sticky,
                    },
                ))
            }
        }
    }

    /// Applies one peer's Adj-RIB-In changes; returns what to report, in order.
    pub fn apply(&mut self, peer: PeerId, changes: &[RibChange]) -> Vec<Learned> {
        let mut touched_gateways = BTreeSet::new();
        let mut touched_macs = BTreeSet::new();
        for change in changes {
            let (old, new) = match change {
                RibChange::Added { key, path } => (None, Some((key, path))),
                RibChange::Replaced { key, old, new } => (Some((key, old)), Some((key, new))),
                RibChange::Removed { key, path } => (Some((key, path)), None),
            };
            if let Some((key, path)) = old
                && let Ok(candidate) = self.candidate(key, path)
            {
                match candidate {
                    Candidate::Gateway(g, _) => {
                        if let Some(contributors) = self.gateways.get_mut(&g) {
                            contributors.remove(&(peer, *key));
                            if contributors.is_empty() {
                                self.gateways.remove(&g);
                            }
                        }
                        touched_gateways.insert(g);
                    }
                    Candidate::Device(mac, _) => {
                        if let Some(contributors) = self.devices.get_mut(&mac) {
                            contributors.remove(&(peer, *key));
                            if contributors.is_empty() {
                                self.devices.remove(&mac);
                            }
                        }
                        touched_macs.insert(mac);
                    }
                }
            }
            if let Some((key, path)) = new {
                match self.candidate(key, path) {
                    Ok(Candidate::Gateway(g, targets)) => {
                        self.gateways
                            .entry(g)
                            .or_default()
                            .insert((peer, *key), targets);
                        touched_gateways.insert(g);
                    }
                    Ok(Candidate::Device(mac, candidate)) => {
                        self.devices
                            .entry(mac)
                            .or_default()
                            .insert((peer, *key), candidate);
                        touched_macs.insert(mac);
                    }
                    Err(skip) => *self.skipped.entry(skip).or_default() += 1,
                }
            }
        }

        let mut learned = Vec::new();
        let mut gateway_withdrawals = Vec::new();
        for g in touched_gateways {
            let desired: Option<BTreeSet<RouteTarget>> = self
                .gateways
                .get(&g)
                .map(|c| c.values().flatten().copied().collect());
            let reported = self.reported_gateways.get(&g);
            match (reported, desired) {
                (Some(_), None) => {
                    self.reported_gateways.remove(&g);
                    gateway_withdrawals.push(gateway(g, BTreeSet::new(), true));
                }
                (reported, Some(targets)) if reported != Some(&targets) => {
                    learned.push(gateway(g, targets.clone(), false));
                    self.reported_gateways.insert(g, targets);
                }
                _ => {}
            }
        }
        for mac in touched_macs {
            let desired = self.desired_devices(&mac);
            let reported = self.reported_devices.remove(&mac).unwrap_or_default();
            for (key, report) in &reported {
                if !desired.contains_key(key) {
                    learned.push(device(mac, *key, report, true));
                }
            }
            for (key, report) in &desired {
                if reported.get(key) != Some(report) {
                    learned.push(device(mac, *key, report, false));
                }
            }
            if !desired.is_empty() {
                self.reported_devices.insert(mac, desired);
            }
        }
        learned.extend(gateway_withdrawals);
        learned
    }

    /// The device routes to report for `mac`: sticky ones only if any (RFC 7432 §15.2),
    /// one per identity with the union of route targets and the highest sequence.
    fn desired_devices(&self, mac: &Mac) -> BTreeMap<DeviceKey, DeviceReport> {
        let mut desired: BTreeMap<DeviceKey, DeviceReport> = BTreeMap::new();
        let Some(candidates) = self.devices.get(mac) else {
            return desired;
        };
        let sticky = candidates.values().any(|c| c.sticky);
        for candidate in candidates.values().filter(|c| c.sticky || !sticky) {
            let report = desired.entry(candidate.key).or_insert(DeviceReport {
                route_targets: BTreeSet::new(),
                seq: 0,
            });
            report
                .route_targets
                .extend(candidate.route_targets.iter().copied());
            report.seq = report.seq.max(candidate.seq);
        }
        desired
    }
}

fn gateway(key: GatewayKey, targets: BTreeSet<RouteTarget>, withdrawn: bool) -> Learned {
    Learned::Gateway(GatewayRoute {
        vtep: key.0,
        route_targets: targets.into_iter().collect(),
        vni: key.1.map(u64::from),
        withdrawn,
    })
}

fn device(mac: Mac, key: DeviceKey, report: &DeviceReport, withdrawn: bool) -> Learned {
    Learned::Device(DeviceRoute {
        mac,
        ip: key.0,
        vtep: key.1,
        route_targets: if withdrawn {
            Vec::new()
        } else {
            report.route_targets.iter().copied().collect()
        },
        vni: key.2.map(u64::from),
        seq: (!withdrawn && report.seq > 0).then_some(report.seq),
        withdrawn,
    })
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;

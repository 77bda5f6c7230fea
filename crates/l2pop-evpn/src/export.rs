//! Export: our hosts and ports as EVPN routes for the VPN site (RFC 7432, RFC 8365), pure.
//!
//! ```text
//!  server snapshot (BGPVPNs served, their networks' FDB)  ─► ExportView
//!  fanout deltas (add/remove/update_fdb_entries, not bgpvpn's) ─► ExportView::apply
//!  ExportView ─► routes() ─► Routes (key → path) ─► diff(old, new) ─► codec::export_updates
//! ```
//!
//! For each l2 BGPVPN the speaker serves and each of its VXLAN networks: a type-3 (IMET) route
//! per host VTEP with ports there (Ethernet Tag 0, PMSI Tunnel ingress replication to the VTEP
//! with the VNI as label) and a type-2 (MAC/IP) route per entry `[mac, ip]` (Label1 = VNI, RFC
//! 8365 §5.1.3), next hop the host's VTEP, with the BGPVPN's export route targets
//! (`route_targets` ∪ `export_targets`) and the VXLAN encapsulation community. Entries the
//! BGPVPN extension learned from the site are never in the view (the caller filters them), so
//! nothing is reflected back.
//!
//! Route distinguishers: network *i* of a BGPVPN (by network id) takes the BGPVPN's RD *i*,
//! else the automatic one of the network, `<local AS>:<VNI>` (type 0; `<router id>:<VNI>`,
//! type 1, when the AS needs 4 octets). Two BGPVPNs on one network with automatic RDs give the
//! same routes: their route targets are united (one MAC-VRF per network).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use l2pop_bgpvpn::{BgpvpnId, RouteTarget};
use l2pop_model::{FdbEntries, FdbPayload, Mac, Method, NetworkId, NetworkType, PortInfo};

use crate::rib::{Rd, RouteKey};

/// An l2 BGPVPN the speaker serves, as the server defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnExport {
    pub id: BgpvpnId,
    pub route_targets: BTreeSet<RouteTarget>,
    pub export_targets: BTreeSet<RouteTarget>,
    pub route_distinguishers: Vec<RouteTarget>,
    pub local_pref: Option<u32>,
    pub networks: BTreeSet<NetworkId>,
}

impl VpnExport {
    /// networking-bgpvpn: exported routes carry `route_targets` ∪ `export_targets`.
    pub fn exported_targets(&self) -> BTreeSet<RouteTarget> {
        self.route_targets
            .union(&self.export_targets)
            .copied()
            .collect()
    }
}

/// One network's entries as our hosts' agents have them (native and non-BGPVPN entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkEntries {
    pub segment_id: Option<u32>,
    pub network_type: Option<NetworkType>,
    /// VTEPs with a flooding entry: hosts with ports on the network.
    pub flood: BTreeSet<IpAddr>,
    /// `[mac, ip]` → VTEP. An add at another VTEP moves the entry (DESIGN, difference 4).
    pub entries: BTreeMap<(Mac, IpAddr), IpAddr>,
}

impl NetworkEntries {
    fn add(&mut self, vtep: IpAddr, entry: PortInfo) {
        if entry.mac.is_zero() {
            self.flood.insert(vtep);
        } else {
            self.entries.insert((entry.mac, entry.ip), vtep);
        }
    }

    /// A remove deletes an entry only where it names the VTEP the entry is at.
    fn remove(&mut self, vtep: IpAddr, entry: PortInfo) {
        if entry.mac.is_zero() {
            self.flood.remove(&vtep);
        } else if self.entries.get(&(entry.mac, entry.ip)) == Some(&vtep) {
            self.entries.remove(&(entry.mac, entry.ip));
        }
    }
}

/// What the speaker exports from: the BGPVPNs it serves and the entries of their networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportView {
    pub vpns: Vec<VpnExport>,
    pub networks: BTreeMap<NetworkId, NetworkEntries>,
}

impl ExportView {
    /// The view of a snapshot: `fdb` holds every served network's full FDB.
    pub fn new(vpns: Vec<VpnExport>, fdb: &FdbEntries) -> Self {
        let mut view = ExportView {
            vpns,
            networks: BTreeMap::new(),
        };
        view.apply(Method::AddFdbEntries, &FdbPayload::Entries(fdb.clone()));
        view
    }

    fn served(&self, network: NetworkId) -> bool {
        self.vpns.iter().any(|v| v.networks.contains(&network))
    }

    /// Applies one fanout delta (Neutron's three methods); networks not served are ignored.
    pub fn apply(&mut self, method: Method, payload: &FdbPayload) {
        match payload {
            FdbPayload::Entries(entries) => {
                for (network, fdb) in &entries.0 {
                    if !self.served(*network) {
                        continue;
                    }
                    let state = self.networks.entry(*network).or_default();
                    state.segment_id = fdb.segment_id.or(state.segment_id);
                    state.network_type = Some(fdb.network_type);
                    for (vtep, list) in &fdb.ports {
                        for entry in list {
                            match method {
                                Method::RemoveFdbEntries => state.remove(*vtep, *entry),
                                _ => state.add(*vtep, *entry),
                            }
                        }
                    }
                }
            }
            FdbPayload::ChgIp(change) => {
                for (network, vteps) in &change.0 {
                    let Some(state) = self.networks.get_mut(network) else {
                        continue;
                    };
                    for (vtep, ips) in vteps {
                        for entry in &ips.before {
                            state.remove(*vtep, *entry);
                        }
                        for entry in &ips.after {
                            state.add(*vtep, *entry);
                        }
                    }
                }
            }
        }
    }
}

/// The attributes of one exported route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportPath {
    /// The host's VTEP: the BGP next hop and, for type 3, the PMSI tunnel endpoint.
    pub next_hop: IpAddr,
    /// The VNI: Label1 of a type-2 route, the PMSI label of a type-3 route.
    pub vni: u32,
    pub route_targets: BTreeSet<RouteTarget>,
    pub local_pref: Option<u32>,
}

/// Every route to advertise, by NLRI.
pub type Routes = BTreeMap<RouteKey, ExportPath>;

/// Who we are, for automatic route distinguishers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub asn: u32,
    pub router_id: Ipv4Addr,
}

/// Something left out of the export, for the log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExportSkip {
    /// Only VXLAN networks with a segmentation id can be reached over EVPN-VXLAN.
    NotVxlan {
        bgpvpn: BgpvpnId,
        network: NetworkId,
    },
    /// A BGPVPN without `route_targets` or `export_targets`: no peer would import its routes.
    NoExportTargets { bgpvpn: BgpvpnId },
}

impl std::fmt::Display for ExportSkip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportSkip::NotVxlan { bgpvpn, network } => write!(
                f,
                "network {network} of BGPVPN {bgpvpn}: not a VXLAN network with a segmentation id"
            ),
            ExportSkip::NoExportTargets { bgpvpn } => {
                write!(f, "BGPVPN {bgpvpn}: no route_targets or export_targets")
            }
        }
    }
}

/// Encodes a route distinguisher (RFC 4364 §4.2; same text forms as route targets).
pub fn rd_of(rd: RouteTarget) -> Rd {
    let mut b = [0u8; 8];
    match rd {
        RouteTarget::As2 { asn, number } => {
            b[2..4].copy_from_slice(&asn.to_be_bytes());
            b[4..8].copy_from_slice(&number.to_be_bytes());
        }
        RouteTarget::Ipv4 { address, number } => {
            b[1] = 1;
            b[2..6].copy_from_slice(&address.octets());
            b[6..8].copy_from_slice(&number.to_be_bytes());
        }
        RouteTarget::As4 { asn, number } => {
            b[1] = 2;
            b[2..6].copy_from_slice(&asn.to_be_bytes());
            b[6..8].copy_from_slice(&number.to_be_bytes());
        }
    }
    Rd(b)
}

/// The automatic RD of the network with VNI `vni` (see the module documentation).
pub fn auto_rd(origin: Origin, vni: u32) -> Rd {
    match u16::try_from(origin.asn) {
        Ok(asn) => rd_of(RouteTarget::As2 { asn, number: vni }),
        Err(_) => rd_of(RouteTarget::Ipv4 {
            address: origin.router_id,
            // A VNI above 65535 is truncated here; configure an RD for such BGPVPNs.
            number: (vni & 0xffff) as u16,
        }),
    }
}

/// The routes `view` exports, and what it had to leave out.
pub fn routes(view: &ExportView, origin: Origin) -> (Routes, Vec<ExportSkip>) {
    let mut out = Routes::new();
    let mut skipped = Vec::new();
    for vpn in &view.vpns {
        let targets = vpn.exported_targets();
        if targets.is_empty() {
            skipped.push(ExportSkip::NoExportTargets { bgpvpn: vpn.id });
            continue;
        }
        for (index, network) in vpn.networks.iter().enumerate() {
            let Some(state) = view.networks.get(network) else {
                continue;
            };
            let vni = match (state.network_type, state.segment_id) {
                (Some(NetworkType::Vxlan), Some(vni)) => vni,
                _ => {
                    skipped.push(ExportSkip::NotVxlan {
                        bgpvpn: vpn.id,
                        network: *network,
                    });
                    continue;
                }
            };
            let rd = vpn
                .route_distinguishers
                .get(index)
                .map(|rd| rd_of(*rd))
                .unwrap_or_else(|| auto_rd(origin, vni));
            let mut add = |key: RouteKey, next_hop: IpAddr| {
                let path = out.entry(key).or_insert_with(|| ExportPath {
                    next_hop,
                    vni,
                    route_targets: BTreeSet::new(),
                    local_pref: vpn.local_pref,
                });
                path.route_targets.extend(targets.iter().copied());
            };
            for vtep in &state.flood {
                let key = RouteKey::Imet {
                    rd,
                    ethernet_tag: 0,
                    originator: *vtep,
                };
                add(key, *vtep);
            }
            for ((mac, ip), vtep) in &state.entries {
                let key = RouteKey::MacIp {
                    rd,
                    ethernet_tag: 0,
                    mac: *mac,
                    // A MAC-only entry (`0.0.0.0`, from an extension) is a MAC-only route.
                    ip: (!ip.is_unspecified()).then_some(*ip),
                };
                add(key, *vtep);
            }
        }
    }
    (out, skipped)
}

/// What changes between two exports: routes to (re-)announce and routes to withdraw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportDiff {
    pub announce: Vec<(RouteKey, ExportPath)>,
    /// With the path last announced (a type-2 withdrawal still carries a label).
    pub withdraw: Vec<(RouteKey, ExportPath)>,
}

impl ExportDiff {
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }
}

/// `old` → `new`: a route whose path changed is announced again (an implicit withdraw).
pub fn diff(old: &Routes, new: &Routes) -> ExportDiff {
    let mut out = ExportDiff::default();
    for (key, path) in old {
        if !new.contains_key(key) {
            out.withdraw.push((*key, path.clone()));
        }
    }
    for (key, path) in new {
        if old.get(key) != Some(path) {
            out.announce.push((*key, path.clone()));
        }
    }
    out
}

/// Messages for one peer.
pub type Outgoing = Vec<(IpAddr, Vec<u8>)>;

/// The export side of the speaker's owner: the view, the routes every synced peer holds, and
/// the established peers. Pure: the caller feeds snapshots, fanout deltas and session events,
/// and sends what comes back.
///
/// A peer gets the whole export followed by End-of-RIB (RFC 4724 §2) when it comes up, or, if
/// the view is not known yet, at the first snapshot; from then on only differences. Until the
/// first snapshot nothing is advertised; after a gap the routes stay as they were until the
/// next snapshot replaces the view (never a partial view, never a blackout).
#[derive(Debug)]
pub struct Exporter {
    origin: Origin,
    view: Option<ExportView>,
    routes: Routes,
    /// Who exports under which RD, for [`Exporter::apply`]; rebuilt with the routes.
    index: RdIndex,
    peers: BTreeMap<IpAddr, crate::codec::ExportSession>,
    skipped: Vec<ExportSkip>,
}

impl Exporter {
    pub fn new(origin: Origin) -> Self {
        Exporter {
            origin,
            view: None,
            routes: Routes::new(),
            index: RdIndex::default(),
            peers: BTreeMap::new(),
            skipped: Vec::new(),
        }
    }

    /// The view is known (a snapshot was taken).
    pub fn synced(&self) -> bool {
        self.view.is_some()
    }

    /// What is advertised.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    fn everything(&self, session: &crate::codec::ExportSession) -> Vec<Vec<u8>> {
        let all = diff(&Routes::new(), &self.routes);
        let mut out = crate::codec::export_updates(&all, session);
        out.push(crate::codec::end_of_rib());
        out
    }

    fn to_peers(&self, changes: &ExportDiff) -> Outgoing {
        let mut out = Outgoing::new();
        if changes.is_empty() {
            return out;
        }
        for (peer, session) in &self.peers {
            for message in crate::codec::export_updates(changes, session) {
                out.push((*peer, message));
            }
        }
        out
    }

    /// A session reached Established.
    pub fn peer_up(&mut self, peer: IpAddr, session: crate::codec::ExportSession) -> Outgoing {
        self.peers.insert(peer, session);
        if self.view.is_none() {
            return Outgoing::new();
        }
        self.everything(&session)
            .into_iter()
            .map(|m| (peer, m))
            .collect()
    }

    /// A session left Established: the peer drops our routes itself (RFC 4271 §9.1).
    pub fn peer_down(&mut self, peer: IpAddr) {
        self.peers.remove(&peer);
    }

    /// Takes a snapshot's view; the peers get the difference, or, at the first snapshot,
    /// everything and End-of-RIB. The second value is set when what is left out changed.
    pub fn resync(&mut self, view: ExportView) -> (Outgoing, Option<Vec<ExportSkip>>) {
        let first = self.view.is_none();
        let (routes, skipped) = routes(&view, self.origin);
        let changes = diff(&self.routes, &routes);
        self.routes = routes;
        self.index = RdIndex::new(&view, self.origin);
        self.view = Some(view);
        let news = (skipped != self.skipped).then(|| skipped.clone());
        self.skipped = skipped;
        if first {
            let mut out = Outgoing::new();
            for (peer, session) in &self.peers {
                out.extend(self.everything(session).into_iter().map(|m| (*peer, m)));
            }
            return (out, news);
        }
        (self.to_peers(&changes), news)
    }

    /// Applies one fanout delta (already filtered: not the BGPVPN extension's, in order).
    ///
    /// Only the routes of the entries the delta names are recomputed, so a delta costs what it
    /// touches, not the size of the export: exporting N ports one delta at a time is O(N log N),
    /// not O(N²). A delta that changes what a network exports under (its type or segment, or the
    /// network's first entries) recomputes everything, which gives the same routes.
    pub fn apply(&mut self, method: Method, payload: &FdbPayload) -> Outgoing {
        let changes = self.apply_diff(method, payload);
        self.to_peers(&changes)
    }

    /// [`Exporter::apply`] without the messages: what the delta changed, as
    /// `diff(old routes, routes(new view))` would give it.
    pub fn apply_diff(&mut self, method: Method, payload: &FdbPayload) -> ExportDiff {
        let Some(view) = self.view.as_mut() else {
            return ExportDiff::default();
        };
        let touched = touched(view, payload);
        let shape = |view: &ExportView| -> Vec<_> {
            touched
                .keys()
                .map(|n| view.networks.get(n).map(|s| (s.network_type, s.segment_id)))
                .collect()
        };
        let before = shape(view);
        view.apply(method, payload);
        if shape(view) != before {
            let (routes, _) = routes(view, self.origin);
            let changes = diff(&self.routes, &routes);
            self.routes = routes;
            self.index = RdIndex::new(view, self.origin);
            return changes;
        }
        let mut keys = BTreeSet::new();
        for (network, items) in &touched {
            for rd in self.index.rds(*network) {
                keys.extend(items.iter().map(|item| item.key(*rd)));
            }
        }
        let mut changes = ExportDiff::default();
        for key in keys {
            let new = self.index.path(view, &key);
            let old = match &new {
                Some(path) => self.routes.insert(key, path.clone()),
                None => self.routes.remove(&key),
            };
            match (old, new) {
                (Some(old), None) => changes.withdraw.push((key, old)),
                (old, Some(new)) if old.as_ref() != Some(&new) => changes.announce.push((key, new)),
                _ => {}
            }
        }
        changes
    }
}

/// One entry of a network's state, as a delta names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Flood(IpAddr),
    Entry(Mac, IpAddr),
}

impl Item {
    fn key(self, rd: Rd) -> RouteKey {
        match self {
            Item::Flood(vtep) => RouteKey::Imet {
                rd,
                ethernet_tag: 0,
                originator: vtep,
            },
            Item::Entry(mac, ip) => RouteKey::MacIp {
                rd,
                ethernet_tag: 0,
                mac,
                ip: (!ip.is_unspecified()).then_some(ip),
            },
        }
    }
}

/// The entries `payload` names, per served network (what [`ExportView::apply`] may change).
fn touched(view: &ExportView, payload: &FdbPayload) -> BTreeMap<NetworkId, Vec<Item>> {
    let item = |entry: &PortInfo, vtep: IpAddr| {
        if entry.mac.is_zero() {
            Item::Flood(vtep)
        } else {
            Item::Entry(entry.mac, entry.ip)
        }
    };
    let mut out: BTreeMap<NetworkId, Vec<Item>> = BTreeMap::new();
    match payload {
        FdbPayload::Entries(entries) => {
            for (network, fdb) in &entries.0 {
                if !view.served(*network) {
                    continue;
                }
                let items = out.entry(*network).or_default();
                for (vtep, list) in &fdb.ports {
                    items.extend(list.iter().map(|e| item(e, *vtep)));
                }
            }
        }
        FdbPayload::ChgIp(change) => {
            for (network, vteps) in &change.0 {
                if !view.networks.contains_key(network) {
                    continue;
                }
                let items = out.entry(*network).or_default();
                for (vtep, ips) in vteps {
                    items.extend(ips.before.iter().chain(&ips.after).map(|e| item(e, *vtep)));
                }
            }
        }
    }
    out
}

/// One (BGPVPN, network) pair that exports under an RD, in the order [`routes`] visits them.
#[derive(Debug, Clone)]
struct Contributor {
    network: NetworkId,
    vni: u32,
    targets: BTreeSet<RouteTarget>,
    local_pref: Option<u32>,
}

/// For each RD, the pairs exporting under it; for each network, its RDs. With it one route
/// is recomputed from the view alone, exactly as [`routes`] computes it.
#[derive(Debug, Clone, Default)]
struct RdIndex {
    by_rd: BTreeMap<Rd, Vec<Contributor>>,
    by_network: BTreeMap<NetworkId, BTreeSet<Rd>>,
}

impl RdIndex {
    /// Mirrors [`routes`]: the same pairs, skipped for the same reasons, in the same order.
    fn new(view: &ExportView, origin: Origin) -> Self {
        let mut index = RdIndex::default();
        for vpn in &view.vpns {
            let targets = vpn.exported_targets();
            if targets.is_empty() {
                continue;
            }
            for (position, network) in vpn.networks.iter().enumerate() {
                let Some(state) = view.networks.get(network) else {
                    continue;
                };
                let (Some(NetworkType::Vxlan), Some(vni)) = (state.network_type, state.segment_id)
                else {
                    continue;
                };
                let rd = vpn
                    .route_distinguishers
                    .get(position)
                    .map(|rd| rd_of(*rd))
                    .unwrap_or_else(|| auto_rd(origin, vni));
                index.by_rd.entry(rd).or_default().push(Contributor {
                    network: *network,
                    vni,
                    targets: targets.clone(),
                    local_pref: vpn.local_pref,
                });
                index.by_network.entry(*network).or_default().insert(rd);
            }
        }
        index
    }

    fn rds(&self, network: NetworkId) -> impl Iterator<Item = &Rd> {
        self.by_network.get(&network).into_iter().flatten()
    }

    /// The path [`routes`] gives `key`: the first pair holding the entry sets next hop, VNI
    /// and local preference; every pair holding it adds its targets.
    fn path(&self, view: &ExportView, key: &RouteKey) -> Option<ExportPath> {
        let (rd, items) = match *key {
            RouteKey::Imet { rd, originator, .. } => (rd, [Some(Item::Flood(originator)), None]),
            RouteKey::MacIp { rd, mac, ip, .. } => match ip {
                Some(ip) => (rd, [Some(Item::Entry(mac, ip)), None]),
                // Both unspecified addresses give the MAC-only route; IPv4 sorts first.
                None => (
                    rd,
                    [
                        Some(Item::Entry(mac, IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
                        Some(Item::Entry(
                            mac,
                            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                        )),
                    ],
                ),
            },
        };
        let mut out: Option<ExportPath> = None;
        for c in self.by_rd.get(&rd).into_iter().flatten() {
            let Some(state) = view.networks.get(&c.network) else {
                continue;
            };
            for item in items.iter().flatten() {
                let vtep = match *item {
                    Item::Flood(vtep) => state.flood.contains(&vtep).then_some(vtep),
                    Item::Entry(mac, ip) => state.entries.get(&(mac, ip)).copied(),
                };
                let Some(vtep) = vtep else { continue };
                let path = out.get_or_insert_with(|| ExportPath {
                    next_hop: vtep,
                    vni: c.vni,
                    route_targets: BTreeSet::new(),
                    local_pref: c.local_pref,
                });
                path.route_targets.extend(c.targets.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "export_proptests.rs"]
mod proptests;

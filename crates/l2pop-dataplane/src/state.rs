//! The two tables `plan` compares: what the agent wants ([`Desired`]) and what the kernel holds
//! ([`Observed`]), plus [`Observed::apply`], which advances an observation by one executed
//! [`Op`] exactly as the kernel would, so the agent need not re-dump after every change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use l2pop_model::Mac;

use crate::Op;
use crate::names::vxlan_name;

/// The IANA VXLAN port (`dstport 4789`); Linux defaults to 8472 when none is given.
pub const VXLAN_PORT: u16 = 4789;

/// Everything the agent wants in the kernel, one entry per VXLAN segment, keyed by VNI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub networks: BTreeMap<u32, DesiredNetwork>,
}

impl Desired {
    /// Adds or replaces the network of `network.vni`.
    pub fn insert(&mut self, network: DesiredNetwork) {
        self.networks.insert(network.vni, network);
    }
}

/// One VXLAN segment as the agent wants it: a bridge, a VXLAN device enslaved to it, the local
/// taps to enslave, and the remote forwarding state from l2pop (flood list, unicast FDB, ARP/ND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredNetwork {
    /// `IFLA_VXLAN_ID`.
    pub vni: u32,
    /// The Linux bridge (`brq` + network id prefix).
    pub bridge: String,
    /// The VXLAN device (`vxlan-{vni}`).
    pub vxlan: String,
    /// `IFLA_VXLAN_LOCAL` / `IFLA_VXLAN_LOCAL6`: this host's VTEP address.
    pub local_ip: IpAddr,
    /// `IFLA_VXLAN_PORT`.
    pub dst_port: u16,
    /// Local tap devices to enslave to the bridge; those absent from the kernel are ignored.
    pub ports: BTreeSet<String>,
    /// Remote VTEPs to flood BUM traffic to: one all-zero FDB entry each.
    pub flood: BTreeSet<IpAddr>,
    /// Remote MAC → the VTEP behind it: one FDB entry with `NDA_DST` each.
    pub unicast: BTreeMap<Mac, IpAddr>,
    /// ARP (IPv4) and ND (IPv6) proxy entries, answered by the VXLAN device's `proxy` responder.
    pub neighbours: BTreeMap<IpAddr, Mac>,
}

impl DesiredNetwork {
    /// An empty segment with Neutron's device names (`vxlan-{vni}`, the given bridge) on port 4789.
    pub fn new(vni: u32, bridge: impl Into<String>, local_ip: IpAddr) -> Self {
        DesiredNetwork {
            vni,
            bridge: bridge.into(),
            vxlan: vxlan_name(vni),
            local_ip,
            dst_port: VXLAN_PORT,
            ports: BTreeSet::new(),
            flood: BTreeSet::new(),
            unicast: BTreeMap::new(),
            neighbours: BTreeMap::new(),
        }
    }
}

/// A snapshot of the kernel: every link of the namespace, and the FDB and neighbour entries the
/// agent could own (on VXLAN devices only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub links: BTreeMap<String, Link>,
    /// Per VXLAN device: `NTF_SELF` FDB entries that carry `NDA_DST` (flood entries have the
    /// all-zero MAC). Entries a bridge learnt (`master`) are not included.
    pub fdb: BTreeMap<String, BTreeSet<(Mac, IpAddr)>>,
    /// Per VXLAN device: `NUD_PERMANENT` neighbour entries (IPv4 and IPv6).
    pub neighbours: BTreeMap<String, BTreeMap<IpAddr, Mac>>,
}

/// A network device as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `ifi_index`; 0 when the link was recorded by [`Observed::apply`] and not yet dumped.
    pub index: u32,
    pub kind: LinkKind,
    /// The bridge this link is enslaved to (`IFLA_MASTER`), by name.
    pub master: Option<String>,
    /// `IFF_UP`.
    pub up: bool,
}

/// `IFLA_INFO_KIND` and, for VXLAN devices, the `IFLA_VXLAN_*` attributes the agent sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Bridge,
    Vxlan {
        /// `IFLA_VXLAN_ID`.
        vni: u32,
        /// `IFLA_VXLAN_LOCAL` / `IFLA_VXLAN_LOCAL6`.
        local: Option<IpAddr>,
        /// `IFLA_VXLAN_PORT`.
        port: u16,
        /// `IFLA_VXLAN_LEARNING`.
        learning: bool,
        /// `IFLA_VXLAN_PROXY`: answer ARP/ND from the device's neighbour table.
        proxy: bool,
    },
    /// Any other kind (`veth`, `tun`, ...); the empty string for links without `IFLA_INFO_KIND`.
    Other(String),
}

impl LinkKind {
    /// The attributes `ip link add NAME type vxlan id VNI local IP dstport PORT nolearning proxy`
    /// gives a device: what the agent creates and expects.
    pub fn agent_vxlan(vni: u32, local: IpAddr, port: u16) -> Self {
        LinkKind::Vxlan {
            vni,
            local: Some(local),
            port,
            learning: false,
            proxy: true,
        }
    }

    pub fn is_vxlan(&self) -> bool {
        matches!(self, LinkKind::Vxlan { .. })
    }
}

impl Link {
    /// A link that is down and has no master.
    pub fn new(index: u32, kind: LinkKind) -> Self {
        Link {
            index,
            kind,
            master: None,
            up: false,
        }
    }
}

/// Whether the kernel keeps several remotes (`vxlan_rdst`) per MAC: only for the all-zero and
/// multicast MACs (`NLM_F_APPEND` in `vxlan_fdb_update_existing`). A unicast MAC has one remote,
/// and `NLM_F_REPLACE` rewrites it in place.
pub fn multi_remote(mac: Mac) -> bool {
    mac.is_zero() || mac.is_multicast()
}

impl Observed {
    /// Advances the snapshot by one op the kernel accepted, with the kernel's semantics: a
    /// deleted link takes its FDB and neighbour entries with it and releases its slaves; a
    /// replace of a unicast MAC moves its only remote; an append to a unicast MAC that already
    /// has a remote changes nothing. Links created here get index 0 until the next dump.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::CreateBridge { name } => {
                self.links
                    .insert(name.clone(), Link::new(0, LinkKind::Bridge));
            }
            Op::CreateVxlan {
                name,
                vni,
                local,
                dst_port,
            } => {
                let kind = LinkKind::agent_vxlan(*vni, *local, *dst_port);
                self.links.insert(name.clone(), Link::new(0, kind));
            }
            Op::DeleteLink { name } => self.remove_link(name),
            Op::SetMaster { link, master } => {
                if let Some(l) = self.links.get_mut(link) {
                    l.master = Some(master.clone());
                }
            }
            Op::SetUp { link } => {
                if let Some(l) = self.links.get_mut(link) {
                    l.up = true;
                }
            }
            Op::FdbAppend { dev, mac, dst } => {
                let entries = self.fdb.entry(dev.clone()).or_default();
                if multi_remote(*mac) || !has_mac(entries, *mac) {
                    entries.insert((*mac, *dst));
                }
            }
            Op::FdbReplace { dev, mac, dst } => {
                let entries = self.fdb.entry(dev.clone()).or_default();
                // The kernel rewrites the MAC's first remote; a unicast MAC has only one.
                if !multi_remote(*mac)
                    && let Some(&first) = entries.range(mac_range(*mac)).next()
                {
                    entries.remove(&first);
                }
                entries.insert((*mac, *dst));
            }
            Op::FdbDel { dev, mac, dst } => {
                if let Some(entries) = self.fdb.get_mut(dev) {
                    entries.remove(&(*mac, *dst));
                }
            }
            Op::NeighReplace { dev, ip, mac } => {
                self.neighbours
                    .entry(dev.clone())
                    .or_default()
                    .insert(*ip, *mac);
            }
            Op::NeighDel { dev, ip } => {
                if let Some(entries) = self.neighbours.get_mut(dev) {
                    entries.remove(ip);
                }
            }
        }
    }

    /// Removes a link as `RTM_DELLINK` does: its entries vanish and its slaves lose their master.
    pub fn remove_link(&mut self, name: &str) {
        if self.links.remove(name).is_none() {
            return;
        }
        self.fdb.remove(name);
        self.neighbours.remove(name);
        for link in self.links.values_mut() {
            if link.master.as_deref() == Some(name) {
                link.master = None;
            }
        }
    }

    /// Total FDB and neighbour entries held.
    pub fn entry_count(&self) -> usize {
        self.fdb.values().map(BTreeSet::len).sum::<usize>()
            + self.neighbours.values().map(BTreeMap::len).sum::<usize>()
    }
}

/// All `(mac, *)` keys of an FDB set.
pub(crate) fn mac_range(mac: Mac) -> std::ops::RangeInclusive<(Mac, IpAddr)> {
    let lowest = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let highest = IpAddr::V6(std::net::Ipv6Addr::from(u128::MAX));
    (mac, lowest)..=(mac, highest)
}

pub(crate) fn has_mac(entries: &BTreeSet<(Mac, IpAddr)>, mac: Mac) -> bool {
    entries.range(mac_range(mac)).next().is_some()
}

//! One peer's Adj-RIB-In (RFC 4271 §3.2) for L2VPN/EVPN, keyed by NLRI.
//!
//! Only the route types l2pop uses are kept: type 2 (MAC/IP Advertisement, RFC 7432 §7.2) and
//! type 3 (Inclusive Multicast Ethernet Tag, RFC 7432 §7.3). The key is the route's identity
//! as RFC 7432 defines it (RD, Ethernet Tag, MAC and IP, or originator IP); labels, next hop and
//! communities are attributes of the path, so a new UPDATE for the same key replaces the path
//! (an implicit withdraw). Every mutation returns the [`RibChange`]s it made, which is all the
//! importer ([`crate::import`]) needs. Each entry carries a `stale` mark for Enhanced Route
//! Refresh (RFC 7313) and graceful restart (RFC 4724): mark, re-learn, sweep.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use l2pop_bgpvpn::RouteTarget;
use l2pop_model::Mac;

/// Route Distinguisher, 8 octets as on the wire (RFC 4364 §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rd(pub [u8; 8]);

impl fmt::Debug for Rd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Rd {
    /// `<AS2>:<u32>`, `<IPv4>:<u16>` or `<AS4>:<u16>` (types 0, 1, 2), else hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        match u16_at(0) {
            0 => write!(f, "{}:{}", u16_at(2), u32_at(4)),
            1 => write!(f, "{}.{}.{}.{}:{}", b[2], b[3], b[4], b[5], u16_at(6)),
            2 => write!(f, "{}:{}", u32_at(2), u16_at(6)),
            _ => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
        }
    }
}

/// The NLRI of a stored EVPN route: what identifies it within one peer's Adj-RIB-In.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKey {
    /// Type 3, RFC 7432 §7.3: RD, Ethernet Tag, Originating Router's IP.
    Imet {
        rd: Rd,
        ethernet_tag: u32,
        originator: IpAddr,
    },
    /// Type 2, RFC 7432 §7.2: RD, Ethernet Tag, MAC and IP (MAC-only and MAC+IP are distinct).
    MacIp {
        rd: Rd,
        ethernet_tag: u32,
        mac: Mac,
        ip: Option<IpAddr>,
    },
}

/// PMSI Tunnel attribute (RFC 6514 §5) as EVPN over VXLAN uses it (RFC 8365 §5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pmsi {
    /// Tunnel type: 6 is Ingress Replication.
    pub tunnel_type: u8,
    /// The 24-bit label field: the VNI for VXLAN.
    pub vni: u32,
    /// Tunnel identifier when it is an IP address (the replication endpoint for type 6).
    pub endpoint: Option<IpAddr>,
}

impl Pmsi {
    pub const INGRESS_REPLICATION: u8 = 6;
}

/// MAC Mobility extended community (RFC 7432 §7.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mobility {
    pub sequence: u32,
    /// Static (sticky) MAC: it never moves (RFC 7432 §15.2).
    pub sticky: bool,
}

/// The attributes of a path, reduced to what EVPN import needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// MP_REACH_NLRI next hop: the originating VTEP (RFC 8365 §5.1.3).
    pub next_hop: IpAddr,
    pub route_targets: BTreeSet<RouteTarget>,
    /// BGP Encapsulation extended community tunnel types (RFC 9012 §4.1; 8 = VXLAN).
    pub encapsulations: BTreeSet<u16>,
    /// Type 2 only: Label1, the VNI (RFC 8365 §5.1.3: the whole 24-bit field).
    pub vni: Option<u32>,
    /// Type 3 only.
    pub pmsi: Option<Pmsi>,
    pub mobility: Option<Mobility>,
}

/// One change to an Adj-RIB-In.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RibChange {
    Added { key: RouteKey, path: Path },
    Replaced { key: RouteKey, old: Path, new: Path },
    Removed { key: RouteKey, path: Path },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: Path,
    stale: bool,
}

/// One peer's routes, keyed by NLRI.
#[derive(Debug, Clone, Default)]
pub struct AdjRibIn {
    routes: BTreeMap<RouteKey, Entry>,
}

impl AdjRibIn {
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn get(&self, key: &RouteKey) -> Option<&Path> {
        self.routes.get(key).map(|e| &e.path)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RouteKey, &Path)> {
        self.routes.iter().map(|(k, e)| (k, &e.path))
    }

    /// Stores `path` for `key` (clearing its stale mark); no change if it is the same path.
    pub fn announce(&mut self, key: RouteKey, path: Path, changes: &mut Vec<RibChange>) {
        match self.routes.insert(
            key,
            Entry {
                path: path.clone(),
                stale: false,
            },
        ) {
            None => changes.push(RibChange::Added { key, path }),
            Some(old) if old.path != path => changes.push(RibChange::Replaced {
                key,
                old: old.path,
                new: path,
            }),
            Some(_) => {}
        }
    }

    /// Removes `key`; withdrawing an unknown route is no change (RFC 4271 §9.1).
    pub fn withdraw(&mut self, key: &RouteKey, changes: &mut Vec<RibChange>) {
        if let Some(old) = self.routes.remove(key) {
            changes.push(RibChange::Removed {
                key: *key,
                path: old.path,
            });
        }
    }

    /// Marks every route stale (Beginning of Route Refresh, RFC 7313 §4; a session lost with
    /// graceful restart, RFC 4724 §4.2).
    pub fn mark_stale(&mut self) {
        for entry in self.routes.values_mut() {
            entry.stale = true;
        }
    }

    /// Removes the routes still stale (End of Route Refresh, RFC 7313 §4; End-of-RIB or the
    /// restart time, RFC 4724 §4.2).
    pub fn sweep_stale(&mut self) -> Vec<RibChange> {
        let stale: Vec<RouteKey> = self
            .routes
            .iter()
            .filter(|(_, e)| e.stale)
            .map(|(k, _)| *k)
            .collect();
        let mut changes = Vec::with_capacity(stale.len());
        for key in stale {
            self.withdraw(&key, &mut changes);
        }
        changes
    }

    /// Removes everything (the session went down, RFC 4271 §9.1: its routes are withdrawn).
    pub fn clear(&mut self) -> Vec<RibChange> {
        std::mem::take(&mut self.routes)
            .into_iter()
            .map(|(key, e)| RibChange::Removed { key, path: e.path })
            .collect()
    }
}

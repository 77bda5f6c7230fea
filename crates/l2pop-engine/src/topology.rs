//! The topology index: agents, networks, ports, routers, and the derived per-(host, network)
//! membership that l2pop's rules read (reference D1–D7). Everything an event needs is an O(1)
//! lookup here; only a full FDB walks a network.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use l2pop_model::{
    Agent, DeviceOwner, Host, Mac, Network, NetworkId, Port, PortId, PortInfo, PortStatus,
    RouterId, Subnet,
};

use serde::{Deserialize, Serialize};

use crate::extension::ExtensionClaims;
use crate::sorted::SortedVec;

/// A port and its per-host DVR binding states.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PortState {
    pub(crate) port: Port,
    /// Hosts where this DVR port's distributed binding is ACTIVE.
    pub(crate) dvr_active: BTreeSet<Host>,
}

/// The kind of a port for l2pop (D5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortKind {
    Ordinary,
    Dvr,
    Ha,
}

/// Where a port is present (D6) and what unicast entries it brings there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Presence {
    pub(crate) hosts: Vec<Host>,
    pub(crate) entries: Vec<PortInfo>,
}

/// A host's share of one network: how many ports are present (C(H, N)) and the unicast entries
/// of its present ordinary ports (sorted, as a full FDB lists them).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) present: u32,
    pub(crate) unicast: SortedVec<PortInfo>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NetworkState {
    pub(crate) network: Network,
    pub(crate) subnets: Vec<Subnet>,
    /// Every port's MAC on this network (any status): Neutron's unique (network, mac).
    pub(crate) macs: HashMap<Mac, PortId>,
    pub(crate) ips: HashMap<IpAddr, PortId>,
    pub(crate) members: HashMap<Host, Member>,
    pub(crate) port_count: usize,
    pub(crate) claims: ExtensionClaims,
}

impl NetworkState {
    /// The port holding `ip` on the network; `0.0.0.0` (a MAC-only device) is nobody's.
    pub(crate) fn port_with_ip(&self, ip: &IpAddr) -> Option<PortId> {
        if ip.is_unspecified() {
            return None;
        }
        self.ips.get(ip).copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RouterState {
    pub(crate) ha: bool,
    pub(crate) hosts: BTreeSet<Host>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Topology {
    pub(crate) agents: HashMap<Host, Agent>,
    pub(crate) agent_by_ip: HashMap<IpAddr, Host>,
    pub(crate) networks: HashMap<NetworkId, NetworkState>,
    pub(crate) ports: HashMap<PortId, PortState>,
    pub(crate) routers: HashMap<RouterId, RouterState>,
    /// HA-capable ports (HA interfaces and centralized SNAT) by the router their `device_id`
    /// names (parsed, so that any spelling of the UUID finds its router).
    pub(crate) router_ports: HashMap<RouterId, BTreeSet<PortId>>,
    /// Networks where a host has a member entry, for agent changes.
    pub(crate) host_networks: HashMap<Host, BTreeSet<NetworkId>>,
}

impl Topology {
    /// D1/D2: the VTEP of a visible host.
    pub(crate) fn vtep(&self, host: &Host) -> Option<IpAddr> {
        self.agents.get(host).and_then(|a| a.tunneling_ip)
    }

    /// on(H, N): C(H, N) > 0, H visible, and H's agent covers N's type.
    pub(crate) fn is_on(&self, host: &Host, network: NetworkId) -> bool {
        let Some(state) = self.networks.get(&network) else {
            return false;
        };
        let present = state.members.get(host).is_some_and(|m| m.present > 0);
        present && self.serves(host, state)
    }

    /// H is visible and covers the network's type (D3, applied to every host alike).
    pub(crate) fn serves(&self, host: &Host, state: &NetworkState) -> bool {
        self.agents.get(host).is_some_and(|a| {
            a.tunneling_ip.is_some() && a.covers(state.network.segment.network_type())
        })
    }

    pub(crate) fn kind(&self, port: &Port) -> PortKind {
        match DeviceOwner::classify(&port.device_owner) {
            DeviceOwner::DvrInterface => PortKind::Dvr,
            DeviceOwner::HaInterface => PortKind::Ha,
            DeviceOwner::CentralizedSnat => {
                let ha = port
                    .device_id
                    .parse::<RouterId>()
                    .ok()
                    .and_then(|id| self.routers.get(&id))
                    .is_some_and(|r| r.ha);
                if ha { PortKind::Ha } else { PortKind::Ordinary }
            }
            DeviceOwner::Other => PortKind::Ordinary,
        }
    }

    /// D6: the hosts where a port counts, and its unicast entries there (D4).
    pub(crate) fn presence(&self, state: &PortState) -> Presence {
        let port = &state.port;
        match self.kind(port) {
            PortKind::Ordinary => match (&port.host, port.status) {
                (Some(host), PortStatus::Active) => Presence {
                    hosts: vec![host.clone()],
                    entries: port
                        .fixed_ips
                        .iter()
                        .map(|ip| PortInfo::new(port.mac, *ip))
                        .collect(),
                },
                _ => Presence::default(),
            },
            PortKind::Dvr => Presence {
                hosts: state.dvr_active.iter().cloned().collect(),
                entries: Vec::new(),
            },
            PortKind::Ha => {
                let hosts = match port.status {
                    PortStatus::Active => port
                        .device_id
                        .parse::<RouterId>()
                        .ok()
                        .and_then(|id| self.routers.get(&id))
                        .map(|r| r.hosts.iter().cloned().collect())
                        .unwrap_or_default(),
                    PortStatus::Down => Vec::new(),
                };
                Presence {
                    hosts,
                    entries: Vec::new(),
                }
            }
        }
    }

    pub(crate) fn member(&self, host: &Host, network: NetworkId) -> Option<&Member> {
        self.networks
            .get(&network)
            .and_then(|n| n.members.get(host))
    }

    /// Adds (`add`) or removes a presence from the membership counts.
    pub(crate) fn account(&mut self, network: NetworkId, presence: &Presence, add: bool) {
        let Some(state) = self.networks.get_mut(&network) else {
            return;
        };
        for host in &presence.hosts {
            let member = state.members.entry(host.clone()).or_default();
            if add {
                member.present += 1;
                for entry in &presence.entries {
                    member.unicast.insert(*entry);
                }
                self.host_networks
                    .entry(host.clone())
                    .or_default()
                    .insert(network);
            } else {
                member.present = member.present.saturating_sub(1);
                for entry in &presence.entries {
                    member.unicast.remove(entry);
                }
                if member.present == 0 && member.unicast.is_empty() {
                    state.members.remove(host);
                    if let Some(nets) = self.host_networks.get_mut(host) {
                        nets.remove(&network);
                        if nets.is_empty() {
                            self.host_networks.remove(host);
                        }
                    }
                }
            }
        }
    }

    /// The router an HA-capable port belongs to.
    fn router_key(port: &Port) -> Option<RouterId> {
        match DeviceOwner::classify(&port.device_owner) {
            DeviceOwner::HaInterface | DeviceOwner::CentralizedSnat => port.device_id.parse().ok(),
            DeviceOwner::DvrInterface | DeviceOwner::Other => None,
        }
    }

    pub(crate) fn index_router_port(&mut self, port: &Port) {
        if let Some(router) = Self::router_key(port) {
            self.router_ports.entry(router).or_default().insert(port.id);
        }
    }

    pub(crate) fn unindex_router_port(&mut self, port: &Port) {
        let Some(router) = Self::router_key(port) else {
            return;
        };
        if let Some(set) = self.router_ports.get_mut(&router) {
            set.remove(&port.id);
            if set.is_empty() {
                self.router_ports.remove(&router);
            }
        }
    }

    /// Every network's members sorted by VTEP, for a full FDB: the other visible hosts that are
    /// on the network, with their unicast entries.
    pub(crate) fn contributors<'a>(
        &'a self,
        state: &'a NetworkState,
        except: &Host,
    ) -> Vec<(IpAddr, &'a Host, &'a Member)> {
        let mut out: Vec<_> = state
            .members
            .iter()
            .filter(|(host, member)| *host != except && member.present > 0)
            .filter_map(|(host, member)| {
                let agent = self.agents.get(host)?;
                let vtep = agent.tunneling_ip?;
                agent
                    .covers(state.network.segment.network_type())
                    .then_some((vtep, host, member))
            })
            .collect();
        out.sort_unstable_by_key(|(vtep, _, _)| *vtep);
        out
    }
}

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{Host, ModelError, NetworkType};

/// What l2pop reads of an L2 agent's `report_state` `configurations` (reference D1–D3).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Agent {
    pub host: Host,
    /// The VTEP address; an agent without one is invisible to l2pop (LP #1407959).
    pub tunneling_ip: Option<IpAddr>,
    /// Overlay types the agent terminates (`[agent] tunnel_types`).
    pub tunnel_types: Vec<NetworkType>,
    /// When present, replaces `tunnel_types` as the set of network types l2pop serves the agent.
    pub l2pop_network_types: Option<Vec<NetworkType>>,
}

impl Agent {
    pub fn new(
        host: Host,
        tunneling_ip: Option<IpAddr>,
        tunnel_types: Vec<NetworkType>,
        l2pop_network_types: Option<Vec<NetworkType>>,
    ) -> Result<Self, ModelError> {
        if let Some(ip) = tunneling_ip {
            let unicast = match ip {
                IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
                IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
            };
            if !unicast {
                return Err(ModelError::InvalidTunnelingIp(ip));
            }
        }
        if let Some(t) = tunnel_types.iter().find(|t| !t.is_tunnel()) {
            return Err(ModelError::NotATunnelType(*t));
        }
        Ok(Agent {
            host,
            tunneling_ip,
            tunnel_types,
            l2pop_network_types,
        })
    }

    /// D3: the agent is served `network_type` by l2pop.
    pub fn covers(&self, network_type: NetworkType) -> bool {
        match &self.l2pop_network_types {
            Some(types) => types.contains(&network_type),
            None => self.tunnel_types.contains(&network_type),
        }
    }
}

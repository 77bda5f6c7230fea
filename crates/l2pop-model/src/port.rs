use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{Host, Mac, NetworkId, PortId};

/// Port status as far as l2pop cares: only ACTIVE ports are ever announced (rule 13).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PortStatus {
    Down,
    Active,
}

/// `device_owner` values with a meaning for l2pop (reference D5, rule 15).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeviceOwner {
    /// `network:router_interface_distributed`: present on every host with an active binding,
    /// flood only.
    DvrInterface,
    /// `network:ha_router_replicated_interface`: present on every host of its HA router.
    HaInterface,
    /// `network:router_centralized_snat`: HA when its router is HA, else ordinary.
    CentralizedSnat,
    /// Anything else (compute, DHCP, legacy router interfaces...): an ordinary unicast source.
    Other,
}

impl DeviceOwner {
    pub const DVR_INTERFACE: &'static str = "network:router_interface_distributed";
    pub const HA_INTERFACE: &'static str = "network:ha_router_replicated_interface";
    pub const CENTRALIZED_SNAT: &'static str = "network:router_centralized_snat";

    pub fn classify(device_owner: &str) -> Self {
        match device_owner {
            Self::DVR_INTERFACE => DeviceOwner::DvrInterface,
            Self::HA_INTERFACE => DeviceOwner::HaInterface,
            Self::CENTRALIZED_SNAT => DeviceOwner::CentralizedSnat,
            _ => DeviceOwner::Other,
        }
    }
}

/// A Neutron port with what l2pop reads of it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Port {
    pub id: PortId,
    pub network_id: NetworkId,
    pub mac: Mac,
    pub fixed_ips: Vec<IpAddr>,
    pub device_owner: String,
    pub device_id: String,
    /// `binding:host_id`; `None` when unbound.
    pub host: Option<Host>,
    pub status: PortStatus,
}

//! The engine's inputs: Neutron's entry points into l2pop (reference §1.2), one variant each.
//! The serde shape is the event vocabulary of `scenarios/README.md` (one JSON object per line,
//! tagged by `op`); unknown keys are refused so that a typo never passes silently.

use std::net::IpAddr;

use ipnet::IpNet;
use l2pop_model::{Host, Mac, NetworkId, NetworkType, PortId, RouterId};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Event {
    Agent(AgentReport),
    Network(NetworkCreate),
    NetworkSegment(NetworkSegment),
    NetworkDelete(NetworkDelete),
    Subnet(SubnetCreate),
    SubnetDelete(SubnetDelete),
    PortCreate(PortCreate),
    PortUpdate(PortUpdate),
    PortDelete(PortDelete),
    DeviceUp(DeviceUp),
    DeviceDown(DeviceDown),
    Router(RouterSpec),
    RouterDelete(RouterDelete),
}

/// An L2 agent's `report_state` with the `configurations` l2pop reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReport {
    pub host: Host,
    #[serde(default)]
    pub tunneling_ip: Option<IpAddr>,
    #[serde(default)]
    pub tunnel_types: Vec<NetworkType>,
    #[serde(default)]
    pub l2pop_network_types: Option<Vec<NetworkType>>,
    /// First report after the agent (re)started: opens a new refresh for the host.
    #[serde(default)]
    pub start_flag: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    pub id: NetworkId,
    pub network_type: NetworkType,
    #[serde(default)]
    pub segmentation_id: Option<u64>,
    #[serde(default)]
    pub physical_network: Option<String>,
}

/// Replaces a network's segment (the resource layer's first segment was deleted and the next
/// one takes its place). Refused while a port of the network is bound to a host: nothing was
/// announced with the old segment, so nothing is withdrawn or re-announced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSegment {
    pub id: NetworkId,
    pub network_type: NetworkType,
    #[serde(default)]
    pub segmentation_id: Option<u64>,
    #[serde(default)]
    pub physical_network: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDelete {
    pub id: NetworkId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCreate {
    pub network_id: NetworkId,
    pub cidr: IpNet,
}

/// Removes a network's subnet; refused while a port has an address in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetDelete {
    pub network_id: NetworkId,
    pub cidr: IpNet,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCreate {
    pub id: PortId,
    pub network_id: NetworkId,
    pub mac: Mac,
    #[serde(default)]
    pub fixed_ips: Vec<IpAddr>,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub device_id: String,
    /// `binding:host_id`.
    #[serde(default)]
    pub host: Option<Host>,
}

/// A port update; absent fields are unchanged, `"host": null` unbinds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortUpdate {
    pub id: PortId,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub host: Option<Option<Host>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_ips: Option<Vec<IpAddr>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// Distinguishes a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortDelete {
    pub id: PortId,
}

/// An agent's `update_device_up` (plugin RPC).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceUp {
    pub id: PortId,
    pub host: Host,
    #[serde(default)]
    pub refresh_tunnels: bool,
}

/// An agent's `update_device_down` (plugin RPC).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDown {
    pub id: PortId,
    pub host: Host,
}

/// A router and the L3-agent hosts hosting it (every instance of an HA router).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSpec {
    pub id: RouterId,
    #[serde(default)]
    pub ha: bool,
    /// Accepted for fidelity with Neutron's router; l2pop reads a DVR port's presence from its
    /// per-host bindings (`device_up` from each host), not from this flag.
    #[serde(default)]
    pub distributed: bool,
    #[serde(default)]
    pub hosts: Vec<Host>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterDelete {
    pub id: RouterId,
}

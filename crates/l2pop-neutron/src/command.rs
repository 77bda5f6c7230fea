//! The server's durable vocabulary: one [`Command`] per accepted change, as it is written to the
//! command log. A command is fully resolved (ids, MAC addresses, allocated IPs and timestamps
//! are decided before it is logged), so replaying the log into a fresh [`NeutronState`] rebuilds
//! exactly the same resources, engine state and notifications.
//!
//! [`NeutronState`]: crate::state::NeutronState

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use l2pop_bgpvpn::{
    BgpAgentReport, BgpvpnCreate, BgpvpnId, BgpvpnUpdate, DeviceRoutes, GatewayRoutes, SpeakerId,
};
use l2pop_engine::{AgentReport, DeviceDown, DeviceUp};
use l2pop_model::{Host, Mac, NetworkId, NetworkType, PortId, Uuid};
use serde::{Deserialize, Serialize};

/// A Neutron subnet id.
pub type SubnetId = Uuid;

/// A Neutron network segment id.
pub type SegmentId = Uuid;

/// A network as Neutron's API shows it. Its `provider:*` attributes are its first segment's
/// (lowest `segment_index`), which is the segment the engine keeps: the segment commands keep
/// them equal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRecord {
    pub id: NetworkId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub project_id: String,
    pub admin_state_up: bool,
    pub network_type: NetworkType,
    pub segmentation_id: Option<u32>,
    pub physical_network: Option<String>,
    pub created_at: String,
    /// As given; `None` shows the largest MTU of the network type ([`max_mtu`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Kept and shown only: l2pop enforces no port security (see docs/server.md).
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    /// The id of segment 0, which the network create makes from the provider attributes;
    /// `None` (networks logged before segments were kept) names it with the network's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<SegmentId>,
}

impl NetworkRecord {
    /// Segment 0, as the network create makes it (Neutron's `segment_index` 0, no name).
    pub fn first_segment(&self) -> SegmentRecord {
        SegmentRecord {
            id: self.segment_id.unwrap_or(self.id.0),
            network_id: self.id,
            name: None,
            description: String::new(),
            network_type: self.network_type,
            segmentation_id: self.segmentation_id,
            physical_network: self.physical_network.clone(),
            segment_index: 0,
        }
    }
}

/// A network segment as Neutron's segments extension shows it. l2pop serves a network on its
/// first segment only (every port is taken as bound to it; see docs/openstack.md); the others
/// are kept, shown, and hold their segmentation ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRecord {
    pub id: SegmentId,
    pub network_id: NetworkId,
    /// Neutron's `type:string_or_none`: `None` when not given.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub network_type: NetworkType,
    pub segmentation_id: Option<u32>,
    pub physical_network: Option<String>,
    /// Neutron's order of a network's segments: one more than the network's last when created.
    pub segment_index: u32,
}

fn yes() -> bool {
    true
}

/// The largest MTU of a network of `network_type` on Neutron's default `global_physnet_mtu`
/// (1,500) with IPv4 underlay overhead (VXLAN and Geneve 50 bytes, GRE 42).
pub fn max_mtu(network_type: NetworkType) -> u32 {
    match network_type {
        NetworkType::Vxlan | NetworkType::Geneve => 1450,
        NetworkType::Gre => 1458,
        NetworkType::Vlan | NetworkType::Flat | NetworkType::Local => 1500,
    }
}

/// Neutron's `binding:vnic_type` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VnicType {
    #[default]
    Normal,
    Direct,
    Macvtap,
    Baremetal,
    DirectPhysical,
    VirtioForwarder,
    SmartNic,
    Vdpa,
    RemoteManaged,
    AcceleratorDirect,
    AcceleratorDirectPhysical,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetRecord {
    pub id: SubnetId,
    pub name: String,
    pub project_id: String,
    pub network_id: NetworkId,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub enable_dhcp: bool,
    pub created_at: String,
    #[serde(default)]
    pub description: String,
    /// As given; `None` (not given, and every subnet logged before they were kept) shows
    /// Neutron's default, the cidr's host addresses without the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_pools: Option<Vec<AllocationPool>>,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address_mode: Option<Ipv6Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_ra_mode: Option<Ipv6Mode>,
}

/// One of a subnet's `allocation_pools`: the addresses `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationPool {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// One of a subnet's `host_routes` (handed to instances by DHCP; l2pop only keeps it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

/// Neutron's `ipv6_address_mode` and `ipv6_ra_mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6Mode {
    Slaac,
    Dhcpv6Stateful,
    Dhcpv6Stateless,
}

/// One of a port's `fixed_ips`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIp {
    pub subnet_id: SubnetId,
    pub ip_address: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRecord {
    pub id: PortId,
    pub name: String,
    pub project_id: String,
    pub network_id: NetworkId,
    pub mac: Mac,
    pub fixed_ips: Vec<FixedIp>,
    pub device_owner: String,
    pub device_id: String,
    /// `binding:host_id`.
    pub host: Option<Host>,
    pub admin_state_up: bool,
    pub created_at: String,
    #[serde(default)]
    pub description: String,
    /// Kept and shown only (see [`NetworkRecord::port_security_enabled`]).
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    /// `binding:vnic_type`.
    #[serde(default)]
    pub vnic_type: VnicType,
}

/// A networking-bgpvpn network association.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssociationRecord {
    pub id: Uuid,
    pub bgpvpn_id: BgpvpnId,
    pub network_id: NetworkId,
    pub project_id: String,
}

/// A neutron-dynamic-routing BGP speaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerRecord {
    pub id: SpeakerId,
    pub name: String,
    pub project_id: String,
    pub local_as: u32,
    pub ip_version: u8,
    /// BGP agents hosting the speaker (`bgp-drinstances`).
    #[serde(default)]
    pub agents: BTreeSet<Host>,
    /// BGPVPNs bound with `add_bgp_vpn`.
    #[serde(default)]
    pub vpns: BTreeSet<BgpvpnId>,
}

/// One accepted change, in the order it was accepted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    NetworkCreate {
        network: NetworkRecord,
    },
    NetworkUpdate {
        id: NetworkId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin_state_up: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtu: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port_security_enabled: Option<bool>,
    },
    NetworkDelete {
        id: NetworkId,
    },
    SubnetCreate {
        subnet: SubnetRecord,
    },
    SubnetUpdate {
        id: SubnetId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dns_nameservers: Option<Vec<IpAddr>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_routes: Option<Vec<HostRoute>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enable_dhcp: Option<bool>,
    },
    /// Logged only while no port has an address in the subnet.
    SubnetDelete {
        id: SubnetId,
    },
    SegmentCreate {
        segment: SegmentRecord,
    },
    SegmentUpdate {
        id: SegmentId,
        /// `Some(None)` clears the name.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        name: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// Deleting a network's first segment makes the next one the network's (and the engine's)
    /// segment; refused while a port of the network is bound, or for its only segment.
    SegmentDelete {
        id: SegmentId,
    },
    PortCreate {
        port: PortRecord,
    },
    PortUpdate {
        id: PortId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin_state_up: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<Mac>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fixed_ips: Option<Vec<FixedIp>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_id: Option<String>,
        /// `Some(None)` unbinds.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        host: Option<Option<Host>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port_security_enabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vnic_type: Option<VnicType>,
    },
    PortDelete {
        id: PortId,
    },
    /// An L2 agent's `report_state` whose configuration changed (or its first after a start).
    AgentReport {
        id: Uuid,
        agent_type: String,
        binary: String,
        at: String,
        report: AgentReport,
    },
    /// `PUT /v2.0/agents/{id}` on an L2 agent.
    AgentUpdate {
        host: Host,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin_state_up: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    DeviceUp(DeviceUp),
    DeviceDown(DeviceDown),
    BgpvpnCreate(BgpvpnCreate),
    BgpvpnUpdate(BgpvpnUpdate),
    BgpvpnDelete {
        id: BgpvpnId,
    },
    AssociationCreate {
        association: AssociationRecord,
    },
    AssociationDelete {
        id: Uuid,
    },
    SpeakerCreate {
        speaker: SpeakerRecord,
    },
    SpeakerUpdate {
        id: SpeakerId,
        name: String,
    },
    SpeakerDelete {
        id: SpeakerId,
    },
    SpeakerAddVpn {
        speaker_id: SpeakerId,
        bgpvpn_id: BgpvpnId,
    },
    SpeakerRemoveVpn {
        speaker_id: SpeakerId,
        bgpvpn_id: BgpvpnId,
    },
    SpeakerAddAgent {
        speaker_id: SpeakerId,
        host: Host,
    },
    SpeakerRemoveAgent {
        speaker_id: SpeakerId,
        host: Host,
    },
    /// A BGP agent's `report_state` (up/down, restart).
    BgpAgentReport {
        id: Uuid,
        at: String,
        report: BgpAgentReport,
    },
    BgpGateways(GatewayRoutes),
    BgpDevices(DeviceRoutes),
    /// A BGP agent's End-of-RIB after a graceful restart: its routes still stale are purged.
    BgpEndOfRib {
        host: Host,
    },
    /// `PUT /v2.0/l2pop/routers/{id}`: a router's L3-agent hosts (create or replace).
    RouterPut {
        router: crate::router::RouterRecord,
    },
    RouterDelete {
        id: l2pop_model::RouterId,
    },
    /// A bulk create (`{"ports": [...]}`): network, subnet or port creates, applied in order,
    /// all or none.
    Bulk {
        commands: Vec<Command>,
    },
}

impl Command {
    /// The command that takes back a create (a bulk create's rollback); `None` for any other.
    pub(crate) fn undo(&self) -> Option<Command> {
        match self {
            Command::NetworkCreate { network } => Some(Command::NetworkDelete { id: network.id }),
            Command::SubnetCreate { subnet } => Some(Command::SubnetDelete { id: subnet.id }),
            Command::PortCreate { port } => Some(Command::PortDelete { id: port.id }),
            _ => None,
        }
    }
}

/// serde for `Option<Option<T>>`: absent → `None`, `null` → `Some(None)`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

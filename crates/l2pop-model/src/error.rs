use thiserror::Error;

/// A value that is not valid for the field it was given for. Messages name the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("invalid MAC address {0:?}: expected six hex octets separated by ':'")]
    InvalidMac(String),
    #[error("MAC address {0} is not a unicast address")]
    MulticastMac(crate::Mac),
    #[error("MAC address 00:00:00:00:00:00 is reserved for the flooding entry")]
    ZeroMac,
    #[error("invalid UUID {0:?}: expected 8-4-4-4-12 hex digits")]
    InvalidUuid(String),
    #[error(
        "invalid host name {0:?}: must be 1 to 218 bytes (what an AMQP routing key leaves for it) \
         without whitespace or control characters"
    )]
    InvalidHost(String),
    #[error("unknown network type {0:?}: expected vxlan, gre, geneve, vlan, flat or local")]
    UnknownNetworkType(String),
    #[error("segmentation_id {id} is out of range for {network_type} ({min}..={max})")]
    SegmentationIdOutOfRange {
        network_type: crate::NetworkType,
        id: u64,
        min: u32,
        max: u32,
    },
    #[error("segmentation_id is required for {0} networks")]
    SegmentationIdRequired(crate::NetworkType),
    #[error("segmentation_id {id} is not allowed for {network_type} networks")]
    SegmentationIdNotAllowed {
        network_type: crate::NetworkType,
        id: u64,
    },
    #[error("physical_network is required for {0} networks")]
    PhysicalNetworkRequired(crate::NetworkType),
    #[error("physical_network {name:?} is not allowed for {network_type} networks")]
    PhysicalNetworkNotAllowed {
        network_type: crate::NetworkType,
        name: String,
    },
    #[error("invalid physical_network {0:?}: must be 1 to 64 characters without whitespace")]
    InvalidPhysicalNetwork(String),
    #[error("tunnel type {0} is not a tunnelling network type (expected vxlan, gre or geneve)")]
    NotATunnelType(crate::NetworkType),
    #[error("invalid tunneling_ip {0}: must be a unicast address")]
    InvalidTunnelingIp(std::net::IpAddr),
    #[error("cidr {0} has host bits set (did you mean {1}?)")]
    CidrHostBits(ipnet::IpNet, ipnet::IpNet),
    #[error("invalid PortInfo: expected [mac, ip], got {0}")]
    InvalidPortInfo(String),
}

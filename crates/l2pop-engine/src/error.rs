use std::net::IpAddr;

use ipnet::IpNet;
use l2pop_model::{Host, Mac, ModelError, NetworkId, NetworkType, PortId, RouterId};
use thiserror::Error;

/// Why an event was refused. The engine changed nothing. Each message starts with the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("{field}: {source}")]
    Invalid {
        field: &'static str,
        #[source]
        source: ModelError,
    },
    #[error("{field}: no network {id}")]
    UnknownNetwork { field: &'static str, id: NetworkId },
    #[error("id: no port {0}")]
    UnknownPort(PortId),
    #[error("id: no router {0}")]
    UnknownRouter(RouterId),
    #[error("id: network {0} already exists")]
    NetworkExists(NetworkId),
    #[error("id: port {0} already exists")]
    PortExists(PortId),
    #[error(
        "segmentation_id: {network_type} segment {segmentation_id} is already used by network {network}"
    )]
    SegmentInUse {
        network_type: NetworkType,
        segmentation_id: u32,
        network: NetworkId,
    },
    #[error("physical_network: flat network on {physical_network} already exists ({network})")]
    FlatNetworkInUse {
        physical_network: String,
        network: NetworkId,
    },
    #[error("cidr: {cidr} overlaps {other} of network {network}")]
    SubnetOverlap {
        cidr: IpNet,
        other: IpNet,
        network: NetworkId,
    },
    #[error("cidr: network {network} has no subnet {cidr}")]
    UnknownSubnet { cidr: IpNet, network: NetworkId },
    #[error("cidr: {ip} of port {port} is in subnet {cidr}")]
    SubnetInUse {
        cidr: IpNet,
        ip: IpAddr,
        port: PortId,
    },
    #[error("mac: {mac} is already used by port {port} on network {network}")]
    MacInUse {
        mac: Mac,
        port: PortId,
        network: NetworkId,
    },
    #[error("mac: unable to modify mac_address of ACTIVE port {0}")]
    MacChangeOnActivePort(PortId),
    #[error("fixed_ips: {ip} is not in any subnet of network {network}")]
    IpNotInSubnet { ip: IpAddr, network: NetworkId },
    #[error("fixed_ips: {ip} is already used by port {port}")]
    IpInUse { ip: IpAddr, port: PortId },
    #[error("fixed_ips: {0} is listed twice")]
    DuplicateFixedIp(IpAddr),
    #[error("id: port {port} of network {network} is bound to a host; its segment cannot change")]
    NetworkBound { network: NetworkId, port: PortId },
    #[error("id: network {network} still has {ports} port(s)")]
    NetworkInUse { network: NetworkId, ports: usize },
    #[error("tunneling_ip: {ip} already belongs to the agent of host {host}")]
    TunnelingIpInUse { ip: IpAddr, host: Host },
    #[error("extension: no extension named {0:?}")]
    UnknownExtension(String),
    #[error("extension: {name:?} is not a {expected}")]
    ExtensionType {
        name: String,
        expected: &'static str,
    },
    #[error(
        "extension: {name:?} panicked in an update ({message}); nothing of it was applied and the extension is quarantined"
    )]
    ExtensionPanicked { name: String, message: String },
    #[error("extension: {0:?} is quarantined after a panic in an update")]
    ExtensionQuarantined(String),
    #[error("{0}")]
    Extension(#[from] crate::ExtensionError),
}

impl EventError {
    pub(crate) fn invalid(field: &'static str) -> impl FnOnce(ModelError) -> EventError {
        move |source| EventError::Invalid { field, source }
    }
}

/// A query about a host or network the engine does not know.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    #[error("network: no network {0}")]
    UnknownNetwork(NetworkId),
}

/// Registering an extension failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    #[error("an extension named {0:?} is already registered")]
    DuplicateName(String),
    /// A snapshot's extensions are not the ones registered, in the same order.
    #[error("the snapshot holds extensions {saved:?}, this engine registers {registered:?}")]
    SnapshotExtensions {
        saved: Vec<String>,
        registered: Vec<String>,
    },
    #[error("extension {name:?} could not restore its state: {message}")]
    Restore { name: String, message: String },
    #[error("invalid extension name {0:?}: use 1 to 64 of a-z, 0-9, '_' and '-'")]
    InvalidName(String),
}

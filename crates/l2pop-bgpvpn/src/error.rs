use std::net::IpAddr;

use l2pop_model::{Host, Mac, NetworkId, NetworkType};
use thiserror::Error;

use crate::{BgpvpnId, SpeakerId};

/// Why a BGPVPN operation was refused. Nothing changed. Each message starts with the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BgpvpnError {
    #[error("id: BGPVPN {0} already exists")]
    BgpvpnExists(BgpvpnId),
    #[error("{field}: no BGPVPN {id}")]
    UnknownBgpvpn { field: &'static str, id: BgpvpnId },
    #[error("network_id: no network {0}")]
    UnknownNetwork(NetworkId),
    #[error("{field}: no BGP speaker {id}")]
    UnknownSpeaker { field: &'static str, id: SpeakerId },
    #[error("host: no BGP agent on host {0}")]
    UnknownAgent(Host),
    #[error("vni: {0} is out of range (1..=16777215)")]
    VniOutOfRange(u64),
    #[error("local_pref: {0} is out of range (0..=4294967295)")]
    LocalPrefOutOfRange(u64),
    #[error("{0}: immutable once the BGPVPN exists")]
    Immutable(&'static str),
    #[error("network_id: network {network} is already associated with BGPVPN {bgpvpn}")]
    AssociationExists {
        bgpvpn: BgpvpnId,
        network: NetworkId,
    },
    #[error("network_id: network {network} is not associated with BGPVPN {bgpvpn}")]
    NoAssociation {
        bgpvpn: BgpvpnId,
        network: NetworkId,
    },
    #[error(
        "network_id: an l2 BGPVPN bridges into VXLAN networks only (l2pop programs VXLAN tunnels), network {network} is {network_type}"
    )]
    NotVxlan {
        network: NetworkId,
        network_type: NetworkType,
    },
    #[error(
        "network_id: network {network} has segmentation_id {segmentation_id} but BGPVPN {bgpvpn} has vni {vni}: agents use the local segmentation id as the VNI toward every remote VTEP, so the site could never be reached"
    )]
    VniMismatch {
        bgpvpn: BgpvpnId,
        network: NetworkId,
        segmentation_id: u32,
        vni: u32,
    },
    #[error("bgpvpn_id: BGPVPN {bgpvpn} is already bound to BGP speaker {speaker}")]
    BindingExists {
        speaker: SpeakerId,
        bgpvpn: BgpvpnId,
    },
    #[error("bgpvpn_id: BGPVPN {bgpvpn} is not bound to BGP speaker {speaker}")]
    NoBinding {
        speaker: SpeakerId,
        bgpvpn: BgpvpnId,
    },
    #[error("vtep: {0} is not a unicast address")]
    InvalidVtep(IpAddr),
    #[error("mac: {0}")]
    InvalidMac(l2pop_model::ModelError),
    #[error("ip: {ip} of device {mac} is a multicast or unspecified address")]
    InvalidDeviceIp { mac: Mac, ip: IpAddr },
}

impl From<BgpvpnError> for l2pop_engine::ExtensionError {
    fn from(error: BgpvpnError) -> Self {
        l2pop_engine::ExtensionError::new(error.to_string())
    }
}

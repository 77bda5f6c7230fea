//! The BGPVPN extension's inputs: networking-bgpvpn's API operations, neutron-dynamic-routing's
//! speaker operations, and the routes BGP agents report (StarlingX's `bgpvpn_update_gateways` /
//! `bgpvpn_update_devices`, but carrying route targets, so that the server matches routes to
//! BGPVPNs by import target). The serde shape is the replay vocabulary of `scenarios/README.md`.

use std::net::IpAddr;

use l2pop_model::{Host, Mac, NetworkId, Uuid};
use serde::{Deserialize, Deserializer, Serialize};

use crate::RouteTarget;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl std::str::FromStr for $name {
            type Err = l2pop_model::ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id!(
    /// A networking-bgpvpn BGPVPN id.
    BgpvpnId
);
id!(
    /// A neutron-dynamic-routing BGP speaker id.
    SpeakerId
);

/// `l2` bridges the VPN into Neutron networks (EVPN); `l3` routes (IP-VPN).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VpnType {
    L2,
    #[default]
    L3,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BgpvpnOp {
    BgpvpnCreate(BgpvpnCreate),
    BgpvpnUpdate(BgpvpnUpdate),
    BgpvpnDelete(BgpvpnDelete),
    NetworkAssociationCreate(NetworkAssociation),
    NetworkAssociationDelete(NetworkAssociation),
    BgpAgent(BgpAgentReport),
    BgpSpeaker(BgpSpeaker),
    BgpSpeakerDelete(BgpSpeakerDelete),
    BgpSpeakerAddVpn(SpeakerBinding),
    BgpSpeakerRemoveVpn(SpeakerBinding),
    BgpGateways(GatewayRoutes),
    BgpDevices(DeviceRoutes),
    BgpEndOfRib(EndOfRib),
}

impl BgpvpnOp {
    /// The `op` names this vocabulary owns (a driver routes them to the extension).
    pub const NAMES: [&'static str; 13] = [
        "bgpvpn_create",
        "bgpvpn_update",
        "bgpvpn_delete",
        "network_association_create",
        "network_association_delete",
        "bgp_agent",
        "bgp_speaker",
        "bgp_speaker_delete",
        "bgp_speaker_add_vpn",
        "bgp_speaker_remove_vpn",
        "bgp_gateways",
        "bgp_devices",
        "bgp_end_of_rib",
    ];
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnCreate {
    pub id: BgpvpnId,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub vpn_type: VpnType,
    #[serde(default)]
    pub route_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub import_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub export_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub route_distinguishers: Vec<RouteTarget>,
    #[serde(default)]
    pub vni: Option<u64>,
    #[serde(default)]
    pub local_pref: Option<u64>,
}

/// Absent fields are unchanged. `type` and `vni` are immutable: giving them is refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnUpdate {
    pub id: BgpvpnId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_targets: Option<Vec<RouteTarget>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_targets: Option<Vec<RouteTarget>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_targets: Option<Vec<RouteTarget>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_distinguishers: Option<Vec<RouteTarget>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_pref: Option<Option<u64>>,
    #[serde(
        default,
        rename = "type",
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub vpn_type: Option<Option<serde_json::Value>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub vni: Option<Option<serde_json::Value>>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpvpnDelete {
    pub id: BgpvpnId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAssociation {
    pub bgpvpn_id: BgpvpnId,
    pub network_id: NetworkId,
}

/// A BGP (dynamic routing) agent's `report_state`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpAgentReport {
    pub host: Host,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(default = "yes")]
    pub alive: bool,
    /// First report after the agent restarted: what it learned before is stale (case 6a).
    #[serde(default)]
    pub start_flag: bool,
    /// With `start_flag`: the speaker restarts gracefully (RFC 4724). What it learned before
    /// is kept, marked stale, still counting; a route re-learned loses the mark, and
    /// [`EndOfRib`] purges the routes still stale. Without it, `start_flag` drops them at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graceful_restart: bool,
}

fn yes() -> bool {
    true
}

/// A BGP speaker and the BGP agents hosting it (create or replace).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpSpeaker {
    pub id: SpeakerId,
    #[serde(default)]
    pub agents: Vec<Host>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpSpeakerDelete {
    pub id: SpeakerId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerBinding {
    pub speaker_id: SpeakerId,
    pub bgpvpn_id: BgpvpnId,
}

/// EVPN type-3 routes a BGP agent learned or lost: remote VTEPs that flood for a VNI.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoutes {
    pub host: Host,
    pub gateways: Vec<GatewayRoute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoute {
    pub vtep: IpAddr,
    #[serde(default)]
    pub route_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub vni: Option<u64>,
    #[serde(default)]
    pub withdrawn: bool,
}

/// EVPN type-2 routes a BGP agent learned or lost: MACs (with an IP, or alone) behind a VTEP.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRoutes {
    pub host: Host,
    pub devices: Vec<DeviceRoute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRoute {
    pub mac: Mac,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    pub vtep: IpAddr,
    #[serde(default)]
    pub route_targets: Vec<RouteTarget>,
    #[serde(default)]
    pub vni: Option<u64>,
    /// RFC 7432 MAC Mobility sequence number; absent counts as 0.
    #[serde(default)]
    pub seq: Option<u32>,
    #[serde(default)]
    pub withdrawn: bool,
}

/// A BGP agent re-learned everything it will after a graceful restart (every session's
/// End-of-RIB, or its restart time ran out, RFC 4724 §4.1): its routes still stale are purged.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndOfRib {
    pub host: Host,
}

//! The BGPVPN FDB extension (RFE 1793653's driving case): devices of an external BGP VPN site,
//! reached through a gateway VTEP, in every host's FDB, so that a VM talking to them needs no
//! broadcast.
//!
//! Data flow: networking-bgpvpn operations (BGPVPNs, network associations), neutron-dynamic-routing
//! operations (BGP agents, speakers and their VPN bindings) and the EVPN routes BGP agents learn
//! arrive as [`BgpvpnOp`]s; [`Bgpvpn::apply`] validates them, updates its state, recomputes the
//! entries it contributes to each affected network and returns the difference, which the engine
//! fans out tagged `"bgpvpn"`. The engine calls [`Bgpvpn`]'s `extend_full_fdb` for every full FDB.
//! Rules, the seven cases and the answers to the RFE's open questions: `scenarios/README.md`
//! and `docs/bgpvpn.md`.

mod error;
mod extension;
mod ops;
mod route_target;

pub use error::BgpvpnError;
pub use extension::{AgentState, Bgpvpn, BgpvpnReport, Speaker, Vpn};
pub use ops::{
    BgpAgentReport, BgpSpeaker, BgpSpeakerDelete, BgpvpnCreate, BgpvpnDelete, BgpvpnId, BgpvpnOp,
    BgpvpnUpdate, DeviceRoute, DeviceRoutes, EndOfRib, GatewayRoute, GatewayRoutes,
    NetworkAssociation, SpeakerBinding, SpeakerId, VpnType,
};
pub use route_target::{RouteTarget, RouteTargetError};

/// The name the extension is registered under.
pub const NAME: &str = "bgpvpn";

//! BGP EVPN for l2pop: the speaker that learns a VPN site's gateways and devices.
//!
//! Data flow, all pure except the driver:
//!
//! ```text
//! bytes ─► codec (rustbgpd-wire: framing, OPEN/UPDATE, EVPN NLRI, RFC 7606 verdicts)
//!            │
//!            ▼
//!        fsm::Session (RFC 4271 §8, sans-I/O: handle(now, input) → outputs)
//!            │ owns the peer's rib::AdjRibIn (keyed by NLRI) → RibChange
//!            ▼
//!        import::Importer (all peers: type 3 → gateways, type 2 → devices, RT filter)
//!            │ Learned (l2pop_bgpvpn GatewayRoute / DeviceRoute)
//!            ▼
//!        the binary's `bgp` role reports them to the server (REST, in order)
//! ```
//!
//! The `driver` feature adds the tokio tasks that run sessions over TCP.

pub mod codec;
pub mod export;
pub mod fsm;
pub mod fuzzing;
pub mod import;
pub mod rib;

#[cfg(feature = "driver")]
pub mod driver;

pub use codec::{ExportSession, LocalOpen, Notification, Verdict};
pub use export::{
    ExportDiff, ExportPath, ExportSkip, ExportView, Exporter, NetworkEntries, Origin, Routes,
    VpnExport,
};
pub use fsm::{DownReason, Input, Negotiated, Output, Session, SessionConfig, State, Timer};
pub use import::{Importer, Learned, PeerId, Skip};
pub use rib::{AdjRibIn, Path, RibChange, RouteKey};

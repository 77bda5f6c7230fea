//! The Neutron resource layer of the l2pop server, pure: networks, subnets, ports, agents,
//! BGPVPNs, network associations and BGP speakers as Neutron's API shows them, around the engine
//! with the BGPVPN extension registered.
//!
//! ```text
//!  caller's task                      owner (one)                          readers' tasks
//!  body → request::Request ──► NeutronState::handle: plan → Command ─► execute ─► Outcome
//!         request::Query   ──► NeutronState::query (engine, extension)
//!                              catalog() ── clone, O(1) ─────────────► Catalog::page / *_answer
//! ```
//!
//! Errors are data ([`NeutronError`]: kind, Neutron's name, field, value); the server maps them
//! once to HTTP answers and once to RPC failures. Time and fresh ids come in through
//! [`request::Fresh`]; nothing here reads a clock or does I/O.

pub mod addresses;
pub mod catalog;
pub mod command;
pub mod device;
pub mod discovery;
pub mod error;
pub mod handle;
pub mod listing;
pub mod plan;
pub mod policy;
pub mod request;
pub mod router;
pub mod snapshot;
pub mod state;
pub mod time;
pub mod view;

pub use catalog::Catalog;
pub use error::{ErrorKind, NeutronError};
pub use handle::{Answer, Outcome, Planned};
pub use policy::{Caller, Tokens};
pub use request::{Fresh, Query, Request, TenantNetworks};
pub use state::NeutronState;
pub use time::Time;

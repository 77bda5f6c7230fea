//! The l2pop agent's southbound: make the Linux kernel match the agent's desired table.
//!
//! ```text
//!  Desired ──┐                              ┌──> FakeKernel   (unit tests, fault injection)
//!            ├─ plan() ─> Vec<Op> ─ execute ┤
//!  Observed ─┘    pure       values         └──> Netlink      (feature `netlink`: dumps,
//!     ^                                                        pipelined requests, netns,
//!     └──── Observed::apply(op) for every op that succeeded    change events)
//! ```
//!
//! - [`state`]: [`Desired`] (per VNI: bridge, VXLAN device, taps, flood VTEPs, unicast FDB,
//!   ARP/ND proxy entries) and [`Observed`] (links, FDB and neighbour entries as dumped).
//! - [`plan()`]/[`plan_networks`]: the pure, deterministic diff, which touches only the links
//!   [`owns`] accepts and the entries on the agent's VXLAN devices.
//! - [`Op`]: one kernel change as a plain value; `Display` is the equivalent iproute2 command.
//! - [`FakeKernel`]: an in-memory kernel with Linux's error semantics and fault injection.
//! - `netlink` (feature `netlink`, the only part that needs tokio): `Netlink`, the rtnetlink
//!   backend, optionally inside a named network namespace, and `Events`, the link/neighbour
//!   change subscription that triggers a reconcile.
//!
//! Both backends implement [`Dataplane`], so the agent's reconcile loop is written once:
//! observe, plan, execute, apply the successes to the observation.

pub mod error;
pub mod fake;
pub mod names;
#[cfg(feature = "netlink")]
pub mod netlink;
pub mod op;
pub mod plan;
pub mod state;

#[cfg(test)]
mod fake_tests;
#[cfg(test)]
mod plan_tests;

use std::future::Future;

pub use error::{ConnectError, KernelError, ObserveError};
pub use fake::FakeKernel;
pub use names::{bridge_name, owns, tap_name, vxlan_name};
#[cfg(feature = "netlink")]
pub use netlink::{DeviceChanged, Events, Netlink};
pub use op::Op;
pub use plan::{plan, plan_networks};
pub use state::{Desired, DesiredNetwork, Link, LinkKind, Observed, VXLAN_PORT};

/// A kernel the agent reconciles: the fake or the netlink backend.
pub trait Dataplane {
    /// Dumps links, VXLAN FDB entries and permanent neighbours into an [`Observed`].
    fn observe(&mut self) -> impl Future<Output = Result<Observed, ObserveError>> + Send;

    /// Executes `ops` in order and returns one result per op; a failed op does not stop the
    /// others (ops on a device whose creation failed then fail with `ENODEV`).
    fn execute(&mut self, ops: &[Op]) -> impl Future<Output = Vec<Result<(), KernelError>>> + Send;
}

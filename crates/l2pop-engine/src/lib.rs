//! The l2pop engine: Neutron's ML2 l2population rules as a pure, deterministic state machine,
//! with the FDB extension registry of RFE 1793653.
//!
//! Data flow: [`Event`] (an agent report, a port change, a device up/down...) → [`Engine::apply`]
//! validates it against the topology index, mutates it, compares every affected host's
//! contribution before and after, and returns numbered [`Notification`]s — Neutron's
//! `add_fdb_entries` / `remove_fdb_entries` / `update_fdb_entries` with Neutron's payloads,
//! fanout or to one host. Extensions add their entries to every full FDB and send their own
//! updates through [`Engine::update_extension`].
//!
//! No I/O, no clock, no threads: the server, the agent and `l2pop replay` drive it.
//! The rules, with the deliberate differences from Neutron, are in `scenarios/README.md`.
//!
//! [`Notification`]: l2pop_model::Notification

mod change;
pub mod convergence;
mod engine;
mod error;
mod event;
mod extension;
pub mod extensions;
mod full_fdb;
mod image;
mod segments;
mod sorted;
mod topology;

pub use engine::{DesiredNetwork, DesiredTable, Engine, EngineBuilder, FullFdb, TopologyView};
pub use error::{EventError, QueryError, RegistryError};
pub use event::{
    AgentReport, DeviceDown, DeviceUp, Event, NetworkCreate, NetworkDelete, NetworkSegment,
    PortCreate, PortDelete, PortUpdate, RouterDelete, RouterSpec, SubnetCreate, SubnetDelete,
};
pub use extension::{
    ExtensionChanges, ExtensionEntries, ExtensionError, ExtensionStats, FdbExtension,
    FullFdbRequest, Report,
};
pub use full_fdb::Provenance;
pub use image::EngineImage;
pub use segments::checked_segment;

//! The vocabulary of l2pop: validated identifiers and addresses, the topology records the engine
//! keeps (networks with their segment, agents, ports, routers), and Neutron's l2pop wire payloads.
//!
//! Everything here is plain data with serde shapes. Values are validated when they are built or
//! deserialized, so a `Mac`, a `Segment` or a `Host` in the rest of the system is always valid.
//! The payload types (`FdbEntries`, `ChgIp`, `PortInfo`) serialize to exactly the JSON Neutron's
//! `L2populationAgentNotifyAPI` sends (reference `neutron-l2pop.md` §2); `python_json` renders
//! them the way Python's `json.dumps` does, for the oslo.messaging wire.

mod agent;
mod error;
mod fdb;
mod ids;
mod mac;
mod network;
mod notification;
mod port;
pub mod python_json;
mod table;

pub use agent::Agent;
pub use error::ModelError;
pub use fdb::{ChgIp, FLOODING_ENTRY, FdbEntries, FdbPayload, IpChange, NetworkFdb, PortInfo};
pub use ids::{Host, NetworkId, PortId, RouterId, Uuid};
pub use mac::Mac;
pub use network::{Network, NetworkType, Segment, Subnet};
pub use notification::{Method, Notification, Target};
pub use port::{DeviceOwner, Port, PortStatus};
pub use table::{FdbTable, NetworkTable};

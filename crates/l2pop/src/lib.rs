//! The `l2pop` binary's roles as a library, so that integration tests run them in-process:
//! the server (`server`), the agent (`agent`), the BGP speaker (`bgp`), the client verbs
//! (`client`), and the golden-scenario driver (`replay`).

pub mod agent;
pub mod bgp;
pub mod client;
pub mod demo;
pub mod replay;
pub mod server;

//! The `l2pop` binary's roles as a library, so that integration tests run them in-process:
//! the server (`server`), the client verbs (`client`), and the golden-scenario driver (`replay`).

pub mod client;
pub mod replay;
pub mod server;

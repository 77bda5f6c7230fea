//! l2pop's bus: Neutron's l2pop notifications and agent RPCs in the exact oslo.messaging wire
//! format, over RabbitMQ (lapin) or in memory.
//!
//! ```text
//!  pure ─────────────────────────────────────────────────────────────────────────────
//!   context  Context (ordered _context_* keys), Neutron's admin context
//!   oslo     envelope 2.0, requests (cast/call), replies, failures   bytes <-> values
//!   message  Notification <-> l2pop cast body (+ _context_l2pop, deterministic _unique_id)
//!   wire     exchanges / queues / bindings / properties oslo declares, as values
//!   follower positions in the fanout and host streams: apply, duplicate, or resync
//!  I/O ──────────────────────────────────────────────────────────────────────────────
//!   connect  the seam: connect(&BusSettings) -> Bus, whose publisher / consumer / rpc_server /
//!            rpc_client are one type each over either backend below (callers name no backend)
//!   rabbit   NotificationPublisher (confirms, reconnect, resend)  ─► <topic>_fanout / neutron
//!            NotificationConsumer  (the three agent queues)       ◄─ Received
//!            RpcServer (RpcRequest on an mpsc), RpcClient (call/cast)
//!   memory   the same roles in one process, through the same codec
//! ```
//!
//! Channel contracts: publishers take notifications in increasing `seq` order and expose the
//! highest `seq` below which everything is confirmed on a `watch::Receiver<u64>`; consumers
//! yield [`Received`] in the order of each queue; RPC servers hand [`RpcRequest`]s to an mpsc
//! sender the caller owns and answer calls through their oneshot.

pub mod connect;
pub mod context;
mod error;
pub mod follower;
pub mod memory;
pub mod message;
pub mod oslo;
pub mod rabbit;
mod rpc;
pub mod wire;

pub use connect::{
    Backend, Bus, BusSettings, Consumer, Publisher, RpcClient, RpcServer, RpcTarget, connect,
};
pub use context::Context;
pub use error::{BusError, DecodeError, EncodeError, RpcError};
pub use follower::{Follower, Positions, Resync, Stream, Verdict};
pub use message::{Received, StreamPosition};
pub use rpc::{PublisherStats, RpcFailure, RpcReply, RpcRequest};

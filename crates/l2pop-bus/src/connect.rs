//! One seam for every role on the bus: [`connect`] takes [`BusSettings`] (the backend and the
//! two topics) and returns a [`Bus`], a cheap handle whose methods give the server's publisher
//! and RPC server, an agent's consumer and RPC client, for RabbitMQ or the in-memory bus
//! alike. The server, the agent and the BGP speaker choose a backend only here.
//!
//! ```text
//!  BusSettings { backend: Rabbit { url } | Memory(MemoryBus), topic, rpc_topic }
//!        │ connect(): topics and URL checked, nothing dialled yet
//!        ▼
//!  Bus ─┬─ publisher(stream_id, confirmed_seq) ─► Publisher  (publish, confirmed, connected)
//!       ├─ consumer(host)                      ─► Consumer   (recv, rejected, connected)
//!       ├─ rpc_server(name, requests)          ─► RpcServer  (RpcRequest on the caller's mpsc)
//!       ├─ rpc_client()                        ─► RpcClient  (call, cast; redials after a loss)
//!       └─ rpc_client_to(RpcTarget)            ─► RpcClient  (the same, to another topic/endpoint)
//! ```
//!
//! Every RabbitMQ handle connects in the background and reconnects with backoff, so a process
//! starts (and keeps serving) while the broker is down; each says whether it is connected on a
//! `watch` channel. Each handle is one enum over the two backends: a caller never names
//! `rabbit::*` or `memory::*`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Mutex, mpsc, watch};

use l2pop_model::{Host, Notification};

use crate::context::Context;
use crate::error::{BusError, RpcError};
use crate::memory::{MemoryBus, MemoryConsumer, MemoryPublisher, MemoryRpcClient, MemoryRpcServer};
use crate::message::Received;
use crate::rabbit;
use crate::rpc::{PublisherStats, RpcRequest};
use crate::wire;

/// Which transport carries notifications and RPC.
#[derive(Clone, Debug)]
pub enum Backend {
    /// RabbitMQ at `url` (`amqp://user:password@host:port/vhost`).
    Rabbit { url: String },
    /// The in-memory bus shared by every role in this process (tests, the demo).
    Memory(MemoryBus),
}

/// Where and on which topics a process talks.
#[derive(Clone, Debug)]
pub struct BusSettings {
    pub backend: Backend,
    /// The notifier topic (Neutron's [`wire::DEFAULT_TOPIC`]); at most [`wire::MAX_TOPIC_LEN`]
    /// bytes so that every host's cast fits a routing key.
    pub topic: String,
    /// The topic agents call the server on ([`wire::DEFAULT_RPC_TOPIC`]).
    pub rpc_topic: String,
}

impl BusSettings {
    /// RabbitMQ at `url`, on the default topics.
    pub fn rabbit(url: impl Into<String>) -> Self {
        BusSettings::with_backend(Backend::Rabbit { url: url.into() })
    }

    /// The in-memory `bus`, on the default topics.
    pub fn memory(bus: MemoryBus) -> Self {
        BusSettings::with_backend(Backend::Memory(bus))
    }

    fn with_backend(backend: Backend) -> Self {
        BusSettings {
            backend,
            topic: wire::DEFAULT_TOPIC.to_owned(),
            rpc_topic: wire::DEFAULT_RPC_TOPIC.to_owned(),
        }
    }

    /// Refuses topics a host's routing key would not fit in, and a URL that does not parse.
    pub fn validate(&self) -> Result<(), BusError> {
        wire::check_topic(&self.topic)?;
        wire::check_topic(&self.rpc_topic)?;
        if let Backend::Rabbit { url } = &self.backend {
            url.parse::<lapin::uri::AMQPUri>()
                .map_err(|reason| BusError::BadUrl {
                    url: rabbit::redact(url),
                    reason,
                })?;
        }
        Ok(())
    }
}

/// Checks `settings` ([`BusSettings::validate`]) and returns the handle every role is made
/// from. No connection is made here: each role connects (and reconnects) on its own.
pub async fn connect(settings: &BusSettings) -> Result<Bus, BusError> {
    settings.validate()?;
    Ok(Bus {
        settings: Arc::new(settings.clone()),
    })
}

/// A validated bus: clone it freely.
#[derive(Clone, Debug)]
pub struct Bus {
    settings: Arc<BusSettings>,
}

impl Bus {
    /// The settings this bus was connected with.
    pub fn settings(&self) -> &BusSettings {
        &self.settings
    }

    /// The in-memory bus, when that is the backend (for in-process agents).
    pub fn memory(&self) -> Option<&MemoryBus> {
        match &self.settings.backend {
            Backend::Memory(bus) => Some(bus),
            Backend::Rabbit { .. } => None,
        }
    }

    /// The notification publisher of stream `stream_id` (the first half of every
    /// `_unique_id`), continuing after `confirmed_seq`. Buffers while the broker is away.
    pub fn publisher(&self, stream_id: u64, confirmed_seq: u64) -> Publisher {
        match &self.settings.backend {
            Backend::Rabbit { url } => {
                let mut config = rabbit::PublisherConfig::new(url.clone(), stream_id);
                config.topic.clone_from(&self.settings.topic);
                config.confirmed_seq = confirmed_seq;
                Publisher::Rabbit(rabbit::NotificationPublisher::spawn(config))
            }
            Backend::Memory(bus) => {
                Publisher::Memory(bus.publisher_on(&self.settings.topic, stream_id, confirmed_seq))
            }
        }
    }

    /// An agent's consumer for `host`: every fanout and the casts to `host`.
    pub fn consumer(&self, host: Host) -> Consumer {
        match &self.settings.backend {
            Backend::Rabbit { url } => {
                let mut config = rabbit::ConsumerConfig::new(url.clone(), host);
                config.topic.clone_from(&self.settings.topic);
                Consumer::Rabbit(rabbit::NotificationConsumer::spawn(config))
            }
            Backend::Memory(bus) => Consumer::Memory(bus.consumer(host)),
        }
    }

    /// Serves the RPC topic as `server_name`; requests go to `requests`.
    pub fn rpc_server(&self, server_name: &str, requests: mpsc::Sender<RpcRequest>) -> RpcServer {
        match &self.settings.backend {
            Backend::Rabbit { url } => {
                let mut config = rabbit::RpcServerConfig::new(url.clone(), server_name);
                config.topic.clone_from(&self.settings.rpc_topic);
                RpcServer::Rabbit(rabbit::RpcServer::spawn(config, requests))
            }
            Backend::Memory(bus) => RpcServer::Memory(bus.rpc_server(server_name, requests)),
        }
    }

    /// A client of the RPC topic. It dials on its first call and again after a lost connection.
    pub fn rpc_client(&self) -> RpcClient {
        self.rpc_client_to(RpcTarget::new(self.settings.rpc_topic.clone()))
    }

    /// A client of `target` (another topic or version than l2pop's own), e.g.
    /// Neutron's `q-reports-plugin`. The memory bus has one set of servers: it ignores the
    /// topic.
    pub fn rpc_client_to(&self, target: RpcTarget) -> RpcClient {
        match &self.settings.backend {
            Backend::Rabbit { url } => {
                let mut config = rabbit::RpcClientConfig::new(url.clone(), target.topic);
                config.version = target.version;
                RpcClient::Rabbit(Arc::new(Redialing {
                    config,
                    client: Mutex::new(None),
                }))
            }
            Backend::Memory(bus) => RpcClient::Memory(bus.rpc_client_with(target.version)),
        }
    }
}

/// Where a client's requests go and the version they ask for: oslo.messaging's client
/// `Target`. Neutron's agents call `q-plugin` at 1.x and `q-reports-plugin` at 1.3 (its
/// dispatcher takes a request whose major version matches and whose minor is not above the
/// endpoint's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcTarget {
    pub topic: String,
    /// Sent as the request's `version`; `None` omits it.
    pub version: Option<String>,
}

impl RpcTarget {
    /// `topic` at version 1.0 (l2pop's own RPC).
    pub fn new(topic: impl Into<String>) -> Self {
        RpcTarget {
            topic: topic.into(),
            version: Some("1.0".to_owned()),
        }
    }
}

/// Publishes notifications in `seq` order, at least once (see [`rabbit::NotificationPublisher`]).
#[derive(Debug)]
pub enum Publisher {
    Rabbit(rabbit::NotificationPublisher),
    Memory(MemoryPublisher),
}

impl Publisher {
    /// Hands `notification` to the transport. A per-message refusal ([`BusError::TooLong`],
    /// [`BusError::Encode`], [`BusError::OutOfOrder`]) leaves the publisher working;
    /// [`BusError::Closed`] means it is gone.
    pub async fn publish(&mut self, notification: &Notification) -> Result<(), BusError> {
        match self {
            Publisher::Rabbit(p) => p.publish(notification).await,
            Publisher::Memory(p) => p.publish(notification).await,
        }
    }

    /// The highest `seq` confirmed with everything before it.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        match self {
            Publisher::Rabbit(p) => p.confirmed(),
            Publisher::Memory(p) => p.confirmed(),
        }
    }

    /// True while connected to the broker (always, in memory).
    pub fn connected(&self) -> watch::Receiver<bool> {
        match self {
            Publisher::Rabbit(p) => p.connected(),
            Publisher::Memory(_) => watch::channel(true).1,
        }
    }

    /// Notifications handed over but not yet confirmed.
    pub fn unconfirmed(&self) -> u64 {
        match self {
            Publisher::Rabbit(p) => p.unconfirmed(),
            Publisher::Memory(_) => 0,
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> PublisherStats {
        match self {
            Publisher::Rabbit(p) => p.stats(),
            Publisher::Memory(p) => p.stats(),
        }
    }

    /// Waits up to `timeout` for every notification to be confirmed, then disconnects.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), BusError> {
        match self {
            Publisher::Rabbit(p) => p.shutdown(timeout).await,
            Publisher::Memory(_) => Ok(()),
        }
    }
}

/// An agent's notifications, in the order of each queue.
#[derive(Debug)]
pub enum Consumer {
    Rabbit(rabbit::NotificationConsumer),
    Memory(MemoryConsumer),
}

impl Consumer {
    /// The next notification; `None` once the transport has stopped.
    pub async fn recv(&mut self) -> Option<Received> {
        match self {
            Consumer::Rabbit(c) => c.recv().await,
            Consumer::Memory(c) => c.recv().await,
        }
    }

    /// Messages dropped because they were not valid l2pop casts.
    pub fn rejected(&self) -> u64 {
        match self {
            Consumer::Rabbit(c) => c.rejected(),
            Consumer::Memory(c) => c.rejected(),
        }
    }

    /// True while consuming (always, in memory). After it turns true, every notification
    /// published is received.
    pub fn connected(&self) -> watch::Receiver<bool> {
        match self {
            Consumer::Rabbit(c) => c.connected(),
            Consumer::Memory(_) => watch::channel(true).1,
        }
    }
}

/// A registered RPC server; dropping it stops serving.
#[derive(Debug)]
pub enum RpcServer {
    Rabbit(rabbit::RpcServer),
    Memory(MemoryRpcServer),
}

impl RpcServer {
    /// True while consuming the RPC queues (always, in memory).
    pub fn connected(&self) -> watch::Receiver<bool> {
        match self {
            RpcServer::Rabbit(s) => s.connected(),
            RpcServer::Memory(_) => watch::channel(true).1,
        }
    }
}

/// Calls and casts to the RPC topic. Cheap to clone.
#[derive(Clone, Debug)]
pub enum RpcClient {
    Rabbit(Arc<Redialing>),
    Memory(MemoryRpcClient),
}

/// A RabbitMQ RPC client that dials when it has no live connection: at the first call, and at
/// the first call after the connection was lost (a broker restart), so a long-running agent
/// needs no new client.
#[derive(Debug)]
pub struct Redialing {
    config: rabbit::RpcClientConfig,
    client: Mutex<Option<Arc<rabbit::RpcClient>>>,
}

impl Redialing {
    async fn client(&self) -> Result<Arc<rabbit::RpcClient>, BusError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref()
            && client.is_connected()
        {
            return Ok(client.clone());
        }
        *slot = None;
        let client = Arc::new(rabbit::RpcClient::connect(self.config.clone()).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs `op` on the live client, dialing first when there is none, and forgets the
    /// client when the transport failed so that the next call dials again.
    async fn run<T>(
        &self,
        op: impl AsyncFnOnce(&rabbit::RpcClient) -> Result<T, RpcError>,
    ) -> Result<T, RpcError> {
        let client = self.client().await?;
        let outcome = op(&client).await;
        if let Err(RpcError::Bus(_)) = &outcome {
            self.forget(&client).await;
        }
        outcome
    }

    /// Forgets `client` after a transport failure, so the next call dials again.
    async fn forget(&self, client: &Arc<rabbit::RpcClient>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            *slot = None;
        }
    }
}

impl RpcClient {
    /// Test hook: closes the current RabbitMQ connection under the client, as a broker restart
    /// would.
    #[doc(hidden)]
    pub async fn close_connection_for_test(&self) {
        if let RpcClient::Rabbit(redialing) = self
            && let Some(client) = redialing.client.lock().await.as_ref()
        {
            client.close_connection_for_test().await;
        }
    }

    /// Calls `method(**args)` on the topic (or on `server` only) and waits up to `timeout`.
    pub async fn call(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        match self {
            RpcClient::Rabbit(redialing) => {
                redialing
                    .run(async |client| client.call(server, method, args, context, timeout).await)
                    .await
            }
            RpcClient::Memory(client) => client.call(server, method, args, context, timeout).await,
        }
    }

    /// Casts `method(**args)` to the topic (or to `server` only); no reply.
    pub async fn cast(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
    ) -> Result<(), RpcError> {
        match self {
            RpcClient::Rabbit(redialing) => {
                redialing
                    .run(async |client| client.cast(server, method, args, context).await)
                    .await
            }
            RpcClient::Memory(client) => client.cast(server, method, args, context),
        }
    }
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;

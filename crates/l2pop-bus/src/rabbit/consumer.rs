//! The agent side of notifications: declares exactly the three queues a Neutron agent's oslo
//! consumer declares for the l2pop topic and its host, and yields every l2pop cast as a
//! [`Received`], tagged with where it came from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lapin::message::Delivery;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use l2pop_model::{Host, Target};

use super::Backoff;
use super::listener::{self, Handler, ListenerConfig};
use crate::error::BusError;
use crate::message::{self, Received};
use crate::rpc::DuplicateFilter;
use crate::wire;

/// Settings of a [`NotificationConsumer`].
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub url: String,
    pub exchange: String,
    pub topic: String,
    /// This agent's `[DEFAULT] host`: host casts are addressed to it.
    pub host: Host,
    pub prefetch: u16,
    /// Decoded notifications buffered for [`NotificationConsumer::recv`].
    pub capacity: usize,
    pub backoff: Backoff,
    pub connection_name: String,
}

impl ConsumerConfig {
    /// Neutron's defaults: control exchange `neutron`, the l2pop notifier topic.
    pub fn new(url: impl Into<String>, host: Host) -> Self {
        ConsumerConfig {
            url: url.into(),
            exchange: wire::CONTROL_EXCHANGE.to_owned(),
            topic: wire::DEFAULT_TOPIC.to_owned(),
            host,
            prefetch: 256,
            capacity: 1024,
            backoff: Backoff::default(),
            connection_name: super::default_connection_name("agent"),
        }
    }
}

/// Receives l2pop notifications (ours and real Neutron's) for one agent host. Dropping it
/// stops the listener task.
#[derive(Debug)]
pub struct NotificationConsumer {
    received: mpsc::Receiver<Received>,
    queues: Vec<String>,
    rejected: Arc<AtomicU64>,
    connected: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// What a consumer hands its listener task: the declarations and the handler.
type Listener = (ListenerConfig, NotificationHandler);

/// The handle's side of a consumer, before its listener task runs.
struct Shell {
    received: mpsc::Receiver<Received>,
    queues: Vec<String>,
    rejected: Arc<AtomicU64>,
}

fn prepare(config: ConsumerConfig) -> (Listener, Shell) {
    let queues = wire::agent_queues(
        &config.exchange,
        &config.topic,
        &config.host,
        &wire::uuid_hex(),
    )
    .to_vec();
    let names = queues.iter().map(|q| q.name.clone()).collect();
    let (tx, received) = mpsc::channel(config.capacity.max(1));
    let rejected = Arc::new(AtomicU64::new(0));
    let listener = ListenerConfig {
        url: config.url,
        connection_name: config.connection_name,
        queues,
        prefetch: config.prefetch,
        backoff: config.backoff,
    };
    let handler = NotificationHandler {
        host: config.host,
        out: tx,
        duplicates: DuplicateFilter::default(),
        rejected: rejected.clone(),
    };
    let shell = Shell {
        received,
        queues: names,
        rejected,
    };
    ((listener, handler), shell)
}

impl Shell {
    fn into_consumer(
        self,
        connected: watch::Receiver<bool>,
        task: JoinHandle<()>,
    ) -> NotificationConsumer {
        NotificationConsumer {
            received: self.received,
            queues: self.queues,
            rejected: self.rejected,
            connected,
            task,
        }
    }
}

impl NotificationConsumer {
    /// Declares the queues and starts consuming; fails when the broker is unreachable or
    /// refuses a declaration. Messages published after this returns are received.
    pub async fn connect(config: ConsumerConfig) -> Result<Self, BusError> {
        let ((listener, handler), shell) = prepare(config);
        let (connected_tx, connected) = watch::channel(false);
        // A consumer never publishes.
        let (_, outgoing) = mpsc::unbounded_channel();
        let task = listener::start(listener, handler, outgoing, connected_tx).await?;
        Ok(shell.into_consumer(connected, task))
    }

    /// Starts consuming without waiting for the broker: the queues are declared once it is
    /// reachable ([`NotificationConsumer::connected`] turns true), and again after every
    /// reconnect. Host casts published meanwhile wait in the host queue if it existed before;
    /// fanouts published before the first connect are not received (an agent resyncs then).
    pub fn spawn(config: ConsumerConfig) -> Self {
        let ((listener, handler), shell) = prepare(config);
        let (connected_tx, connected) = watch::channel(false);
        let (_, outgoing) = mpsc::unbounded_channel();
        let task = listener::spawn(listener, handler, outgoing, connected_tx);
        shell.into_consumer(connected, task)
    }

    /// True while the consumer is connected and consuming.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// The next notification, in the order of the queue it came from. `None` once the
    /// listener task has stopped.
    pub async fn recv(&mut self) -> Option<Received> {
        self.received.recv().await
    }

    /// The declared queue names: topic, `topic.host`, `topic_fanout_<uuid>`.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Messages dropped because they were not valid l2pop casts.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

impl Drop for NotificationConsumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct NotificationHandler {
    host: Host,
    out: mpsc::Sender<Received>,
    duplicates: DuplicateFilter,
    rejected: Arc<AtomicU64>,
}

/// Index of the fanout queue in [`wire::agent_queues`].
const FANOUT_QUEUE: usize = 2;

impl Handler for NotificationHandler {
    async fn handle(&mut self, queue: usize, delivery: &Delivery) -> bool {
        // The shared topic queue (index 0) gets casts for "any one agent": never used by
        // l2pop; treated as addressed to this host.
        let target = if queue == FANOUT_QUEUE {
            Target::Fanout
        } else {
            Target::Host(self.host.clone())
        };
        match message::decode_notification(&delivery.data, target) {
            Ok(received) => {
                if self.duplicates.is_duplicate(received.unique_id.as_deref()) {
                    debug!(unique_id = ?received.unique_id, "dropping redelivered notification");
                    return true;
                }
                self.out.send(received).await.is_ok()
            }
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, exchange = %delivery.exchange, routing_key = %delivery.routing_key, "dropping a message that is not an l2pop notification");
                true
            }
        }
    }
}

//! The server's end of the bus: an ordered notification publisher (whose confirmed seq the
//! owner records as the watermark) and the agents' RPC requests, over RabbitMQ or in memory.
//!
//! The owner never waits for the broker: it hands notifications to a forwarding task through
//! an unbounded queue, in seq order. While the broker is unreachable they wait there (and the
//! publisher keeps every unconfirmed one); they are also recoverable from the command log,
//! from which a restarted server republishes everything above the recorded watermark.

use std::sync::Mutex;
use std::time::Duration;

use l2pop_bus::memory::{MemoryBus, MemoryPublisher, MemoryRpcServer};
use l2pop_bus::rabbit::{NotificationPublisher, PublisherConfig, RpcServer, RpcServerConfig};
use l2pop_bus::{BusError, RpcRequest};
use l2pop_model::Notification;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::config::BusSettings;

/// The RPC server handle of either backend, held so that it keeps serving.
#[derive(Debug)]
enum Rpc {
    Rabbit(#[allow(dead_code)] RpcServer),
    Memory(#[allow(dead_code)] MemoryRpcServer),
}

/// The server's bus connection.
#[derive(Debug)]
pub struct Bus {
    notify: mpsc::UnboundedSender<Notification>,
    confirmed: watch::Receiver<u64>,
    requests: Mutex<Option<mpsc::Receiver<RpcRequest>>>,
    forwarder: JoinHandle<()>,
    /// Kept alive while the server runs (dropping it stops serving).
    _rpc: Rpc,
    /// The in-memory bus, for in-process agents (tests, the demo).
    pub memory: Option<MemoryBus>,
}

impl Bus {
    /// Connects. `stream_id` prefixes every `_unique_id`; `confirmed_seq` is the watermark the
    /// next notification continues from.
    pub async fn start(
        settings: &BusSettings,
        server_name: &str,
        stream_id: u64,
        confirmed_seq: u64,
    ) -> Result<Bus, BusError> {
        let (notify, queue) = mpsc::unbounded_channel::<Notification>();
        let (requests_tx, requests) = mpsc::channel::<RpcRequest>(1024);
        match settings {
            BusSettings::Rabbit {
                url,
                topic,
                rpc_topic,
            } => {
                let mut config = PublisherConfig::new(url.clone(), stream_id);
                config.topic.clone_from(topic);
                config.confirmed_seq = confirmed_seq;
                let publisher = NotificationPublisher::connect(config).await?;
                let confirmed = publisher.confirmed();
                let mut rpc_config = RpcServerConfig::new(url.clone(), server_name);
                rpc_config.topic.clone_from(rpc_topic);
                let rpc = RpcServer::start(rpc_config, requests_tx).await?;
                Ok(Bus {
                    notify,
                    confirmed,
                    requests: Mutex::new(Some(requests)),
                    forwarder: tokio::spawn(forward(queue, publisher)),
                    _rpc: Rpc::Rabbit(rpc),
                    memory: None,
                })
            }
            BusSettings::Memory => {
                let memory = MemoryBus::new();
                let publisher = memory.publisher(stream_id);
                let confirmed = publisher.confirmed();
                let rpc = memory.rpc_server(server_name, requests_tx);
                Ok(Bus {
                    notify,
                    confirmed,
                    requests: Mutex::new(Some(requests)),
                    forwarder: tokio::spawn(forward_memory(queue, publisher)),
                    _rpc: Rpc::Memory(rpc),
                    memory: Some(memory),
                })
            }
        }
    }

    /// Queues one notification (in seq order; never blocks the owner).
    pub fn publish(&self, notification: Notification) {
        let _ = self.notify.send(notification);
    }

    /// The highest seq confirmed by the broker with everything before it.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        self.confirmed.clone()
    }

    /// The agents' requests (taken once, by the RPC service).
    pub fn take_requests(&self) -> mpsc::Receiver<RpcRequest> {
        self.requests
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| mpsc::channel(1).1)
    }

    /// Publishes what is queued and waits (up to `timeout`) for the broker's confirms.
    pub async fn shutdown(self, timeout: Duration) {
        drop(self.notify);
        if tokio::time::timeout(timeout, self.forwarder).await.is_err() {
            tracing::warn!(
                "bus: unconfirmed notifications at shutdown; the next start republishes them"
            );
        }
    }
}

async fn forward(
    mut queue: mpsc::UnboundedReceiver<Notification>,
    mut publisher: NotificationPublisher,
) {
    while let Some(notification) = queue.recv().await {
        if let Err(error) = publisher.publish(&notification).await {
            tracing::error!(%error, seq = notification.seq, "bus: cannot queue a notification");
        }
        metrics::gauge!("l2pop_bus_unconfirmed").set(publisher.unconfirmed() as f64);
        let stats = publisher.stats();
        metrics::counter!("l2pop_bus_bytes_published_total").absolute(stats.published_bytes);
        metrics::counter!("l2pop_bus_messages_published_total").absolute(stats.published_messages);
    }
    if let Err(error) = publisher.shutdown(Duration::from_secs(5)).await {
        tracing::warn!(%error, "bus: publisher shutdown");
    }
}

async fn forward_memory(
    mut queue: mpsc::UnboundedReceiver<Notification>,
    mut publisher: MemoryPublisher,
) {
    while let Some(notification) = queue.recv().await {
        if let Err(error) = publisher.publish(&notification).await {
            tracing::error!(%error, seq = notification.seq, "bus: cannot publish a notification");
        }
    }
}

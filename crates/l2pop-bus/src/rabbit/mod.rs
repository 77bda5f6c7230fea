//! The RabbitMQ transport (lapin): executes the declarations of [`crate::wire`] and moves the
//! bodies of [`crate::oslo`] / [`crate::message`].
//!
//! ```text
//!  NotificationPublisher ──mpsc──► publisher task ── one channel, confirms ──► broker
//!        ▲ watch<u64> confirmed ◄──┘ (keeps every unconfirmed body; reconnects, resends in order)
//!
//!  broker ──► listener task (3 queues, acks) ──► NotificationConsumer::recv()  (Received)
//!  broker ──► listener task (3 queues, acks) ──► mpsc<RpcRequest> ─► owner ─oneshot─┐
//!                      ▲ replies published by the same task (default exchange) ◄────┘
//!  RpcClient::call ──► publish ─► broker ─► reply_<uuid> queue ─► reply task ─► waiting call
//! ```
//!
//! Every task is owned by its handle and aborted when the handle is dropped. Publisher and
//! listeners reconnect with exponential backoff ([`Backoff`]); listeners re-declare the same
//! queue names, so nothing queued while they were away is lost. Each says whether it is
//! connected on a `watch`. [`RpcClient`] does not reconnect (its calls fail after a loss); the
//! seam's [`crate::connect::RpcClient`] dials a new one at the next call.

mod consumer;
mod listener;
mod publisher;
mod rpc;

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::error::BusError;
use crate::wire;

pub use consumer::{ConsumerConfig, NotificationConsumer};
pub use publisher::{NotificationPublisher, PublisherConfig};
pub use rpc::{RpcClient, RpcClientConfig, RpcServer, RpcServerConfig};

/// The broker URL used when none is configured.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Reconnection delays: `initial`, doubling up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

/// The delay sequence of one outage.
#[derive(Debug)]
pub(crate) struct Delays {
    config: Backoff,
    next: Duration,
}

impl Delays {
    pub(crate) fn new(config: Backoff) -> Self {
        Delays {
            config,
            next: config.initial,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.config.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.config.initial;
    }
}

pub(crate) async fn connect(url: &str, connection_name: &str) -> Result<Connection, BusError> {
    let properties =
        ConnectionProperties::default().with_connection_name(connection_name.to_owned().into());
    Connection::connect(url, properties)
        .await
        .map_err(|source| BusError::Connect {
            url: redact(url),
            source,
        })
}

/// The URL without its password, for errors and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

pub(crate) async fn open_channel(connection: &Connection) -> Result<Channel, BusError> {
    connection
        .create_channel()
        .await
        .map_err(|e| BusError::amqp("channel.open", e))
}

pub(crate) async fn declare_exchange(
    channel: &Channel,
    exchange: &wire::Exchange,
) -> Result<(), BusError> {
    let kind = match exchange.kind {
        wire::ExchangeKind::Topic => lapin::ExchangeKind::Topic,
        wire::ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
    };
    let options = ExchangeDeclareOptions {
        durable: exchange.durable,
        auto_delete: exchange.auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.name.as_str().into(),
            kind,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(|e| BusError::amqp(format!("exchange.declare {}", exchange.name), e))
}

/// Declares the queue's exchange, the queue, and the binding, as kombu's `Queue.declare` does.
pub(crate) async fn declare_queue(channel: &Channel, queue: &wire::Queue) -> Result<(), BusError> {
    wire::check_shortstr("queue name", &queue.name)?;
    if let Some(binding) = &queue.binding {
        wire::check_shortstr("exchange name", &binding.exchange.name)?;
        wire::check_shortstr("routing key", &binding.routing_key)?;
    }
    if let Some(binding) = &queue.binding {
        declare_exchange(channel, &binding.exchange).await?;
    }
    let mut arguments = FieldTable::default();
    if let Some(expires) = queue.expires_ms {
        // py-amqp writes a Python int that fits 32 bits as a signed 32-bit field ('I').
        arguments.insert("x-expires".into(), AMQPValue::LongInt(expires));
    }
    let options = QueueDeclareOptions {
        durable: queue.durable,
        auto_delete: queue.auto_delete,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.name.as_str().into(), options, arguments)
        .await
        .map_err(|e| BusError::amqp(format!("queue.declare {}", queue.name), e))?;
    if let Some(binding) = &queue.binding {
        channel
            .queue_bind(
                queue.name.as_str().into(),
                binding.exchange.name.as_str().into(),
                binding.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::amqp(format!("queue.bind {}", queue.name), e))?;
    }
    Ok(())
}

/// The AMQP properties of every oslo message: content type, encoding, delivery mode,
/// priority and an empty header table, nothing else.
pub(crate) fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type(wire::CONTENT_TYPE.into())
        .with_content_encoding(wire::CONTENT_ENCODING.into())
        .with_delivery_mode(wire::DELIVERY_MODE)
        .with_priority(wire::PRIORITY)
        .with_headers(FieldTable::default())
}

/// A connection name that identifies this process's role in `rabbitmqctl list_connections`.
pub(crate) fn default_connection_name(role: &str) -> String {
    format!("l2pop-{role}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let mut delays = Delays::new(Backoff::default());
        let seen: Vec<_> = (0..8).map(|_| delays.next_delay().as_millis()).collect();
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        delays.reset();
        assert_eq!(delays.next_delay().as_millis(), 100);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}

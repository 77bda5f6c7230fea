//! The consuming side shared by [`super::NotificationConsumer`] and [`super::RpcServer`]: one
//! task owns a connection, declares a fixed set of queues (their names never change, so a
//! reconnect finds what was queued meanwhile), consumes them, hands each delivery to a
//! [`Handler`] and acknowledges it, and publishes the [`Outgoing`] messages (RPC replies) it is
//! given. On failure it reconnects with backoff and declares the same queues again.

use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{self, FuturesUnordered, Stream, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection, Event, PublisherConfirm};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{Backoff, Delays};
use crate::error::BusError;
use crate::wire::{self, Route};

/// What a listener declares and where it connects.
#[derive(Clone, Debug)]
pub(crate) struct ListenerConfig {
    pub(crate) url: String,
    pub(crate) connection_name: String,
    pub(crate) queues: Vec<wire::Queue>,
    pub(crate) prefetch: u16,
    pub(crate) backoff: Backoff,
}

/// A message the listener publishes for its owner (an RPC reply).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) route: Route,
    pub(crate) body: Vec<u8>,
    /// oslo publishes replies with `mandatory` (`direct_mandatory_flag`).
    pub(crate) mandatory: bool,
}

/// Processes deliveries. Runs inside the listener task, so it must not block for long.
pub(crate) trait Handler: Send + 'static {
    /// Handles one delivery from `queues[queue]`. False when the owner is gone: the listener
    /// stops (without acknowledging, so the broker keeps the message).
    fn handle(&mut self, queue: usize, delivery: &Delivery) -> impl Future<Output = bool> + Send;
}

type Deliveries = Pin<Box<dyn Stream<Item = (usize, lapin::Result<Delivery>)> + Send>>;

struct Session {
    connection: Connection,
    /// Replies, in confirm mode so an unroutable mandatory reply comes back as a return.
    out: Channel,
    deliveries: Deliveries,
}

impl Session {
    async fn open(config: &ListenerConfig) -> Result<Self, BusError> {
        let connection = super::connect(&config.url, &config.connection_name).await?;
        let channel = super::open_channel(&connection).await?;
        for queue in &config.queues {
            super::declare_queue(&channel, queue).await?;
        }
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| BusError::amqp("basic.qos", e))?;
        let mut streams = Vec::with_capacity(config.queues.len());
        for (index, queue) in config.queues.iter().enumerate() {
            let consumer = channel
                .basic_consume(
                    queue.name.as_str().into(),
                    format!("l2pop-{}", wire::uuid_hex()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| BusError::amqp(format!("basic.consume {}", queue.name), e))?;
            streams.push(consumer.map(move |delivery| (index, delivery)).boxed());
        }
        let out = super::open_channel(&connection).await?;
        out.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| BusError::amqp("confirm.select", e))?;
        Ok(Session {
            connection,
            out,
            deliveries: Box::pin(stream::select_all(streams)),
        })
    }
}

/// Connects and declares once (so the caller learns at once that the broker is unreachable
/// and can publish right after), then runs the listener task.
pub(crate) async fn start<H: Handler>(
    config: ListenerConfig,
    handler: H,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
    connected: watch::Sender<bool>,
) -> Result<JoinHandle<()>, BusError> {
    let session = Session::open(&config).await?;
    Ok(tokio::spawn(run(
        config,
        handler,
        outgoing,
        Some(session),
        connected,
    )))
}

/// Runs the listener task without waiting for the broker: it connects (and declares) in the
/// background, retrying with backoff; `connected` says when it is consuming.
pub(crate) fn spawn<H: Handler>(
    config: ListenerConfig,
    handler: H,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
    connected: watch::Sender<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(config, handler, outgoing, None, connected))
}

async fn run<H: Handler>(
    config: ListenerConfig,
    mut handler: H,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    mut session: Option<Session>,
    connected: watch::Sender<bool>,
) {
    let mut delays = Delays::new(config.backoff);
    let mut reconnect = session.is_none();
    loop {
        let current = match session.take() {
            Some(s) => s,
            None => match Session::open(&config).await {
                Ok(s) => {
                    if reconnect {
                        info!(connection = %config.connection_name, "listener connected");
                    }
                    s
                }
                Err(e) => {
                    let delay = delays.next_delay();
                    warn!(error = %e, ?delay, "listener cannot connect; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            },
        };
        reconnect = true;
        delays.reset();
        connected.send_replace(true);
        let outcome = serve(current, &mut handler, &mut outgoing).await;
        connected.send_replace(false);
        match outcome {
            Ok(()) => return,
            Err(why) => {
                warn!(reason = %why, connection = %config.connection_name, "listener lost its connection");
                tokio::time::sleep(delays.next_delay()).await;
            }
        }
    }
}

/// Ok when the owner is gone; Err(reason) when the connection failed.
async fn serve<H: Handler>(
    mut session: Session,
    handler: &mut H,
    outgoing: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> Result<(), String> {
    let mut confirms: FuturesUnordered<PublisherConfirm> = FuturesUnordered::new();
    let mut events = Box::pin(session.connection.events_listener());
    let properties = super::properties();
    let mut outgoing_open = true;
    loop {
        tokio::select! {
            item = session.deliveries.next() => match item {
                Some((queue, Ok(delivery))) => {
                    if !handler.handle(queue, &delivery).await {
                        let _ = session.connection.close(200, "OK".into()).await;
                        return Ok(());
                    }
                    delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(|e| format!("basic.ack: {e}"))?;
                }
                Some((_, Err(e))) => return Err(format!("consumer: {e}")),
                None => return Err("consumers cancelled".into()),
            },
            message = outgoing.recv(), if outgoing_open => match message {
                Some(message) => {
                    let confirm = session
                        .out
                        .basic_publish(
                            message.route.exchange_name().into(),
                            message.route.routing_key.as_str().into(),
                            BasicPublishOptions {
                                mandatory: message.mandatory,
                                ..BasicPublishOptions::default()
                            },
                            &message.body,
                            properties.clone(),
                        )
                        .await
                        .map_err(|e| format!("basic.publish: {e}"))?;
                    confirms.push(confirm);
                }
                None => outgoing_open = false,
            },
            Some(confirm) = confirms.next(), if !confirms.is_empty() => match confirm {
                Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
                    warn!(
                        routing_key = %returned.delivery.routing_key,
                        reply = %returned.reply_text,
                        "reply not delivered: the caller's reply queue is gone"
                    );
                }
                Ok(Confirmation::Nack(None)) => warn!("the broker refused a reply (nack)"),
                Ok(_) => {}
                Err(e) => return Err(format!("reply confirm: {e}")),
            },
            event = events.next() => match event {
                Some(Event::Error(e)) => return Err(format!("connection: {e}")),
                Some(_) => {}
                None => return Err("connection events ended".into()),
            },
        }
    }
}

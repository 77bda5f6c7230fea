//! The notification publisher: one task owns the connection, publishes notifications in
//! sequence order on one channel with publisher confirms, and keeps every unconfirmed body.
//!
//! On any channel or connection failure (or a nack) it reconnects with backoff and publishes
//! again, in order, from the first unconfirmed notification. A resent message is byte-identical
//! (it was encoded once), so its `_unique_id` lets oslo receivers drop the duplicate. The
//! highest `seq` up to which everything is confirmed goes out on a `watch` channel: the server
//! persists it as its delivery watermark.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection, Event};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use l2pop_model::Notification;

use super::{Backoff, Delays};
use crate::context::Context;
use crate::error::BusError;
use crate::message;
use crate::rpc::{Counters, PublisherStats};
use crate::wire::{self, Route};

/// Settings of a [`NotificationPublisher`].
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    pub url: String,
    /// The control exchange (`neutron`).
    pub exchange: String,
    /// The notifier topic ([`wire::DEFAULT_TOPIC`]).
    pub topic: String,
    /// The server's cluster id: the first half of every `_unique_id`.
    pub stream_id: u64,
    /// The watermark to start from (the last persisted confirmed `seq`).
    pub confirmed_seq: u64,
    pub backoff: Backoff,
    /// Unconfirmed messages on the wire at most; the rest wait in memory.
    pub max_in_flight: usize,
    /// Notifications buffered between [`NotificationPublisher::publish`] and the task.
    pub queue_capacity: usize,
    /// Shown by `rabbitmqctl list_connections name`.
    pub connection_name: String,
}

impl PublisherConfig {
    /// Neutron's defaults: control exchange `neutron`, the l2pop notifier topic; backoff
    /// 100 ms to 5 s; 1,024 messages in flight.
    pub fn new(url: impl Into<String>, stream_id: u64) -> Self {
        PublisherConfig {
            url: url.into(),
            exchange: wire::CONTROL_EXCHANGE.to_owned(),
            topic: wire::DEFAULT_TOPIC.to_owned(),
            stream_id,
            confirmed_seq: 0,
            backoff: Backoff::default(),
            max_in_flight: 1024,
            queue_capacity: 1024,
            connection_name: super::default_connection_name("publisher"),
        }
    }
}

enum Command {
    Publish(Entry),
    Shutdown(oneshot::Sender<()>),
    CloseConnection,
}

/// One encoded notification waiting for its confirm.
struct Entry {
    seq: u64,
    route: Route,
    body: Vec<u8>,
    /// Published at least once (a later publish is a resend).
    sent: bool,
}

/// Publishes [`Notification`]s to RabbitMQ in the oslo.messaging format, at least once and in
/// order. Dropping it aborts the task (unconfirmed notifications are lost: the server resends
/// from its watermark); [`NotificationPublisher::shutdown`] flushes first.
#[derive(Debug)]
pub struct NotificationPublisher {
    commands: mpsc::Sender<Command>,
    confirmed: watch::Receiver<u64>,
    connected: watch::Receiver<bool>,
    counters: Arc<Counters>,
    unconfirmed: Arc<AtomicU64>,
    config: PublisherConfig,
    last_seq: Option<u64>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Publish(entry) => write!(f, "Publish({})", entry.seq),
            Command::Shutdown(_) => f.write_str("Shutdown"),
            Command::CloseConnection => f.write_str("CloseConnection"),
        }
    }
}

impl NotificationPublisher {
    /// Starts the publisher task. It connects in the background and keeps retrying; use
    /// [`NotificationPublisher::connect`] to fail fast when the broker is unreachable.
    pub fn spawn(config: PublisherConfig) -> Self {
        Self::start(config, None)
    }

    /// Connects once (failing with [`BusError::Connect`] when the broker is unreachable), then
    /// starts the task on that connection.
    pub async fn connect(config: PublisherConfig) -> Result<Self, BusError> {
        let session = Session::open(&config).await?;
        Ok(Self::start(config, Some(session)))
    }

    fn start(config: PublisherConfig, session: Option<Session>) -> Self {
        let (commands, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (confirmed_tx, confirmed) = watch::channel(config.confirmed_seq);
        let (connected_tx, connected) = watch::channel(false);
        let counters = Counters::new();
        let unconfirmed = Arc::new(AtomicU64::new(0));
        let task = PublisherTask {
            config: config.clone(),
            commands: rx,
            pending: VecDeque::new(),
            confirmed: confirmed_tx,
            connected: connected_tx,
            counters: counters.clone(),
            unconfirmed: unconfirmed.clone(),
            flushed: None,
        };
        NotificationPublisher {
            commands,
            confirmed,
            connected,
            counters,
            unconfirmed,
            config,
            last_seq: None,
            task: tokio::spawn(task.run(session)),
        }
    }

    /// Queues `notification` for publishing (waits when `queue_capacity` notifications are
    /// already queued). Notifications must come in increasing `seq` order.
    ///
    /// A notification the wire cannot carry (a routing key over 255 bytes, an unencodable body)
    /// is refused here with its own error and never queued, so it cannot stall the ones after
    /// it; only [`BusError::Closed`] means the publisher itself is gone.
    pub async fn publish(&mut self, notification: &Notification) -> Result<(), BusError> {
        if let Some(last) = self.last_seq
            && notification.seq <= last
        {
            return Err(BusError::OutOfOrder {
                last,
                got: notification.seq,
            });
        }
        let route = wire::notification_route(
            &self.config.exchange,
            &self.config.topic,
            &notification.target,
        );
        wire::check_shortstr("routing key", &route.routing_key)?;
        let body = message::encode_notification(
            notification,
            self.config.stream_id,
            &Context::admin_now(),
        )?;
        let entry = Entry {
            seq: notification.seq,
            route,
            body,
            sent: false,
        };
        self.commands
            .send(Command::Publish(entry))
            .await
            .map_err(|_| BusError::Closed("publisher"))?;
        self.last_seq = Some(notification.seq);
        Ok(())
    }

    /// The highest `seq` such that it and every notification before it are confirmed.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        self.confirmed.clone()
    }

    /// True while the publisher has a connection to the broker.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> PublisherStats {
        self.counters.snapshot()
    }

    /// Notifications queued or published but not yet confirmed.
    pub fn unconfirmed(&self) -> u64 {
        self.unconfirmed.load(Ordering::Relaxed)
    }

    /// Waits until every queued notification is confirmed, then closes the connection.
    pub async fn shutdown(mut self, timeout: Duration) -> Result<(), BusError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Shutdown(tx))
            .await
            .map_err(|_| BusError::Closed("publisher"))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => {
                let _ = (&mut self.task).await;
                Ok(())
            }
            Ok(Err(_)) => Err(BusError::Closed("publisher")),
            Err(_) => Err(BusError::ShutdownTimeout {
                unconfirmed: usize::try_from(self.unconfirmed()).unwrap_or(usize::MAX),
            }),
        }
    }

    /// Test hook: closes the publisher's AMQP connection under it, as a broker restart would.
    #[doc(hidden)]
    pub async fn close_connection_for_test(&self) -> Result<(), BusError> {
        self.commands
            .send(Command::CloseConnection)
            .await
            .map_err(|_| BusError::Closed("publisher"))
    }
}

impl Drop for NotificationPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection with its confirm-mode channel and the exchanges declared.
struct Session {
    connection: Connection,
    channel: Channel,
}

impl Session {
    async fn open(config: &PublisherConfig) -> Result<Self, BusError> {
        let connection = super::connect(&config.url, &config.connection_name).await?;
        let channel = super::open_channel(&connection).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| BusError::amqp("confirm.select", e))?;
        // oslo (re)declares the exchange before its first publish on a channel.
        super::declare_exchange(&channel, &wire::fanout_exchange(&config.topic)).await?;
        super::declare_exchange(&channel, &wire::control_exchange(&config.exchange)).await?;
        Ok(Session {
            connection,
            channel,
        })
    }
}

/// Why a session ended.
enum SessionEnd {
    /// The connection or channel failed: reconnect and resend.
    Lost(String),
    /// Shutdown completed or the handle is gone.
    Done,
}

struct PublisherTask {
    config: PublisherConfig,
    commands: mpsc::Receiver<Command>,
    /// Every unconfirmed notification in `seq` order; a prefix of it is in flight.
    pending: VecDeque<Entry>,
    confirmed: watch::Sender<u64>,
    connected: watch::Sender<bool>,
    counters: Arc<Counters>,
    unconfirmed: Arc<AtomicU64>,
    /// Set by a shutdown request: answered once `pending` is empty.
    flushed: Option<oneshot::Sender<()>>,
}

impl PublisherTask {
    async fn run(mut self, mut session: Option<Session>) {
        let mut delays = Delays::new(self.config.backoff);
        let mut connected_before = false;
        loop {
            let current = match session.take() {
                Some(s) => s,
                None => match self.open_while_accepting().await {
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        let delay = delays.next_delay();
                        warn!(error = %e, ?delay, "publisher cannot connect; retrying");
                        if !self.sleep_while_accepting(delay).await {
                            return;
                        }
                        continue;
                    }
                    None => return,
                },
            };
            if connected_before {
                self.counters.reconnected();
                info!(
                    unconfirmed = self.pending.len(),
                    "publisher reconnected; resending"
                );
            }
            connected_before = true;
            delays.reset();
            self.connected.send_replace(true);
            let end = self.serve(&current).await;
            self.connected.send_replace(false);
            match end {
                SessionEnd::Done => {
                    let _ = current.connection.close(200, "OK".into()).await;
                    return;
                }
                SessionEnd::Lost(why) => {
                    warn!(reason = %why, unconfirmed = self.pending.len(), "publisher lost its connection");
                    drop(current);
                    tokio::time::sleep(delays.next_delay()).await;
                }
            }
        }
    }

    /// Connects while still taking commands. `None` when the handle is gone.
    async fn open_while_accepting(&mut self) -> Option<Result<Session, BusError>> {
        let config = self.config.clone();
        let attempt = Session::open(&config);
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => return Some(result),
                command = self.commands.recv() => match command {
                    Some(command) => {
                        self.accept(command, None).await;
                        if self.flush_done() {
                            return None;
                        }
                    }
                    None => return None,
                },
            }
        }
    }

    /// Answers a pending shutdown once nothing is left unconfirmed.
    fn flush_done(&mut self) -> bool {
        if self.pending.is_empty()
            && let Some(done) = self.flushed.take()
        {
            let _ = done.send(());
            return true;
        }
        false
    }

    /// Sleeps while still taking commands. False when the handle is gone.
    async fn sleep_while_accepting(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = self.commands.recv() => match command {
                    Some(command) => {
                        self.accept(command, None).await;
                        if self.flush_done() {
                            return false;
                        }
                    }
                    None => return false,
                },
            }
        }
    }

    async fn accept(&mut self, command: Command, session: Option<&Session>) {
        match command {
            Command::Publish(entry) => {
                self.pending.push_back(entry);
                self.update_gauge();
            }
            Command::Shutdown(done) => self.flushed = Some(done),
            Command::CloseConnection => {
                if let Some(session) = session {
                    let _ = session
                        .connection
                        .close(320, "CONNECTION_FORCED - test hook".into())
                        .await;
                }
            }
        }
    }

    fn update_gauge(&self) {
        self.unconfirmed
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    /// Publishes and collects confirms until the session fails or the work is done.
    async fn serve(&mut self, session: &Session) -> SessionEnd {
        let mut in_flight = FuturesOrdered::new();
        let mut events = Box::pin(session.connection.events_listener());
        let properties = super::properties();
        loop {
            // Fill the window, in order.
            for entry in self.pending.iter_mut().skip(in_flight.len()) {
                if in_flight.len() >= self.config.max_in_flight.max(1) {
                    break;
                }
                let published = session
                    .channel
                    .basic_publish(
                        entry.route.exchange_name().into(),
                        entry.route.routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        &entry.body,
                        properties.clone(),
                    )
                    .await;
                match published {
                    Ok(confirm) => {
                        self.counters.published(entry.body.len(), entry.sent);
                        entry.sent = true;
                        let seq = entry.seq;
                        in_flight.push_back(async move { (seq, confirm.await) });
                    }
                    Err(e) => return SessionEnd::Lost(format!("basic.publish: {e}")),
                }
            }
            if self.flush_done() {
                return SessionEnd::Done;
            }
            tokio::select! {
                confirm = in_flight.next(), if !in_flight.is_empty() => match confirm {
                    Some((seq, Ok(Confirmation::Ack(_) | Confirmation::NotRequested))) => {
                        let entry = self.pending.pop_front();
                        debug_assert_eq!(entry.as_ref().map(|e| e.seq), Some(seq));
                        self.counters.confirmed();
                        self.update_gauge();
                        self.confirmed.send_modify(|confirmed| *confirmed = (*confirmed).max(seq));
                        debug!(seq, "notification confirmed");
                    }
                    Some((seq, Ok(Confirmation::Nack(_)))) => {
                        return SessionEnd::Lost(BusError::Nacked { seq }.to_string());
                    }
                    Some((_, Err(e))) => return SessionEnd::Lost(format!("publisher confirm: {e}")),
                    None => {}
                },
                command = self.commands.recv() => match command {
                    Some(command) => self.accept(command, Some(session)).await,
                    None => return SessionEnd::Done,
                },
                event = events.next() => match event {
                    Some(Event::Error(e)) => return SessionEnd::Lost(format!("connection: {e}")),
                    Some(_) => {}
                    None => return SessionEnd::Lost("connection events ended".into()),
                },
            }
        }
    }
}

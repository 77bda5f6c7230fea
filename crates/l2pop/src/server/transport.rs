//! The server's end of the bus, made through the bus seam ([`l2pop_bus::connect`]): an ordered
//! notification publisher (whose confirmed seq the owner records as the watermark) and the
//! agents' RPC requests, over whichever backend the configuration names.
//!
//! The owner never waits for the broker: it pushes notifications into the outbox's bounded
//! [`Backlog`], in seq order, and a forwarding task hands them to the publisher, at most a
//! window of them unconfirmed. While the broker is unreachable the backlog keeps the newest
//! `bus.max_backlog` in memory and drops the oldest; when the broker is back the forwarder
//! republishes the dropped ones first, regenerated from the command log ([`LogReplay`]), then
//! the rest, so agents see every notification in order (see [`super::outbox`]).
//!
//! The forwarding task never dies of one message: a notification the wire refuses (a routing
//! key over 255 bytes, say) is logged, counted in `l2pop_bus_publish_errors_total` and
//! skipped. If the publisher itself is gone (or the log cannot be replayed), the task ends with
//! that error, and the watch in [`super::health`] stops the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use l2pop_bus::{BusError, BusSettings, Publisher, RpcRequest, RpcServer};
use l2pop_model::Notification;
use l2pop_store::Store;
use tokio::sync::{Notify, mpsc, watch};

use super::health::{Health, Watched};
use super::outbox::{Backlog, LogReplay};

/// How long [`Bus::start`] waits for the broker before serving without it.
const CONNECT_GRACE: Duration = Duration::from_secs(3);

/// A task aborted with its owner.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// True while both the publisher and the RPC server are connected.
fn both_connected(
    mut publisher: watch::Receiver<bool>,
    mut rpc: watch::Receiver<bool>,
) -> (watch::Receiver<bool>, AbortOnDrop) {
    let (tx, rx) = watch::channel(*publisher.borrow() && *rpc.borrow());
    let task = tokio::spawn(async move {
        loop {
            tx.send_replace(*publisher.borrow_and_update() && *rpc.borrow_and_update());
            tokio::select! {
                changed = publisher.changed() => if changed.is_err() { return },
                changed = rpc.changed() => if changed.is_err() { return },
            }
        }
    });
    (rx, AbortOnDrop(task))
}

/// The server's bus connection.
#[derive(Debug)]
pub struct Bus {
    outbox: Arc<Outbox>,
    confirmed: watch::Receiver<u64>,
    requests: Mutex<Option<mpsc::Receiver<RpcRequest>>>,
    forwarder: Watched,
    /// Kept alive while the server runs (dropping it stops serving).
    _rpc: RpcServer,
    /// Combines the publisher's and the RPC server's connection states for `/healthz`.
    _connected: AbortOnDrop,
    /// The in-memory bus, for in-process agents (tests, the demo).
    pub memory: Option<l2pop_bus::memory::MemoryBus>,
}

impl Bus {
    /// Starts the publisher and the RPC server; neither waits for the broker (both connect and
    /// reconnect in the background, `health` shows the publisher's connection). `stream_id`
    /// prefixes every `_unique_id`; `confirmed_seq` is the watermark the next notification
    /// continues from; `backlog` may already hold notifications to republish; `store` is the
    /// log the dropped ones are regenerated from. Fails only on settings the seam refuses.
    pub async fn start(
        settings: &BusSettings,
        server_name: &str,
        stream_id: u64,
        confirmed_seq: u64,
        backlog: Backlog,
        store: Store,
        health: &Health,
    ) -> Result<Bus, BusError> {
        let bus = l2pop_bus::connect(settings).await?;
        let outbox = Arc::new(Outbox {
            backlog: Mutex::new(backlog),
            wake: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let (requests_tx, requests) = mpsc::channel::<RpcRequest>(1024);
        let publisher = bus.publisher(stream_id, confirmed_seq);
        let confirmed = publisher.confirmed();
        let rpc = bus.rpc_server(server_name, requests_tx);
        let (connected, watcher) = both_connected(publisher.connected(), rpc.connected());
        health.set_bus(Some(connected.clone()));
        // A reachable broker is normally there within milliseconds: waiting for it a moment
        // keeps "active" meaning "agents' calls are consumed". An unreachable one is not
        // waited for (the API serves; /healthz says "bus": "down").
        let mut up = connected;
        if tokio::time::timeout(CONNECT_GRACE, up.wait_for(|up| *up))
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?CONNECT_GRACE,
                "bus: the broker is unreachable; serving anyway, publishing when it returns"
            );
        }
        Ok(Bus {
            _connected: watcher,
            outbox: outbox.clone(),
            confirmed,
            requests: Mutex::new(Some(requests)),
            forwarder: health.spawn_watched("bus publisher", forward(outbox, publisher, store)),
            _rpc: rpc,
            memory: bus.memory().cloned(),
        })
    }

    /// Queues one notification (in seq order; never blocks the owner).
    pub fn publish(&self, notification: Notification) {
        self.outbox.with(|backlog| backlog.push(notification));
        self.outbox.wake.notify_one();
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
        self.outbox
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.outbox.wake.notify_one();
        let forwarder = self.forwarder.abort_handle();
        if tokio::time::timeout(timeout, self.forwarder.join())
            .await
            .is_err()
        {
            forwarder.abort();
            tracing::warn!(
                "bus: unconfirmed notifications at shutdown; the next start republishes them"
            );
        }
    }
}

/// The backlog shared by the owner (push) and the forwarder (everything else).
#[derive(Debug)]
struct Outbox {
    backlog: Mutex<Backlog>,
    /// Woken by a push and by closing.
    wake: Notify,
    /// No more pushes: the forwarder drains and flushes.
    closed: std::sync::atomic::AtomicBool,
}

impl Outbox {
    fn with<T>(&self, f: impl FnOnce(&mut Backlog) -> T) -> T {
        // A panic while holding the lock cannot leave the backlog half-updated in a way that
        // matters more than losing the server: keep going with what is there.
        let mut backlog = match self.backlog.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut backlog)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What the forwarder does next.
enum Step {
    Publish(Notification),
    Republish(std::ops::RangeInclusive<u64>),
    /// The window is full, or nothing is queued: wait for a confirm or a push.
    Wait,
    Done,
}

/// Hands the outbox's notifications to the publisher in seq order, regenerating dropped ranges
/// from the log, until the outbox closes and is drained; then flushes. `Err` when the
/// publisher itself is gone or the log cannot be replayed.
async fn forward(
    outbox: Arc<Outbox>,
    mut publisher: Publisher,
    store: Store,
) -> anyhow::Result<()> {
    let mut confirmed = publisher.confirmed();
    // Kept between consecutive dropped ranges (each continues the last), freed once caught up.
    let mut replay: Option<LogReplay> = None;
    loop {
        let step = outbox.with(|backlog| {
            backlog.confirmed(*confirmed.borrow_and_update());
            if !backlog.has_room() {
                Step::Wait
            } else if let Some(range) = backlog.take_dropped() {
                Step::Republish(range)
            } else if let Some(notification) = backlog.pop() {
                Step::Publish(notification)
            } else if outbox.is_closed() {
                Step::Done
            } else {
                Step::Wait
            }
        });
        record_gauges(&outbox, &publisher);
        match step {
            Step::Publish(notification) => {
                replay = None;
                hand_over(&outbox, &mut publisher, &notification).await?;
            }
            Step::Republish(range) => {
                let from_log = match replay.as_mut() {
                    Some(replay) => replay,
                    None => replay.insert(LogReplay::open(&store).await?),
                };
                tracing::info!(
                    from = range.start(),
                    to = range.end(),
                    "bus: republishing notifications dropped from memory, from the command log"
                );
                while let Some(notification) = from_log.next_in(&range).await? {
                    wait_for_room(&outbox, &mut confirmed).await;
                    hand_over(&outbox, &mut publisher, &notification).await?;
                    metrics::counter!("l2pop_bus_republished_from_log_total").increment(1);
                    record_gauges(&outbox, &publisher);
                }
            }
            Step::Wait => {
                tokio::select! {
                    () = outbox.wake.notified() => {}
                    changed = confirmed.changed() => {
                        if changed.is_err() {
                            anyhow::bail!(BusError::Closed("publisher"));
                        }
                    }
                }
            }
            Step::Done => break,
        }
    }
    if let Err(error) = publisher.shutdown(Duration::from_secs(5)).await {
        tracing::warn!(%error, "bus: publisher shutdown");
    }
    Ok(())
}

/// Waits until the publisher may take one more (confirms free the window).
async fn wait_for_room(outbox: &Outbox, confirmed: &mut watch::Receiver<u64>) {
    loop {
        let seq = *confirmed.borrow_and_update();
        if outbox.with(|backlog| {
            backlog.confirmed(seq);
            backlog.has_room()
        }) {
            return;
        }
        if confirmed.changed().await.is_err() {
            // The publisher is gone: the next hand-over reports it.
            return;
        }
    }
}

/// Publishes one notification and records it as handed over. A per-message refusal is logged
/// and counted; only a publisher that is gone is an error.
async fn hand_over(
    outbox: &Outbox,
    publisher: &mut Publisher,
    notification: &Notification,
) -> anyhow::Result<()> {
    match publisher.publish(notification).await {
        Ok(()) => outbox.with(|backlog| backlog.handed(notification.seq)),
        Err(error) if error.is_per_message() => {
            tracing::error!(
                %error,
                seq = notification.seq,
                target = ?notification.target,
                "bus: notification refused by the transport; dropped"
            );
            metrics::counter!("l2pop_bus_publish_errors_total").increment(1);
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

fn record_gauges(outbox: &Outbox, publisher: &Publisher) {
    let (held, dropped) = outbox.with(|backlog| (backlog.held(), backlog.dropped_total()));
    metrics::gauge!("l2pop_bus_backlog").set(held as f64);
    metrics::counter!("l2pop_bus_backlog_dropped_total").absolute(dropped);
    metrics::gauge!("l2pop_bus_unconfirmed").set(publisher.unconfirmed() as f64);
    let stats = publisher.stats();
    metrics::counter!("l2pop_bus_bytes_published_total").absolute(stats.published_bytes);
    metrics::counter!("l2pop_bus_messages_published_total").absolute(stats.published_messages);
}

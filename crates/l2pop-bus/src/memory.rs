//! An in-memory bus with the roles of the RabbitMQ one, for tests and the single-process demo:
//! a notification publisher with the confirmed-`seq` watch, per-host consumers receiving the
//! fanouts and their host's casts, and RPC servers and clients.
//!
//! Every message is encoded to the exact oslo bytes and decoded on the other side, so the
//! memory bus exercises the same codec as the wire. Routing mirrors the broker: a fanout
//! reaches every consumer alive when it is published; a host cast reaches that host's
//! consumers (none: dropped, as with no bound queue); an RPC call goes to the named server or
//! to one server of the topic. Delivery is immediate, so a publish is confirmed at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use l2pop_model::{Host, Notification, Target};

use crate::context::Context;
use crate::error::{BusError, RpcError};
use crate::message::{self, Received};
use crate::oslo::{self, CallInfo, Request};
use crate::rpc::{self as shared, Counters, DuplicateFilter, PublisherStats, RpcRequest};
use crate::wire;

/// One body on its way to a consumer.
type Delivery = (Target, Arc<[u8]>);
/// One RPC request body, with where to send the reply body for calls.
type RpcDelivery = (Vec<u8>, Option<oneshot::Sender<Vec<u8>>>);

#[derive(Debug, Default)]
struct State {
    consumers: Vec<(Host, mpsc::UnboundedSender<Delivery>)>,
    servers: Vec<(String, mpsc::UnboundedSender<RpcDelivery>)>,
    /// Round-robin position for topic calls.
    next_server: usize,
}

/// The bus: a cheap handle, clone it to share.
#[derive(Clone, Debug, Default)]
pub struct MemoryBus {
    state: Arc<Mutex<State>>,
}

impl MemoryBus {
    /// An empty bus: no consumer, no RPC server.
    pub fn new() -> Self {
        MemoryBus::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds only senders: a panic while it was locked left nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A publisher whose `_unique_id`s start with `stream_id`, on Neutron's l2pop topic.
    pub fn publisher(&self, stream_id: u64) -> MemoryPublisher {
        self.publisher_on(wire::DEFAULT_TOPIC, stream_id, 0)
    }

    /// A publisher on `topic` (whose length bounds the host casts it can route, as on the
    /// broker), continuing after `confirmed_seq`.
    pub fn publisher_on(&self, topic: &str, stream_id: u64, confirmed_seq: u64) -> MemoryPublisher {
        let (confirmed_tx, confirmed) = watch::channel(confirmed_seq);
        MemoryPublisher {
            bus: self.clone(),
            topic: topic.to_owned(),
            stream_id,
            confirmed_tx,
            confirmed,
            counters: Counters::new(),
            last_seq: None,
        }
    }

    /// A consumer for agent `host`: every fanout, and the host casts to `host`.
    pub fn consumer(&self, host: Host) -> MemoryConsumer {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state().consumers.push((host.clone(), tx));
        MemoryConsumer {
            host,
            deliveries: rx,
            duplicates: DuplicateFilter::default(),
            rejected: AtomicU64::new(0),
        }
    }

    /// Registers RPC server `server`; its requests go to `requests`. Dropping the returned
    /// handle unregisters it.
    pub fn rpc_server(&self, server: &str, requests: mpsc::Sender<RpcRequest>) -> MemoryRpcServer {
        let (tx, mut rx) = mpsc::unbounded_channel::<RpcDelivery>();
        self.state().servers.push((server.to_owned(), tx));
        let task = tokio::spawn(async move {
            let mut duplicates = DuplicateFilter::default();
            while let Some((body, reply_to)) = rx.recv().await {
                let request = match oslo::decode_request(&body) {
                    Ok(request) => request,
                    Err(e) => {
                        warn!(error = %e, "memory RPC server: undecodable request");
                        continue;
                    }
                };
                if duplicates.is_duplicate(request.unique_id.as_deref()) {
                    continue;
                }
                let (rpc, pending) = shared::dispatch(request);
                if requests.send(rpc).await.is_err() {
                    return;
                }
                if let (Some((call, answer)), Some(reply_to)) = (pending, reply_to) {
                    tokio::spawn(async move {
                        let answer = answer.await.ok();
                        match shared::reply_body(&call.msg_id, answer) {
                            Ok(body) => {
                                let _ = reply_to.send(body);
                            }
                            Err(e) => warn!(error = %e, "memory RPC server: cannot encode reply"),
                        }
                    });
                }
            }
        });
        MemoryRpcServer { task }
    }

    /// An RPC client of this bus's servers (version 1.0).
    pub fn rpc_client(&self) -> MemoryRpcClient {
        self.rpc_client_with(Some("1.0".to_owned()))
    }

    /// An RPC client whose requests carry this version.
    pub fn rpc_client_with(&self, version: Option<String>) -> MemoryRpcClient {
        MemoryRpcClient {
            bus: self.clone(),
            version,
        }
    }

    fn route(&self, target: &Target, body: Arc<[u8]>) {
        let mut state = self.state();
        state.consumers.retain(|(host, tx)| {
            let wanted = match target {
                Target::Fanout => true,
                Target::Host(h) => h == host,
            };
            !wanted || tx.send((target.clone(), body.clone())).is_ok()
        });
    }

    fn server_for(&self, server: Option<&str>) -> Option<mpsc::UnboundedSender<RpcDelivery>> {
        let mut state = self.state();
        state.servers.retain(|(_, tx)| !tx.is_closed());
        match server {
            Some(name) => state
                .servers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, tx)| tx.clone()),
            None if state.servers.is_empty() => None,
            None => {
                let index = state.next_server % state.servers.len();
                state.next_server = state.next_server.wrapping_add(1);
                Some(state.servers[index].1.clone())
            }
        }
    }
}

/// Publishes notifications to the memory bus's consumers, confirming each at once.
#[derive(Debug)]
pub struct MemoryPublisher {
    bus: MemoryBus,
    topic: String,
    stream_id: u64,
    confirmed_tx: watch::Sender<u64>,
    confirmed: watch::Receiver<u64>,
    counters: Arc<Counters>,
    last_seq: Option<u64>,
}

impl MemoryPublisher {
    /// Encodes and delivers `notification`. Notifications must come in increasing `seq` order.
    pub async fn publish(&mut self, notification: &Notification) -> Result<(), BusError> {
        if let Some(last) = self.last_seq
            && notification.seq <= last
        {
            return Err(BusError::OutOfOrder {
                last,
                got: notification.seq,
            });
        }
        // Refused as the broker's publisher refuses it, so tests see the wire's limits.
        let route =
            wire::notification_route(wire::CONTROL_EXCHANGE, &self.topic, &notification.target);
        wire::check_shortstr("routing key", &route.routing_key)?;
        let body: Arc<[u8]> =
            message::encode_notification(notification, self.stream_id, &Context::admin_now())?
                .into();
        self.counters.published(body.len(), false);
        self.bus.route(&notification.target, body);
        self.counters.confirmed();
        self.last_seq = Some(notification.seq);
        self.confirmed_tx
            .send_modify(|confirmed| *confirmed = (*confirmed).max(notification.seq));
        Ok(())
    }

    /// The highest `seq` such that it and every notification before it are confirmed.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        self.confirmed.clone()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> PublisherStats {
        self.counters.snapshot()
    }
}

/// One agent's view of the memory bus.
#[derive(Debug)]
pub struct MemoryConsumer {
    host: Host,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    duplicates: DuplicateFilter,
    rejected: AtomicU64,
}

impl MemoryConsumer {
    /// The next notification, in publish order. `None` once the bus is dropped.
    pub async fn recv(&mut self) -> Option<Received> {
        loop {
            let (target, body) = self.deliveries.recv().await?;
            match message::decode_notification(&body, target) {
                Ok(received) => {
                    if !self.duplicates.is_duplicate(received.unique_id.as_deref()) {
                        return Some(received);
                    }
                }
                Err(e) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "memory consumer: dropping an invalid notification");
                }
            }
        }
    }

    /// A notification already delivered, without waiting.
    pub fn try_recv(&mut self) -> Option<Received> {
        loop {
            let (target, body) = self.deliveries.try_recv().ok()?;
            if let Ok(received) = message::decode_notification(&body, target)
                && !self.duplicates.is_duplicate(received.unique_id.as_deref())
            {
                return Some(received);
            }
        }
    }

    /// The agent host this consumer receives host casts for.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Messages dropped because they were not valid l2pop casts.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// A registered memory RPC server; dropping it unregisters it.
#[derive(Debug)]
pub struct MemoryRpcServer {
    task: JoinHandle<()>,
}

impl Drop for MemoryRpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls and casts to the memory bus's RPC servers.
#[derive(Clone, Debug)]
pub struct MemoryRpcClient {
    bus: MemoryBus,
    version: Option<String>,
}

impl MemoryRpcClient {
    /// Calls `method(**args)` on `server` (or any server) and waits up to `timeout`.
    pub async fn call(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let call = CallInfo {
            msg_id: wire::uuid_hex(),
            reply_q: "reply_memory".to_owned(),
            timeout: None,
        };
        let (tx, rx) = oneshot::channel();
        self.send(server, method, args, context, Some(&call), Some(tx))?;
        let body = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return Err(BusError::Closed("memory RPC server").into()),
            Err(_) => {
                return Err(RpcError::Timeout {
                    method: method.to_owned(),
                    timeout,
                });
            }
        };
        shared::reply_result(oslo::decode_reply(&body)?)
    }

    /// Casts `method(**args)` to `server` (or any server).
    pub fn cast(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
    ) -> Result<(), RpcError> {
        self.send(server, method, args, context, None, None)
    }

    fn send(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
        call: Option<&CallInfo>,
        reply_to: Option<oneshot::Sender<Vec<u8>>>,
    ) -> Result<(), RpcError> {
        let body = oslo::encode_request(&Request {
            method,
            args,
            namespace: None,
            version: self.version.as_deref(),
            call,
            unique_id: &wire::uuid_hex(),
            context,
        })
        .map_err(BusError::from)?;
        let target = self
            .bus
            .server_for(server)
            .ok_or_else(|| BusError::Unroutable(server.unwrap_or("<any server>").to_owned()))?;
        target
            .send((body, reply_to))
            .map_err(|_| BusError::Closed("memory RPC server"))?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;

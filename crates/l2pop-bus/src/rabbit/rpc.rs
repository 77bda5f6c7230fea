//! oslo.messaging RPC over RabbitMQ: a server that declares what an oslo RPC server declares
//! for `Target(topic, server)` and hands [`RpcRequest`]s to its owner, and a client with an
//! oslo-style reply queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::Backoff;
use super::listener::{self, Handler, ListenerConfig, Outgoing};
use crate::context::Context;
use crate::error::{BusError, RpcError};
use crate::oslo::{self, CallInfo, Reply, Request};
use crate::rpc::{self as shared, DuplicateFilter, RpcRequest};
use crate::wire;

/// Settings of an [`RpcServer`].
#[derive(Clone, Debug)]
pub struct RpcServerConfig {
    pub url: String,
    pub exchange: String,
    /// [`wire::DEFAULT_RPC_TOPIC`] unless told otherwise.
    pub topic: String,
    /// The server name: calls to `<topic>.<server>` reach only this server.
    pub server: String,
    pub prefetch: u16,
    pub backoff: Backoff,
    pub connection_name: String,
}

impl RpcServerConfig {
    /// Serves [`wire::DEFAULT_RPC_TOPIC`] on the control exchange `neutron`.
    pub fn new(url: impl Into<String>, server: impl Into<String>) -> Self {
        RpcServerConfig {
            url: url.into(),
            exchange: wire::CONTROL_EXCHANGE.to_owned(),
            topic: wire::DEFAULT_RPC_TOPIC.to_owned(),
            server: server.into(),
            prefetch: 64,
            backoff: Backoff::default(),
            connection_name: super::default_connection_name("rpc-server"),
        }
    }
}

/// An oslo.messaging RPC server. Requests go to the `requests` sender given to
/// [`RpcServer::start`]; dropping the server stops it.
#[derive(Debug)]
pub struct RpcServer {
    queues: Vec<String>,
    connected: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl RpcServer {
    /// Declares the topic, `topic.server` and fanout queues and starts serving; fails when the
    /// broker is unreachable.
    pub async fn start(
        config: RpcServerConfig,
        requests: mpsc::Sender<RpcRequest>,
    ) -> Result<Self, BusError> {
        let (queues, listener, handler, outgoing) = Self::prepare(config, requests);
        let (connected_tx, connected) = watch::channel(false);
        let task = listener::start(listener, handler, outgoing, connected_tx).await?;
        Ok(RpcServer {
            queues,
            connected,
            task,
        })
    }

    /// Starts serving without waiting for the broker: the queues are declared once it is
    /// reachable, and again after every reconnect (calls made meanwhile wait in the topic
    /// queues if they existed, else the callers time out and retry).
    pub fn spawn(config: RpcServerConfig, requests: mpsc::Sender<RpcRequest>) -> Self {
        let (queues, listener, handler, outgoing) = Self::prepare(config, requests);
        let (connected_tx, connected) = watch::channel(false);
        let task = listener::spawn(listener, handler, outgoing, connected_tx);
        RpcServer {
            queues,
            connected,
            task,
        }
    }

    /// True while the server is connected and consuming.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    fn prepare(
        config: RpcServerConfig,
        requests: mpsc::Sender<RpcRequest>,
    ) -> (
        Vec<String>,
        ListenerConfig,
        RequestHandler,
        mpsc::UnboundedReceiver<Outgoing>,
    ) {
        let queues = wire::server_queues(
            &config.exchange,
            &config.topic,
            &config.server,
            &wire::uuid_hex(),
        )
        .to_vec();
        let names = queues.iter().map(|q| q.name.clone()).collect();
        let (replies, outgoing) = mpsc::unbounded_channel();
        let handler = RequestHandler {
            requests,
            replies,
            duplicates: DuplicateFilter::default(),
        };
        let listener = ListenerConfig {
            url: config.url,
            connection_name: config.connection_name,
            queues,
            prefetch: config.prefetch,
            backoff: config.backoff,
        };
        (names, listener, handler, outgoing)
    }

    /// The declared queue names: topic, `topic.server`, `topic_fanout_<uuid>`.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct RequestHandler {
    requests: mpsc::Sender<RpcRequest>,
    replies: mpsc::UnboundedSender<Outgoing>,
    duplicates: DuplicateFilter,
}

impl Handler for RequestHandler {
    async fn handle(&mut self, _queue: usize, delivery: &Delivery) -> bool {
        let request = match oslo::decode_request(&delivery.data) {
            Ok(request) => request,
            Err(e) => {
                warn!(error = %e, routing_key = %delivery.routing_key, "dropping an undecodable RPC request");
                return true;
            }
        };
        if self.duplicates.is_duplicate(request.unique_id.as_deref()) {
            debug!(unique_id = ?request.unique_id, "dropping redelivered RPC request");
            return true;
        }
        let (rpc, pending) = shared::dispatch(request);
        if self.requests.send(rpc).await.is_err() {
            return false;
        }
        if let Some((call, answer)) = pending {
            let replies = self.replies.clone();
            tokio::spawn(async move {
                let answer = answer.await.ok();
                // `_reply_q` comes from the caller: one the wire cannot carry gets no reply.
                if let Err(e) = wire::check_shortstr("reply queue", &call.reply_q) {
                    warn!(error = %e, msg_id = %call.msg_id, "cannot reply");
                    return;
                }
                match shared::reply_body(&call.msg_id, answer) {
                    Ok(body) => {
                        let _ = replies.send(Outgoing {
                            route: wire::reply_route(&call.reply_q),
                            body,
                            mandatory: true,
                        });
                    }
                    Err(e) => warn!(error = %e, msg_id = %call.msg_id, "cannot encode RPC reply"),
                }
            });
        }
        true
    }
}

/// Settings of an [`RpcClient`].
#[derive(Clone, Debug)]
pub struct RpcClientConfig {
    pub url: String,
    pub exchange: String,
    pub topic: String,
    /// The target version sent with each request (`None` omits it).
    pub version: Option<String>,
    pub connection_name: String,
}

impl RpcClientConfig {
    /// Calls `topic` on the control exchange `neutron` with target version 1.0.
    pub fn new(url: impl Into<String>, topic: impl Into<String>) -> Self {
        RpcClientConfig {
            url: url.into(),
            exchange: wire::CONTROL_EXCHANGE.to_owned(),
            topic: topic.into(),
            version: Some("1.0".to_owned()),
            connection_name: super::default_connection_name("rpc-client"),
        }
    }
}

type Waiters = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Reply>>>>;

/// An oslo.messaging RPC client: calls (with a timeout) and casts to a topic, replies on one
/// `reply_<uuid hex>` queue matched by `_msg_id`. It does not reconnect: after a connection
/// loss calls fail with [`RpcError::Bus`] and the caller makes a new client.
#[derive(Debug)]
pub struct RpcClient {
    config: RpcClientConfig,
    connection: Connection,
    channel: Channel,
    reply_q: String,
    waiters: Waiters,
    task: JoinHandle<()>,
}

impl RpcClient {
    /// Connects, declares the control exchange and the reply queue, and starts consuming
    /// replies.
    pub async fn connect(config: RpcClientConfig) -> Result<Self, BusError> {
        let connection = super::connect(&config.url, &config.connection_name).await?;
        let channel = super::open_channel(&connection).await?;
        // Confirm mode: a call nobody's queue takes comes back at once (mandatory), instead of
        // being dropped by the broker and waited for until the call's timeout.
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| BusError::amqp("confirm.select", e))?;
        super::declare_exchange(&channel, &wire::control_exchange(&config.exchange)).await?;
        let reply_q = format!("reply_{}", wire::uuid_hex());
        let replies = super::open_channel(&connection).await?;
        super::declare_queue(&replies, &wire::reply_queue(&reply_q)).await?;
        let mut consumer = replies
            .basic_consume(
                reply_q.as_str().into(),
                format!("l2pop-{}", wire::uuid_hex()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::amqp(format!("basic.consume {reply_q}"), e))?;
        let waiters: Waiters = Arc::default();
        let route_to = waiters.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                let reply = match oslo::decode_reply(&delivery.data) {
                    Ok(reply) => reply,
                    Err(e) => {
                        warn!(error = %e, "dropping an undecodable RPC reply");
                        continue;
                    }
                };
                let waiter = route_to
                    .lock()
                    .ok()
                    .and_then(|w| w.get(&reply.msg_id).cloned());
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(reply);
                    }
                    None => debug!(msg_id = %reply.msg_id, "reply for a call no longer waiting"),
                }
            }
        });
        Ok(RpcClient {
            config,
            connection,
            channel,
            reply_q,
            waiters,
            task,
        })
    }

    /// False once the connection is lost: calls fail from then on (see
    /// [`crate::connect::RpcClient`], which reconnects).
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected() && !self.task.is_finished()
    }

    /// The reply queue name (`reply_<uuid hex>`).
    pub fn reply_queue(&self) -> &str {
        &self.reply_q
    }

    /// Calls `method(**args)` on the topic (or on `server` only) and waits up to `timeout`
    /// for the reply.
    pub async fn call(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let msg_id = wire::uuid_hex();
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.insert(msg_id.clone(), tx);
        }
        let call = CallInfo {
            msg_id: msg_id.clone(),
            reply_q: self.reply_q.clone(),
            timeout: None,
        };
        let outcome = async {
            self.send(server, method, args, context, Some(&call))
                .await?;
            // Older oslo servers send the result, then an empty `ending` message.
            let mut result = Value::Null;
            loop {
                let Some(reply) = rx.recv().await else {
                    return Err(RpcError::Bus(BusError::Closed("RPC reply consumer")));
                };
                let ending = reply.ending;
                let value = shared::reply_result(reply)?;
                if !value.is_null() {
                    result = value;
                }
                if ending {
                    return Ok(result);
                }
            }
        };
        let outcome = tokio::time::timeout(timeout, outcome).await;
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.remove(&msg_id);
        }
        outcome.unwrap_or_else(|_| {
            Err(RpcError::Timeout {
                method: method.to_owned(),
                timeout,
            })
        })
    }

    /// Casts `method(**args)` to the topic (or to `server` only); no reply.
    pub async fn cast(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
    ) -> Result<(), RpcError> {
        self.send(server, method, args, context, None).await
    }

    async fn send(
        &self,
        server: Option<&str>,
        method: &str,
        args: &Map<String, Value>,
        context: &Context,
        call: Option<&CallInfo>,
    ) -> Result<(), RpcError> {
        let body = oslo::encode_request(&Request {
            method,
            args,
            namespace: None,
            version: self.config.version.as_deref(),
            call,
            unique_id: &wire::uuid_hex(),
            context,
        })
        .map_err(BusError::from)?;
        let route = wire::rpc_route(&self.config.exchange, &self.config.topic, server);
        wire::check_shortstr("routing key", &route.routing_key)?;
        let confirm = self
            .channel
            .basic_publish(
                route.exchange_name().into(),
                route.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: call.is_some(),
                    ..BasicPublishOptions::default()
                },
                &body,
                super::properties(),
            )
            .await
            .map_err(|e| BusError::amqp("basic.publish", e))?
            .await
            .map_err(|e| BusError::amqp("basic.publish confirm", e))?;
        match confirm {
            // Returned: no queue is bound for the topic (no server has declared it yet).
            Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) if call.is_some() => {
                Err(RpcError::NoServer {
                    topic: route.routing_key.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Test hook: closes the connection under the client, as a broker restart would.
    #[doc(hidden)]
    pub async fn close_connection_for_test(&self) {
        let _ = self
            .connection
            .close(320, "CONNECTION_FORCED - test hook".into())
            .await;
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

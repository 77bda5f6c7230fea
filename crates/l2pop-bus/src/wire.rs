//! Where l2pop's messages go on RabbitMQ, as plain values: exchanges, queues, bindings and
//! message properties exactly as oslo.messaging 18.3.1's `impl_rabbit` declares them with its
//! default options (reference `neutron-l2pop.md` §3, `environment.md` §3). A declaration that
//! differs in any flag makes RabbitMQ answer `PRECONDITION_FAILED` when a real Neutron agent or
//! server declared the object first, so these values are the contract; `rabbit` only executes
//! them.
//!
//! | object | declared as |
//! |---|---|
//! | control exchange `neutron` | topic, durable=false, auto_delete=false |
//! | `<topic>_fanout` exchange | fanout, durable=false, auto_delete=true |
//! | topic queues `<topic>`, `<topic>.<host>` | durable=false, auto_delete=false, no arguments, bound to `neutron` with their own name |
//! | fanout queue `<topic>_fanout_<uuid4 hex>` | durable=false, auto_delete=false, `x-expires` 1800000, bound to `<topic>_fanout` with key `<topic>` |
//! | reply queue `reply_<uuid4 hex>` | durable=false, auto_delete=false, `x-expires` 1800000, default exchange (no binding) |

use l2pop_model::{Host, Target};

use crate::error::BusError;

/// Neutron's notifier topic for l2pop (`topics.AGENT` + `-l2population-update`).
pub const DEFAULT_TOPIC: &str = "q-agent-notifier-l2population-update";
/// Neutron's `control_exchange`.
pub const CONTROL_EXCHANGE: &str = "neutron";
/// The topic l2pop's own server listens on for agent RPCs.
pub const DEFAULT_RPC_TOPIC: &str = "l2pop-plugin";
/// `rabbit_transient_queues_ttl` (1800 s) as the `x-expires` of fanout and reply queues.
pub const TRANSIENT_QUEUE_EXPIRES_MS: i32 = 1_800_000;

/// AMQP 0-9-1 carries exchange names, queue names and routing keys as a `shortstr`: a length
/// byte, so at most 255 bytes. lapin cannot encode a longer one (a debug assertion in its I/O
/// thread, a truncated length byte and a broken frame in release), so every name is checked
/// with [`check_shortstr`] before it is handed to lapin.
pub const MAX_SHORTSTR: usize = 255;

/// The longest notifier or RPC topic: `<topic>.<host>` must fit a [`MAX_SHORTSTR`] for every
/// valid host ([`Host::MAX_LEN`] bytes). Neutron's own topic is exactly this long.
pub const MAX_TOPIC_LEN: usize = MAX_SHORTSTR - 1 - Host::MAX_LEN;

const _: () = assert!(DEFAULT_TOPIC.len() == MAX_TOPIC_LEN);

/// Refuses a name the wire cannot carry (see [`MAX_SHORTSTR`]).
pub fn check_shortstr(what: &'static str, value: &str) -> Result<(), BusError> {
    if value.len() > MAX_SHORTSTR {
        return Err(BusError::TooLong {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Refuses a topic that would leave some valid host unreachable (see [`MAX_TOPIC_LEN`]).
pub fn check_topic(topic: &str) -> Result<(), BusError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(BusError::TopicTooLong {
            topic: topic.to_owned(),
            max: MAX_TOPIC_LEN,
        });
    }
    Ok(())
}

/// AMQP message properties of every oslo message (kombu `Producer.publish` with a dict body).
pub const CONTENT_TYPE: &str = "application/json";
pub const CONTENT_ENCODING: &str = "utf-8";
/// Persistent (kombu's default when the exchange sets none).
pub const DELIVERY_MODE: u8 = 2;
pub const PRIORITY: u8 = 0;

/// AMQP exchange types used by oslo.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExchangeKind {
    Topic,
    Fanout,
}

/// An exchange declaration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Exchange {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
}

/// A queue declaration and its binding (none for queues on the default exchange).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Queue {
    pub name: String,
    pub durable: bool,
    pub auto_delete: bool,
    /// `x-expires` in milliseconds.
    pub expires_ms: Option<i32>,
    pub binding: Option<Binding>,
}

/// A queue binding: the exchange (declared before the queue) and the routing key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Binding {
    pub exchange: Exchange,
    pub routing_key: String,
}

/// Where one message is published. `exchange` is `None` for the default exchange, which is
/// never declared.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Route {
    pub exchange: Option<Exchange>,
    pub routing_key: String,
}

impl Route {
    /// The exchange name to publish to (`""` for the default exchange).
    pub fn exchange_name(&self) -> &str {
        self.exchange.as_ref().map_or("", |e| e.name.as_str())
    }
}

/// The control exchange (`topic_send`, `declare_topic_consumer`).
pub fn control_exchange(name: &str) -> Exchange {
    Exchange {
        name: name.to_owned(),
        kind: ExchangeKind::Topic,
        durable: false,
        auto_delete: false,
    }
}

/// `<topic>_fanout` (`fanout_send`, `declare_fanout_consumer`).
pub fn fanout_exchange(topic: &str) -> Exchange {
    Exchange {
        name: format!("{topic}_fanout"),
        kind: ExchangeKind::Fanout,
        durable: false,
        auto_delete: true,
    }
}

/// `<topic>.<server>`: the routing key (and queue name) of casts and calls to one server.
pub fn server_topic(topic: &str, server: &str) -> String {
    format!("{topic}.{server}")
}

/// Where a notification goes: a fanout cast to `<topic>_fanout` with routing key `""`, or a
/// host cast to the control exchange with routing key `<topic>.<host>`.
pub fn notification_route(exchange: &str, topic: &str, target: &Target) -> Route {
    match target {
        Target::Fanout => Route {
            exchange: Some(fanout_exchange(topic)),
            routing_key: String::new(),
        },
        Target::Host(host) => Route {
            exchange: Some(control_exchange(exchange)),
            routing_key: server_topic(topic, host.as_str()),
        },
    }
}

/// Where an RPC request goes: the topic, or `<topic>.<server>` when a server is named.
pub fn rpc_route(exchange: &str, topic: &str, server: Option<&str>) -> Route {
    Route {
        exchange: Some(control_exchange(exchange)),
        routing_key: match server {
            Some(server) => server_topic(topic, server),
            None => topic.to_owned(),
        },
    }
}

/// Where a reply goes: the default exchange, routing key = the caller's reply queue.
pub fn reply_route(reply_q: &str) -> Route {
    Route {
        exchange: None,
        routing_key: reply_q.to_owned(),
    }
}

/// The three queues an oslo RPC server (`AMQPDriverBase.listen`) declares for `Target(topic,
/// server)`: the shared topic queue, the server's queue, and a fanout queue named with
/// `fanout_suffix` (uuid4 hex). Neutron agents declare exactly these for the l2pop topic with
/// `server = [DEFAULT] host`.
pub fn server_queues(exchange: &str, topic: &str, server: &str, fanout_suffix: &str) -> [Queue; 3] {
    let topic_queue = |name: String| Queue {
        binding: Some(Binding {
            exchange: control_exchange(exchange),
            routing_key: name.clone(),
        }),
        name,
        durable: false,
        auto_delete: false,
        expires_ms: None,
    };
    [
        topic_queue(topic.to_owned()),
        topic_queue(server_topic(topic, server)),
        Queue {
            name: format!("{topic}_fanout_{fanout_suffix}"),
            durable: false,
            auto_delete: false,
            expires_ms: Some(TRANSIENT_QUEUE_EXPIRES_MS),
            binding: Some(Binding {
                exchange: fanout_exchange(topic),
                routing_key: topic.to_owned(),
            }),
        },
    ]
}

/// The queues an l2pop agent consumes for `host` (see [`server_queues`]).
pub fn agent_queues(exchange: &str, topic: &str, host: &Host, fanout_suffix: &str) -> [Queue; 3] {
    server_queues(exchange, topic, host.as_str(), fanout_suffix)
}

/// An RPC client's reply queue (`declare_direct_consumer`): `reply_<uuid4 hex>`.
pub fn reply_queue(name: &str) -> Queue {
    Queue {
        name: name.to_owned(),
        durable: false,
        auto_delete: false,
        expires_ms: Some(TRANSIENT_QUEUE_EXPIRES_MS),
        binding: None,
    }
}

/// A fresh uuid4 in hex, as oslo names fanout and reply queues and ids.
pub fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_neutron() {
        let fanout = notification_route(CONTROL_EXCHANGE, DEFAULT_TOPIC, &Target::Fanout);
        assert_eq!(
            fanout.exchange_name(),
            "q-agent-notifier-l2population-update_fanout"
        );
        assert_eq!(fanout.routing_key, "");
        let host = Host::new("compute-2").expect("valid host");
        let cast = notification_route(CONTROL_EXCHANGE, DEFAULT_TOPIC, &Target::Host(host));
        assert_eq!(cast.exchange_name(), "neutron");
        assert_eq!(
            cast.routing_key,
            "q-agent-notifier-l2population-update.compute-2"
        );
        assert_eq!(reply_route("reply_x").exchange_name(), "");
    }

    #[test]
    fn the_longest_host_fits_the_default_topic() {
        let host = Host::new(&"h".repeat(Host::MAX_LEN)).expect("valid host");
        let cast = notification_route(CONTROL_EXCHANGE, DEFAULT_TOPIC, &Target::Host(host));
        assert_eq!(cast.routing_key.len(), MAX_SHORTSTR);
        assert!(check_shortstr("routing key", &cast.routing_key).is_ok());
        assert!(check_shortstr("routing key", &format!("{}x", cast.routing_key)).is_err());
        assert!(check_topic(DEFAULT_TOPIC).is_ok());
        let error = check_topic(&format!("{DEFAULT_TOPIC}x")).expect_err("too long");
        assert!(error.to_string().contains("at most 36"), "{error}");
    }

    #[test]
    fn agent_declares_three_queues() {
        let host = Host::new("h1").expect("valid host");
        let [topic, server, fanout] = agent_queues("neutron", "t", &host, "abc");
        assert_eq!(topic.name, "t");
        assert_eq!(
            topic.binding.as_ref().map(|b| b.routing_key.as_str()),
            Some("t")
        );
        assert_eq!(server.name, "t.h1");
        assert_eq!(server.expires_ms, None);
        assert_eq!(fanout.name, "t_fanout_abc");
        assert_eq!(fanout.expires_ms, Some(1_800_000));
        let binding = fanout.binding.expect("bound");
        assert_eq!(binding.exchange, fanout_exchange("t"));
        assert_eq!(binding.routing_key, "t");
        assert!(binding.exchange.auto_delete && !binding.exchange.durable);
    }
}

//! The RabbitMQ transport against a real broker (`L2POP_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Each test uses its own topic, so they run in
//! parallel with each other and with other runs. An unreachable broker fails the tests.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use l2pop_bus::rabbit::{
    ConsumerConfig, NotificationConsumer, NotificationPublisher, PublisherConfig, RpcClient,
    RpcClientConfig, RpcServer, RpcServerConfig,
};
use l2pop_bus::{Context, Received, RpcError, RpcFailure, StreamPosition};
use l2pop_model::{Method, Notification, Target};
use serde_json::json;
use tokio::sync::mpsc;

use common::*;

async fn publisher(topic: &str, stream_id: u64) -> NotificationPublisher {
    let mut config = PublisherConfig::new(amqp_url(), stream_id);
    config.topic = topic.to_owned();
    config.connection_name = unique("l2pop-test-publisher");
    NotificationPublisher::connect(config)
        .await
        .unwrap_or_else(|e| broker_unreachable(e))
}

async fn consumer(topic: &str, host_name: &str) -> NotificationConsumer {
    let mut config = ConsumerConfig::new(amqp_url(), host(host_name));
    config.topic = topic.to_owned();
    NotificationConsumer::connect(config)
        .await
        .unwrap_or_else(|e| broker_unreachable(e))
}

async fn recv(consumer: &mut NotificationConsumer) -> Received {
    tokio::time::timeout(RECV_TIMEOUT, consumer.recv())
        .await
        .expect("no notification within the timeout")
        .expect("consumer stopped")
}

async fn wait_confirmed(publisher: &NotificationPublisher, seq: u64) {
    let mut confirmed = publisher.confirmed();
    tokio::time::timeout(RECV_TIMEOUT, confirmed.wait_for(|c| *c >= seq))
        .await
        .expect("not confirmed within the timeout")
        .unwrap();
}

fn assert_matches(received: &Received, sent: &Notification) {
    assert_eq!(received.method, sent.method, "seq {}", sent.seq);
    assert_eq!(received.target, sent.target, "seq {}", sent.seq);
    assert_eq!(received.fdb_entries, sent.fdb_entries, "seq {}", sent.seq);
    assert_eq!(
        received.stream,
        Some(StreamPosition {
            seq: sent.seq,
            fanout_seq: sent.fanout_seq,
            host_seq: sent.host_seq,
            source: sent.source.clone(),
        })
    );
    assert_eq!(received.context["is_admin"], json!(true));
}

#[tokio::test]
async fn fanout_and_host_casts_of_every_method_arrive_in_order() {
    let topic = unique("l2pop-test-roundtrip");
    let (h1, h2) = (unique("h1"), unique("h2"));
    let mut c1 = consumer(&topic, &h1).await;
    let mut c2 = consumer(&topic, &h2).await;
    let mut publisher = publisher(&topic, 0xfeed).await;
    let net = network();
    let sent = numbered(vec![
        (Target::Fanout, Method::AddFdbEntries, sample_add(net)),
        (
            Target::Host(host(&h1)),
            Method::AddFdbEntries,
            sample_add(net),
        ),
        (Target::Fanout, Method::RemoveFdbEntries, sample_remove(net)),
        (
            Target::Host(host(&h1)),
            Method::UpdateFdbEntries,
            sample_update(net),
        ),
        (Target::Fanout, Method::UpdateFdbEntries, sample_update(net)),
        (
            Target::Host(host(&h2)),
            Method::RemoveFdbEntries,
            sample_remove(net),
        ),
        (
            Target::Host(host(&h1)),
            Method::RemoveFdbEntries,
            sample_remove(net),
        ),
    ]);
    for n in &sent {
        publisher.publish(n).await.unwrap();
    }
    wait_confirmed(&publisher, sent.len() as u64).await;

    for (consumer, me) in [(&mut c1, &h1), (&mut c2, &h2)] {
        let expected: Vec<&Notification> = sent
            .iter()
            .filter(|n| match &n.target {
                Target::Fanout => true,
                Target::Host(h) => h.as_str() == me,
            })
            .collect();
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            got.push(recv(consumer).await);
        }
        // RabbitMQ orders each queue, not the pair: compare each stream in order.
        for stream in [true, false] {
            let exp: Vec<_> = expected
                .iter()
                .filter(|n| (n.target == Target::Fanout) == stream)
                .collect();
            let rec: Vec<_> = got
                .iter()
                .filter(|r| (r.target == Target::Fanout) == stream)
                .collect();
            assert_eq!(rec.len(), exp.len(), "host {me}");
            for (r, n) in rec.iter().zip(exp) {
                assert_matches(r, n);
                assert_eq!(
                    r.unique_id.as_deref(),
                    Some(format!("{:016x}{:016x}", 0xfeed, n.seq).as_str())
                );
            }
        }
    }
    let stats = publisher.stats();
    assert_eq!(stats.confirmed_messages, 7);
    assert!(stats.published_bytes > 7 * 1000);
    publisher.shutdown(Duration::from_secs(10)).await.unwrap();
    delete_queues(&[c1.queues(), c2.queues()].concat()).await;
}

#[tokio::test]
async fn a_thousand_notifications_arrive_in_order_without_gaps() {
    let topic = unique("l2pop-test-thousand");
    let me = unique("h");
    let mut consumer = consumer(&topic, &me).await;
    let mut publisher = publisher(&topic, 1).await;
    let net = network();
    let sent = numbered(
        (0..1000)
            .map(|i| {
                let target = if i % 3 == 0 {
                    Target::Host(host(&me))
                } else {
                    Target::Fanout
                };
                (target, Method::AddFdbEntries, sample_remove(net))
            })
            .collect(),
    );
    for n in &sent {
        publisher.publish(n).await.unwrap();
    }
    wait_confirmed(&publisher, 1000).await;
    let (mut fanout, mut hosted) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        let r = recv(&mut consumer).await;
        let position = r.stream.unwrap();
        match r.target {
            Target::Fanout => fanout.push(position.fanout_seq),
            Target::Host(_) => hosted.push(position.host_seq.unwrap()),
        }
    }
    assert_eq!(fanout, (1..=666).collect::<Vec<u64>>());
    assert_eq!(hosted, (1..=334).collect::<Vec<u64>>());
    assert_eq!(publisher.stats().confirmed_messages, 1000);
    assert_eq!(publisher.unconfirmed(), 0);
    delete_queues(consumer.queues()).await;
}

/// The publisher loses its connection in the middle of a stream; everything still arrives,
/// in order. Duplicates are allowed: a resend of a notification whose confirm was lost with
/// the connection carries the same `_unique_id`, which is what oslo receivers deduplicate on.
async fn survives_connection_loss(close: impl AsyncFnOnce(&NotificationPublisher, &str)) {
    let topic = unique("l2pop-test-reconnect");
    let me = unique("h");
    let mut consumer = consumer(&topic, &me).await;
    let name = unique("l2pop-test-publisher");
    let mut config = PublisherConfig::new(amqp_url(), 2);
    config.topic = topic.clone();
    config.connection_name = name.clone();
    let mut publisher = NotificationPublisher::connect(config)
        .await
        .unwrap_or_else(|e| broker_unreachable(e));
    let net = network();
    let sent = numbered(
        (0..600)
            .map(|_| (Target::Fanout, Method::AddFdbEntries, sample_add(net)))
            .collect(),
    );
    for n in &sent[..300] {
        publisher.publish(n).await.unwrap();
    }
    close(&publisher, &name).await;
    for n in &sent[300..] {
        publisher.publish(n).await.unwrap();
    }
    wait_confirmed(&publisher, 600).await;

    let mut seen = HashSet::new();
    let mut firsts = Vec::new();
    let mut duplicates = 0;
    while firsts.len() < 600 {
        let r = recv(&mut consumer).await;
        let seq = r.stream.unwrap().seq;
        assert_eq!(r.unique_id.unwrap(), format!("{:016x}{:016x}", 2, seq));
        if seen.insert(seq) {
            firsts.push(seq);
        } else {
            duplicates += 1;
        }
    }
    assert_eq!(
        firsts,
        (1..=600).collect::<Vec<u64>>(),
        "loss or reordering"
    );
    let stats = publisher.stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
    eprintln!(
        "reconnects {}, resent {}, duplicates received {duplicates}",
        stats.reconnects, stats.resent_messages
    );
    assert!(stats.resent_messages > 0 || duplicates == 0, "{stats:?}");
    publisher.shutdown(Duration::from_secs(10)).await.unwrap();
    delete_queues(consumer.queues()).await;
}

/// `rabbitmqctl close_connection` on the publisher's connection, found by its name. False
/// when rabbitmqctl is missing or cannot reach the node (the broker may be remote).
fn broker_closes(connection_name: &str) -> bool {
    let Ok(output) = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
    else {
        return false;
    };
    let listing = String::from_utf8_lossy(&output.stdout);
    // Lines: `<rabbit@host.N.M.0>\t[{"product",...},{"connection_name","<name>"},...]`.
    let quoted = format!("\"{connection_name}\"");
    let Some(pid) = listing
        .lines()
        .find(|line| line.contains(&quoted))
        .and_then(|line| line.split('\t').next())
    else {
        return false;
    };
    std::process::Command::new("rabbitmqctl")
        .args(["-q", "close_connection", pid, "l2pop test: forced close"])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn publisher_survives_the_broker_closing_its_connection() {
    survives_connection_loss(async |publisher, name| {
        let name = name.to_owned();
        let closed = tokio::task::spawn_blocking(move || broker_closes(&name))
            .await
            .unwrap();
        if closed {
            eprintln!(
                "the broker closed the publisher's connection (rabbitmqctl close_connection)"
            );
        } else {
            eprintln!(
                "rabbitmqctl cannot close the connection here: closing it through the test hook"
            );
            publisher.close_connection_for_test().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn publisher_survives_its_connection_closing_under_it() {
    survives_connection_loss(async |publisher, _| {
        publisher.close_connection_for_test().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn messages_carry_exactly_oslo_properties() {
    let topic = unique("l2pop-test-props");
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| broker_unreachable(e));
    let channel = connection.create_channel().await.unwrap();
    let mut publisher = publisher(&topic, 3).await;
    // The publisher declared the fanout exchange; bind a private queue to it.
    let queue = channel
        .queue_declare(
            "".into(),
            lapin::options::QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            format!("{topic}_fanout").into(),
            "".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "props".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    let sent = numbered(vec![(
        Target::Fanout,
        Method::AddFdbEntries,
        sample_add(network()),
    )]);
    publisher.publish(&sent[0]).await.unwrap();
    let delivery = tokio::time::timeout(RECV_TIMEOUT, deliveries.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(delivery.exchange.as_str(), format!("{topic}_fanout"));
    assert_eq!(delivery.routing_key.as_str(), "");
    let expected = lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_priority(0)
        .with_headers(Default::default());
    assert_eq!(delivery.properties, expected);
    let body = String::from_utf8(delivery.data).unwrap();
    assert!(body.starts_with(r#"{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add_fdb_entries\", \"args\": {\"fdb_entries\": {"#));
}

#[tokio::test]
async fn rpc_calls_get_replies_and_failures() {
    let topic = unique("l2pop-test-rpc");
    let (tx, mut requests) = mpsc::channel(16);
    let server = RpcServer::start(
        {
            let mut c = RpcServerConfig::new(amqp_url(), "server-1");
            c.topic = topic.clone();
            c
        },
        tx,
    )
    .await
    .unwrap_or_else(|e| broker_unreachable(e));
    assert_eq!(server.queues()[1], format!("{topic}.server-1"));
    let (casts_tx, mut casts) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let reply = match request.method.as_str() {
                "echo" => {
                    Ok(json!({"args": request.args, "request_id": request.context["request_id"]}))
                }
                "fail" => Err(RpcFailure::new("NetworkNotFound", "network n1 not found")),
                "note" => {
                    let _ = casts_tx.send(request.args.clone());
                    continue;
                }
                _ => continue,
            };
            request.respond(reply);
        }
    });
    let client = RpcClient::connect(RpcClientConfig::new(amqp_url(), topic.clone()))
        .await
        .unwrap();
    assert!(client.reply_queue().starts_with("reply_"));
    let mut context = Context::new();
    context.insert("request_id", "req-42");
    let args = json!({"host": "h1", "devices": ["a", "b"]})
        .as_object()
        .unwrap()
        .clone();
    let timeout = Duration::from_secs(10);

    let reply = client
        .call(None, "echo", &args, &context, timeout)
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"args": {"host": "h1", "devices": ["a", "b"]}, "request_id": "req-42"})
    );
    let reply = client
        .call(Some("server-1"), "echo", &args, &context, timeout)
        .await
        .unwrap();
    assert_eq!(reply["request_id"], json!("req-42"));

    let err = client
        .call(None, "fail", &args, &context, timeout)
        .await
        .unwrap_err();
    match err {
        RpcError::Remote {
            exc_type,
            module,
            message,
            ..
        } => {
            assert_eq!(exc_type, "NetworkNotFound");
            assert_eq!(module, "l2pop");
            assert_eq!(message, "network n1 not found");
        }
        other => panic!("expected a remote error, got {other}"),
    }
    // A request the owner drops unanswered is answered with a failure, not left to time out.
    let err = client
        .call(None, "unknown", &args, &context, timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RpcError::Remote { exc_type, .. } if exc_type == "RequestDropped"),
        "{err}"
    );

    client.cast(None, "note", &args, &context).await.unwrap();
    let noted = tokio::time::timeout(RECV_TIMEOUT, casts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(noted["host"], json!("h1"));

    // Nobody serves this server name: no queue takes the call, so it comes back unrouted at
    // once, instead of being dropped and waited for until the (long) timeout.
    let err = client
        .call(
            Some("nobody"),
            "echo",
            &args,
            &context,
            Duration::from_secs(600),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RpcError::NoServer { topic: t } if t == &format!("{topic}.nobody")),
        "{err}"
    );
    // A cast is not mandatory (oslo's fire-and-forget): nobody to take it is no error.
    client
        .cast(Some("nobody"), "note", &args, &context)
        .await
        .unwrap();
    let mut queues = server.queues().to_vec();
    queues.push(client.reply_queue().to_owned());
    client.close().await;
    delete_queues(&queues).await;
}

#[tokio::test]
async fn unreachable_broker_is_a_connect_error() {
    let mut config = PublisherConfig::new("amqp://guest:guest@127.0.0.1:1/%2f", 1);
    config.topic = unique("l2pop-test-unreachable");
    let err = NotificationPublisher::connect(config).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to the AMQP broker at amqp://guest:***@127.0.0.1:1/%2f"),
        "{text}"
    );
}

/// A host cast whose routing key would pass AMQP's 255 bytes (a longest host on a topic longer
/// than Neutron's) is refused by `publish` with its own error, and the notifications after it
/// still go out. Before, lapin's I/O thread failed on the routing key (its `shortstr` encoder
/// asserts 255 bytes), the connection died, and the publisher resent the same message after
/// every reconnect: nothing after it was ever confirmed.
#[tokio::test]
async fn a_routing_key_the_wire_cannot_carry_is_refused_and_publishing_goes_on() {
    // 64 bytes: longer than Neutron's topic, so a 218-byte host makes a 283-byte routing key.
    let topic = format!("{}-{}", unique("l2pop-test-longtopic"), "t".repeat(31));
    let mut watcher = consumer(&topic, &unique("h1")).await;
    let mut publisher = publisher(&topic, 0xbad).await;
    let net = network();
    let long = host(&"h".repeat(l2pop_model::Host::MAX_LEN));
    let sent = numbered(vec![
        (Target::Fanout, Method::AddFdbEntries, sample_add(net)),
        (Target::Host(long), Method::AddFdbEntries, sample_add(net)),
        (Target::Fanout, Method::RemoveFdbEntries, sample_remove(net)),
    ]);
    publisher.publish(&sent[0]).await.unwrap();
    let error = publisher.publish(&sent[1]).await.unwrap_err();
    assert!(
        matches!(&error, l2pop_bus::BusError::TooLong { what: "routing key", value } if value.len() > 255),
        "{error}"
    );
    publisher.publish(&sent[2]).await.unwrap();
    wait_confirmed(&publisher, 3).await;
    assert_matches(&recv(&mut watcher).await, &sent[0]);
    assert_matches(&recv(&mut watcher).await, &sent[2]);
    publisher.shutdown(Duration::from_secs(10)).await.unwrap();
    delete_queues(watcher.queues()).await;
}

/// The seam's RPC client over RabbitMQ: a server made by `Bus::rpc_server` (which connects in
/// the background) answers; after the client's connection is lost, the next call fails at
/// most once and the one after dials again and is answered: a long-running agent needs no
/// new client after a broker restart.
#[tokio::test]
async fn the_seams_rpc_client_redials_after_a_connection_loss() {
    let mut settings = l2pop_bus::BusSettings::rabbit(amqp_url());
    settings.rpc_topic = unique("l2pop-t-rpc");
    let bus = l2pop_bus::connect(&settings).await.unwrap();
    let (tx, mut requests) = mpsc::channel(16);
    let server = bus.rpc_server("server-1", tx);
    tokio::time::timeout(RECV_TIMEOUT, server.connected().wait_for(|up| *up))
        .await
        .unwrap_or_else(|_| broker_unreachable("the RPC server did not connect"))
        .unwrap();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let answer = json!({"method": request.method});
            request.respond(Ok(answer));
        }
    });
    let client = bus.rpc_client();
    let call = |method: &'static str| {
        let client = client.clone();
        async move {
            client
                .call(
                    None,
                    method,
                    &serde_json::Map::new(),
                    &Context::admin_now(),
                    Duration::from_secs(5),
                )
                .await
        }
    };
    assert_eq!(call("first").await.unwrap(), json!({"method": "first"}));
    client.close_connection_for_test().await;
    // The loss may be noticed by this call (a transport error) or before it (a redial).
    let answered = match call("second").await {
        Ok(answer) => answer,
        Err(RpcError::Bus(_)) => call("third").await.unwrap(),
        Err(other) => panic!("{other}"),
    };
    assert!(answered["method"] == "second" || answered["method"] == "third");
    assert_eq!(call("fourth").await.unwrap(), json!({"method": "fourth"}));
}

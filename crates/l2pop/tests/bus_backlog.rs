//! The publisher's outage backlog is bounded: with the broker unreachable, the server holds at
//! most `bus.max_backlog` notifications in memory (the oldest leave memory), and once the
//! broker is back an agent's consumer still receives every notification, in order, the dropped
//! ones republished from the command log. Before, the backlog was an unbounded queue in front
//! of a publisher that kept every unconfirmed notification (+93 MB for 32k).
//!
//! The outage is a TCP proxy in this test between the server and RabbitMQ that refuses and
//! cuts connections while "down" (so other tests on the same broker are not disturbed). Fails
//! (never skips) when the broker is unreachable.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use l2pop_bus::{Backend, BusSettings};
use l2pop_model::{Host, Target};
use reqwest::Method;
use serde_json::json;
use support::TestServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const CAP: usize = 20;
/// Notifications made while the broker is away: several times the cap.
const TOGGLES: usize = 120;

fn amqp_addr() -> String {
    std::env::var("L2POP_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".to_owned())
}

/// A TCP proxy to RabbitMQ: while down it closes every accepted connection at once and cuts
/// the ones it carries.
struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, up_rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut broker) = TcpStream::connect(amqp_addr()).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

/// One sample of a metric from the Prometheus text (`None` when absent).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn metrics(server: &TestServer) -> String {
    server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_long_outage_is_bounded_in_memory_and_delivered_in_order() {
    let proxy = Proxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..20];
    let topic = format!("l2pop-t-{unique}");
    let rpc_topic = format!("l2pop-p-{unique}");
    let bus = format!(
        "backend = \"rabbit\"\nurl = \"amqp://guest:guest@127.0.0.1:{}/%2f\"\ntopic = \"{topic}\"\n\
         rpc_topic = \"{rpc_topic}\"\nmax_backlog = {CAP}",
        proxy.port
    );
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start_with(&support::config(&store, &bus)).await;

    // The agent on h1 consumes straight from the broker, through the bus seam.
    let agent_bus = l2pop_bus::connect(&BusSettings {
        backend: Backend::Rabbit {
            url: format!("amqp://guest:guest@{}/%2f", amqp_addr()),
        },
        topic: topic.clone(),
        rpc_topic,
    })
    .await
    .unwrap();
    let h1 = Host::new("h1").unwrap();
    let mut consumer = agent_bus.consumer(h1.clone());
    tokio::time::timeout(
        Duration::from_secs(30),
        consumer.connected().wait_for(|c| *c),
    )
    .await
    .unwrap_or_else(|_| panic!("RabbitMQ at {} is unreachable", amqp_addr()))
    .unwrap();

    for (host, ip) in [("h1", "192.0.2.1"), ("h2", "192.0.2.2")] {
        server
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(
                    json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"]}}),
                ),
            )
            .await;
    }
    let network_id = server.network_with_subnet("n1", "10.1.0.0/24").await;
    let mut ports = Vec::new();
    for host in ["h1", "h2"] {
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network_id, "binding:host_id": host}})),
            )
            .await;
        let id = port["port"]["id"].as_str().unwrap().to_owned();
        server
            .admin(
                Method::POST,
                &format!("/v2.0/l2pop/devices/{id}/up"),
                Some(json!({"device": {"host": host}})),
            )
            .await;
        ports.push(id);
    }

    // The outage: h2's device goes down and up again and again.
    proxy.set_up(false);
    for n in 0..TOGGLES {
        let verb = if n % 2 == 0 { "down" } else { "up" };
        server
            .admin(
                Method::POST,
                &format!("/v2.0/l2pop/devices/{}/{verb}", ports[1]),
                Some(json!({"device": {"host": "h2"}})),
            )
            .await;
    }
    // Every one of them is counted in memory or as dropped (none can be confirmed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics(&server).await;
        let dropped = metric(&text, "l2pop_bus_backlog_dropped_total").unwrap_or(0.0);
        if dropped >= (TOGGLES - CAP) as f64 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog never dropped {} notifications from memory: unconfirmed {:?}, \
             backlog {:?}, dropped {dropped}",
            TOGGLES - CAP,
            metric(&text, "l2pop_bus_unconfirmed"),
            metric(&text, "l2pop_bus_backlog"),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let held = metric(&text, "l2pop_bus_backlog").unwrap();
    let unconfirmed = metric(&text, "l2pop_bus_unconfirmed").unwrap();
    assert!(held <= CAP as f64, "{held} notifications held, cap {CAP}");
    assert!(
        unconfirmed <= CAP as f64,
        "{unconfirmed} unconfirmed in the publisher, cap {CAP}"
    );

    proxy.set_up(true);
    let (_, fdb) = server
        .call(
            Some(support::ADMIN),
            Method::GET,
            "/v2.0/l2pop/hosts/h1/fdb",
            None,
        )
        .await;
    let last_fanout = fdb["fdb"]["fanout_seq"].as_u64().unwrap();
    let last_host = fdb["fdb"]["host_seq"].as_u64().unwrap();
    let mut fanout_seq = 0;
    let mut host_seq = 0;
    while fanout_seq < last_fanout || host_seq < last_host {
        let received = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("stalled at fanout {fanout_seq}/{last_fanout}, host {host_seq}/{last_host}")
            })
            .unwrap();
        let stream = received.stream.unwrap();
        // A resend after a reconnect is a duplicate (same stream number): oslo drops those.
        match received.target {
            Target::Fanout if stream.fanout_seq <= fanout_seq => {}
            Target::Fanout => {
                assert_eq!(stream.fanout_seq, fanout_seq + 1, "fanout gap");
                fanout_seq = stream.fanout_seq;
            }
            Target::Host(host) => {
                assert_eq!(host, h1);
                let seq = stream.host_seq.unwrap();
                if seq > host_seq {
                    assert_eq!(seq, host_seq + 1, "host gap");
                    host_seq = seq;
                }
            }
        }
    }
    let text = metrics(&server).await;
    assert!(
        metric(&text, "l2pop_bus_republished_from_log_total").unwrap_or(0.0)
            >= (TOGGLES - CAP) as f64,
        "the dropped notifications were not republished from the log"
    );
    server.stop().await;
}

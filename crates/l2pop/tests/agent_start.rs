//! An agent started before its server (a host booting before the control plane, or the
//! server's queues not yet declared on a fresh broker) must not fall back to a degraded mode:
//! once the server serves, the agent registers without waiting for its heartbeat (an hour away
//! here), takes a numbered snapshot of the server's streams and follows them. Real RabbitMQ
//! on this run's own topics, so no queue exists before the server declares it and the agent's
//! first calls come back unrouted.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use l2pop::agent::config::RawConfig as AgentConfig;
use l2pop_dataplane::{FakeKernel, LinkKind};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod support;
use support::{TestServer, amqp_url, config, free_port};

async fn status(http: &reqwest::Client, addr: SocketAddr) -> Option<Value> {
    http.get(format!("http://{addr}/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_before_its_server_registers_and_follows_numbered_streams() {
    let run = format!("{}-{}", std::process::id(), free_port());
    let topics = format!("topic = \"l2pop-start-{run}\"\nrpc_topic = \"l2pop-start-plugin-{run}\"");
    let status_addr: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
    // A heartbeat an hour away: a registration that waits for it never comes within the test.
    let settings = AgentConfig::parse(
        &format!(
            "[agent]\nhost = \"early-1\"\nlocal_ip = \"192.0.2.31\"\nstatus_listen = \"{status_addr}\"\n\
             report_interval_s = 3600\nscan_interval_ms = 200\n[bus]\nurl = \"{}\"\n{topics}\n",
            amqp_url()
        ),
        "test",
    )
    .unwrap()
    .validate()
    .unwrap();
    let mut kernel = FakeKernel::new();
    kernel.add_link("tap01234567-89", LinkKind::Other("veth".into()));
    let (_changed, events) = tokio::sync::mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(l2pop::agent::run_with(
        settings,
        kernel,
        events,
        shutdown.clone(),
    ));
    // The agent is up and calling into the void for a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!agent.is_finished(), "the agent gave up without a server");

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start_with(&config(
        &url,
        &format!("backend = \"rabbit\"\nurl = \"{}\"\n{topics}", amqp_url()),
    ))
    .await;
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        let agents = server.admin(Method::GET, "/v2.0/agents", None).await;
        let registered = agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["host"] == "early-1");
        let numbered = status(&http, status_addr)
            .await
            .is_some_and(|s| s["numbered"] == true && s["stream_id"].is_string());
        if registered && numbered {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "60 s after the server started: registered {registered}, numbered {numbered}; \
             status {:?}",
            status(&http, status_addr).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // It follows the server's streams: its tap's port is created, the agent learns the tap's
    // network, reports it up, and its table holds the network at the server's positions.
    let network = server.network_with_subnet("n", "10.0.9.0/24").await;
    server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(
                json!({"port": {"id": "01234567-89a0-4000-8000-000000000001",
                "network_id": network, "binding:host_id": "early-1"}}),
            ),
        )
        .await;
    loop {
        let port = server
            .admin(
                Method::GET,
                "/v2.0/ports/01234567-89a0-4000-8000-000000000001",
                None,
            )
            .await;
        let status = status(&http, status_addr).await.unwrap_or_default();
        let fanout = status["positions"]["fanout_seq"].as_u64().unwrap_or(0);
        if port["port"]["status"] == "ACTIVE"
            && fanout > 0
            && status["networks"]
                .as_object()
                .is_some_and(|n| !n.is_empty())
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the agent does not follow: port {port}, status {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let _ = agent.await;
    server.stop().await;
}

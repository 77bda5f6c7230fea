//! Host names at the wire's limit, over the real RabbitMQ. A host cast's routing key is
//! `<topic>.<host>` and AMQP caps it at 255 bytes, so hosts are bounded at 218 bytes
//! (`Host::MAX_LEN`) where they enter: a 219-byte host is refused by the API (agents and port
//! bindings) and by the agents' RPC, naming the field and the value; a 218-byte host is
//! accepted, is notified, and publishing goes on for everyone after it.
//!
//! Before the bound, the 219-byte host was accepted, its host cast panicked the publisher task
//! (lapin's `ShortString::from` expects 255 bytes at most), every later notification was
//! dropped while writes went on succeeding, and `/healthz` said "active".
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use l2pop_bus::{BusSettings, Consumer, Context, Received, RpcError};
use l2pop_model::{Host, Target};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use support::{ADMIN, TestServer};
use support::{amqp_url, args};

fn report(host: &str, vtep: &str) -> Map<String, Value> {
    args(json!({
        "agent_state": {"agent_state": {
            "host": host, "agent_type": "Open vSwitch agent",
            "binary": "neutron-openvswitch-agent", "start_flag": true,
            "configurations": {"tunneling_ip": vtep, "tunnel_types": ["vxlan"]},
        }},
        "time": "2026-11-21T10:00:00.000000",
    }))
}

/// Notifications that arrive until the consumer stays quiet for 1 s.
async fn drain(consumer: &mut Consumer) -> Vec<Received> {
    let mut got = Vec::new();
    while let Ok(Some(received)) =
        tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
    {
        got.push(received);
    }
    got
}

#[tokio::test]
async fn hosts_are_bounded_by_what_the_wire_carries() {
    let dir = tempfile::tempdir().unwrap();
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..20];
    let mut bus_settings = BusSettings::rabbit(amqp_url());
    bus_settings.topic = format!("l2pop-t-{unique}");
    bus_settings.rpc_topic = format!("l2pop-p-{unique}");
    let bus_toml = format!(
        "backend = \"rabbit\"\nurl = \"{}\"\ntopic = \"{}\"\nrpc_topic = \"{}\"",
        amqp_url(),
        bus_settings.topic,
        bus_settings.rpc_topic
    );
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start_with(&support::config(&store, &bus_toml)).await;
    let bus = l2pop_bus::connect(&bus_settings).await.unwrap();
    let rpc = bus.rpc_client();
    let call = |method: &'static str, args: Map<String, Value>| {
        let rpc = rpc.clone();
        async move {
            rpc.call(
                None,
                method,
                &args,
                &Context::admin_now(),
                Duration::from_secs(10),
            )
            .await
        }
    };

    let too_long = "h".repeat(219);
    let longest = "h".repeat(218);

    // The API refuses 219 bytes, naming the field and the value.
    let (status, body) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/l2pop/agents",
            Some(json!({"agent": {"host": too_long, "tunneling_ip": "192.0.2.9", "tunnel_types": ["vxlan"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("host") && message.contains(&too_long),
        "{message}"
    );
    // The agents' RPC refuses it too.
    match call("report_state", report(&too_long, "192.0.2.9")).await {
        Err(RpcError::Remote { message, .. }) => {
            assert!(
                message.contains("host") && message.contains(&too_long),
                "{message}"
            );
        }
        other => panic!("a 219-byte host was not refused: {other:?}"),
    }

    // 218 bytes is accepted everywhere, and its casts reach it.
    let mut long_agent = bus.consumer(Host::new(&longest).unwrap());
    let mut short_agent = bus.consumer(Host::new("compute-1").unwrap());
    for consumer in [&long_agent, &short_agent] {
        tokio::time::timeout(
            Duration::from_secs(20),
            consumer.connected().wait_for(|up| *up),
        )
        .await
        .expect("the consumer did not connect")
        .unwrap();
    }
    assert_eq!(
        call("report_state", report(&longest, "192.0.2.2"))
            .await
            .unwrap(),
        "new"
    );
    assert_eq!(
        call("report_state", report("compute-1", "192.0.2.1"))
            .await
            .unwrap(),
        "new"
    );
    let network_id = server.network_with_subnet("n1", "10.1.0.0/24").await;
    let (status, body) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id, "binding:host_id": too_long}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("binding:host_id"), "{body}");
    for host in ["compute-1", longest.as_str(), "compute-1", longest.as_str()] {
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network_id, "binding:host_id": host}})),
            )
            .await;
        let id = port["port"]["id"].as_str().unwrap().to_owned();
        let up = args(json!({"device": id, "agent_id": "ovs", "host": host}));
        assert_eq!(call("update_device_up", up).await.unwrap(), Value::Null);
    }

    let long_got = drain(&mut long_agent).await;
    let short_got = drain(&mut short_agent).await;
    assert!(
        long_got
            .iter()
            .any(|r| matches!(&r.target, Target::Host(h) if h.as_str() == longest)),
        "the 218-byte host got no host cast: {long_got:?}"
    );
    // compute-1 hears (by fanout) about the ports that came up after the long host's cast.
    let fanouts = short_got
        .iter()
        .filter(|r| r.target == Target::Fanout)
        .count();
    assert!(fanouts >= 2, "publishing stopped: {short_got:?}");
    let (status, health) = server.call(None, Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["failed"], Value::Null);
    assert_eq!(health["bus"], "up");
    server.stop().await;
}

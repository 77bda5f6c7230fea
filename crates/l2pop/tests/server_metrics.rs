//! Metrics that must not go stale (issue 8, item 10): after a burst of notifications over
//! RabbitMQ, once the broker has confirmed them all, `l2pop_bus_unconfirmed` reads 0. Before,
//! the forwarder set the gauge only when it handed a notification over, so the confirms that
//! followed the last one never reached it (it stayed at 27 on an idle server). Fails (never
//! skips) when the broker is unreachable.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::amqp_url;
use support::{TestServer, admin_call};

/// The value of an unlabelled sample in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn unconfirmed_gauge_returns_to_zero_once_the_broker_confirmed_everything() {
    let dir = tempfile::tempdir().unwrap();
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..20];
    let bus = format!(
        "backend = \"rabbit\"\nurl = \"{}\"\ntopic = \"l2pop-t-{unique}\"\nrpc_topic = \"l2pop-p-{unique}\"",
        amqp_url()
    );
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start_with(&support::config(&store, &bus)).await;
    let health = server.admin(Method::GET, "/healthz", None).await;
    assert_eq!(
        health["bus"],
        "up",
        "RabbitMQ at {} is unreachable",
        amqp_url()
    );

    for (host, ip) in [("compute-1", "192.0.2.1"), ("compute-2", "192.0.2.2")] {
        server
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"], "start_flag": true}})),
            )
            .await;
    }
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 4001}})),
        )
        .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    // A burst: every write answers at commit, before the broker confirms its notifications,
    // so the last ones are still unconfirmed when the forwarder hands them over.
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..40 {
        let (http, base, network_id) =
            (server.http.clone(), server.url.clone(), network_id.clone());
        writes.spawn(async move {
            let host = if n % 2 == 0 { "compute-1" } else { "compute-2" };
            let body = json!({"port": {"network_id": network_id, "binding:host_id": host}});
            let (status, port) = admin_call(&http, &base, Method::POST, "/v2.0/ports", Some(&body))
                .await
                .unwrap();
            assert!(status.is_success(), "{status} {port}");
            let id = port["port"]["id"].as_str().unwrap().to_owned();
            let body = json!({"device": {"host": host}});
            let path = format!("/v2.0/l2pop/devices/{id}/up");
            let (status, answer) = admin_call(&http, &base, Method::POST, &path, Some(&body))
                .await
                .unwrap();
            assert!(status.is_success(), "{status} {answer}");
        });
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap();
    }

    // Every notification is published and confirmed eventually (the broker is local); the gauge
    // must then say so. The poll is bounded only so that a stale gauge fails instead of hanging.
    let mut last = String::new();
    for _ in 0..600 {
        last = server
            .http
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Handed over: every notification made (the counter has one series per method and
        // target); only then does a 0 say anything.
        let made: f64 = last
            .lines()
            .filter_map(|line| line.strip_prefix("l2pop_notifications_total{"))
            .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let published = sample(&last, "l2pop_bus_messages_published_total").unwrap_or(0.0);
        if made > 0.0 && published >= made && sample(&last, "l2pop_bus_unconfirmed") == Some(0.0) {
            server.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("l2pop_bus_unconfirmed never returned to 0 after the confirms:\n{last}");
}

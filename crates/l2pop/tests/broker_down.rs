//! The server starts while RabbitMQ is down: it serves the API (writes are committed and
//! answered), `/healthz` says the bus is down, and the notifications wait for the broker.
//! Before, `Bus::start` failed on the refused connection and the server exited, so the API went
//! down with the broker.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::json;
use support::{TestServer, free_port};

#[tokio::test]
async fn the_api_serves_while_the_broker_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    // A port nothing listens on: every connection attempt is refused.
    let bus = format!(
        "backend = \"rabbit\"\nurl = \"amqp://guest:guest@127.0.0.1:{}/%2f\"",
        free_port()
    );
    let server = TestServer::start_with(&support::config(&store, &bus)).await;
    let (status, body) = server
        .call(
            Some(support::ADMIN),
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "n1"}})),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{body}");
    let (status, health) = server.call(None, Method::GET, "/healthz", None).await;
    assert_eq!(status.as_u16(), 200, "{health}");
    assert_eq!(health["role"], "active");
    assert_eq!(health["bus"], "down");
    assert_eq!(health["failed"], serde_json::Value::Null);
    server.running.shutdown.cancel();
    // Shutdown gives up on the unconfirmed notifications after its timeout (the next start
    // republishes them from the log) and ends cleanly.
    server.running.task.await.unwrap().unwrap();
}

//! Shared by the server's integration tests: an in-process server on 127.0.0.1:0 with a store
//! in a temporary directory (or a given URL) and the in-memory bus, and a small JSON client.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use l2pop::server::config::RawConfig;
use l2pop::server::{RunningServer, start};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";

pub fn config(store_url: &str, bus: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
name = "test-server"
[store]
url = "{store_url}"
leader_poll_ms = 100
[bus]
{bus}
[auth]
admin_token = "{ADMIN}"
[[auth.projects]]
project_id = "alice"
token = "{ALICE}"
[[auth.projects]]
project_id = "bob"
token = "{BOB}"
"#
    )
}

pub struct TestServer {
    pub url: String,
    pub running: RunningServer,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a server on `store_url` with the in-memory bus and waits until it is active.
    pub async fn start(store_url: &str) -> TestServer {
        TestServer::start_with(&config(store_url, "backend = \"memory\"")).await
    }

    pub async fn start_with(toml: &str) -> TestServer {
        let settings = RawConfig::parse(toml, "test").unwrap().validate().unwrap();
        let running = start(settings, CancellationToken::new()).await.unwrap();
        let server = TestServer {
            url: format!("http://{}", running.addr),
            running,
            http: reqwest::Client::new(),
        };
        server.wait_active(Duration::from_secs(30)).await;
        server
    }

    pub async fn wait_active(&self, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            if let Ok(response) = self.http.get(format!("{}/healthz", self.url)).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["role"] == "active"
            {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "server did not become active in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(Some(ADMIN), method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    pub async fn stop(self) {
        self.running.shutdown.cancel();
        self.running.task.await.unwrap().unwrap();
    }
}

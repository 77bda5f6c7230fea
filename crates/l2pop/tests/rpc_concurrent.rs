//! Many agents calling the server at once over the real RabbitMQ, each with its own client
//! (as ten agents starting together do): every call gets its reply. Fails (never skips) when
//! the broker is unreachable.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use l2pop_bus::{BusSettings, Context};
use serde_json::{Map, Value, json};
use support::TestServer;
use support::amqp_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_one_of_many_concurrent_first_calls_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let rpc_topic = format!("l2pop-conc-{}", std::process::id());
    let bus = format!(
        "backend = \"rabbit\"\nurl = \"{}\"\nrpc_topic = \"{rpc_topic}\"",
        amqp_url()
    );
    let url = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start_with(&support::config(&url, &bus)).await;
    let mut settings = BusSettings::rabbit(amqp_url());
    settings.rpc_topic = rpc_topic;
    let bus = l2pop_bus::connect(&settings).await.unwrap();
    let calls = (0..12).map(|n| {
        let client = bus.rpc_client();
        async move {
            let state = json!({"agent_state": {"agent_state": {
                "host": format!("conc-{n}"),
                "agent_type": "Linux bridge agent",
                "binary": "l2pop-agent",
                "start_flag": true,
                "configurations": {"tunneling_ip": format!("192.0.2.{}", n + 1), "tunnel_types": ["vxlan"]},
            }}});
            let args: Map<String, Value> = state.as_object().unwrap().clone();
            client
                .call(None, "report_state", &args, &Context::admin_now(), Duration::from_secs(20))
                .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let failed: Vec<String> = answers
        .iter()
        .enumerate()
        .filter_map(|(n, a)| a.as_ref().err().map(|e| format!("conc-{n}: {e}")))
        .collect();
    assert!(failed.is_empty(), "unanswered calls: {failed:?}");
    server.stop().await;
}

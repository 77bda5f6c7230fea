//! The server over the real RabbitMQ: agents report and bring devices up through oslo RPC calls
//! on the l2pop topic, receive the casts on the queues a Neutron agent declares, and the table
//! each builds from them equals the full FDB the server answers for a resync, with gap-free
//! stream numbers. Fails (never skips) when the broker is unreachable.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use l2pop_bus::Context;
use l2pop_bus::rabbit::{ConsumerConfig, NotificationConsumer, RpcClient, RpcClientConfig};
use l2pop_model::{FdbPayload, FdbTable, Host, Target};
use reqwest::Method;
use serde_json::{Map, Value, json};
use support::TestServer;
use support::{amqp_url, args};

struct Agent {
    host: Host,
    vtep: &'static str,
    consumer: NotificationConsumer,
    table: FdbTable,
    fanout_seq: Option<u64>,
    host_seq: u64,
}

impl Agent {
    /// Applies every notification that arrives until the queue stays quiet for 500 ms,
    /// checking that each stream is gap-free.
    async fn drain(&mut self) -> usize {
        let mut applied = 0;
        while let Ok(Some(received)) =
            tokio::time::timeout(Duration::from_millis(500), self.consumer.recv()).await
        {
            let stream = received
                .stream
                .clone()
                .expect("l2pop casts carry their stream");
            match &received.target {
                Target::Fanout => {
                    if let Some(last) = self.fanout_seq {
                        assert_eq!(stream.fanout_seq, last + 1, "{}: fanout gap", self.host);
                    }
                    self.fanout_seq = Some(stream.fanout_seq);
                }
                Target::Host(host) => {
                    assert_eq!(host, &self.host);
                    assert_eq!(
                        stream.host_seq,
                        Some(self.host_seq + 1),
                        "{}: host gap",
                        self.host
                    );
                    self.host_seq += 1;
                }
            }
            self.table.apply(
                received.method,
                &received.fdb_entries,
                Some(self.vtep.parse().unwrap()),
                |_| true,
            );
            applied += 1;
        }
        applied
    }
}

#[tokio::test]
async fn agents_follow_the_server_over_rabbitmq() {
    let dir = tempfile::tempdir().unwrap();
    // Topics are at most 36 bytes (Neutron's), so that every host's cast fits a routing key.
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..20];
    let topic = format!("l2pop-t-{unique}");
    let rpc_topic = format!("l2pop-p-{unique}");
    let bus = format!(
        "backend = \"rabbit\"\nurl = \"{}\"\ntopic = \"{topic}\"\nrpc_topic = \"{rpc_topic}\"",
        amqp_url()
    );
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let server = TestServer::start_with(&support::config(&store, &bus)).await;

    let rpc = RpcClient::connect(RpcClientConfig::new(amqp_url(), rpc_topic.clone()))
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at {} is unreachable: {e}", amqp_url()));
    let mut agents = Vec::new();
    for (host, vtep) in [("compute-1", "192.0.2.1"), ("compute-2", "192.0.2.2")] {
        let host = Host::new(host).unwrap();
        let mut config = ConsumerConfig::new(amqp_url(), host.clone());
        config.topic.clone_from(&topic);
        let consumer = NotificationConsumer::connect(config).await.unwrap();
        let reply = rpc
            .call(
                None,
                "report_state",
                &args(json!({
                    "agent_state": {"agent_state": {
                        "host": host, "agent_type": "Open vSwitch agent", "binary": "neutron-openvswitch-agent",
                        "start_flag": true,
                        "configurations": {"tunneling_ip": vtep, "tunnel_types": ["vxlan"]},
                    }},
                    "time": "2026-11-21T10:00:00.000000",
                })),
                &Context::admin_now(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(reply, "new");
        agents.push(Agent {
            host,
            vtep,
            consumer,
            table: FdbTable::default(),
            fanout_seq: None,
            host_seq: 0,
        });
    }

    let network_id = server.network_with_subnet("n1", "10.1.0.0/24").await;
    let mut ports = Vec::new();
    for n in 0..6 {
        let host = &agents[n % 2].host;
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network_id, "binding:host_id": host}})),
            )
            .await;
        let id = port["port"]["id"].as_str().unwrap().to_owned();
        let reply = rpc
            .call(
                None,
                "update_device_up",
                &args(
                    json!({"device": format!("tap{}", &id[..11]), "agent_id": "ovs", "host": host}),
                ),
                &Context::admin_now(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(reply, Value::Null);
        ports.push((id, host.clone()));
    }
    let (id, host) = &ports[0];
    let reply = rpc
        .call(
            None,
            "update_device_down",
            &args(json!({"device": id, "agent_id": "ovs", "host": host})),
            &Context::admin_now(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(reply["exists"], true);
    // An unknown method is a RemoteError for the caller, not a crash.
    let refused = rpc
        .call(
            None,
            "no_such_method",
            &Map::new(),
            &Context::admin_now(),
            Duration::from_secs(10),
        )
        .await;
    assert!(refused.is_err());

    for agent in &mut agents {
        let applied = agent.drain().await;
        assert!(applied > 0, "{} received nothing", agent.host);
        let resync = rpc
            .call(
                None,
                "get_fdb_entries",
                &args(json!({"host": agent.host})),
                &Context::admin_now(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(resync["fanout_seq"], agent.fanout_seq.unwrap());
        assert_eq!(resync["host_seq"], agent.host_seq);
        let payload: FdbPayload = serde_json::from_value(resync["fdb_entries"].clone()).unwrap();
        let expected = FdbTable::from_full_fdb(&payload);
        let built: BTreeMap<_, _> = agent
            .table
            .networks
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(n, t)| (*n, t.clone()))
            .collect();
        assert_eq!(
            built, expected.networks,
            "{}: notifications and full FDB differ",
            agent.host
        );
        assert!(!expected.networks.is_empty());
    }
    server.stop().await;
}

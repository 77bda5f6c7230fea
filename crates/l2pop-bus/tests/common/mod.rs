//! Helpers shared by the broker tests: the broker URL, unique names, notifications.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use l2pop_model::{
    ChgIp, FLOODING_ENTRY, FdbEntries, FdbPayload, Host, IpChange, Method, NetworkFdb, NetworkId,
    NetworkType, Notification, PortInfo, Target,
};

/// The broker under test: `L2POP_AMQP_URL` or the local default.
pub fn amqp_url() -> String {
    std::env::var("L2POP_AMQP_URL").unwrap_or_else(|_| l2pop_bus::rabbit::DEFAULT_URL.to_owned())
}

/// Fails the test (never skips) when the broker is unreachable.
pub fn broker_unreachable(error: impl std::fmt::Display) -> ! {
    panic!(
        "RabbitMQ is unreachable at {} ({error}). These tests need a running broker: \
         start one (apt-get install -y rabbitmq-server; rabbitmq-server -detached) or set \
         L2POP_AMQP_URL",
        amqp_url()
    )
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn host(name: &str) -> Host {
    Host::new(name).unwrap()
}

pub fn pi(mac: &str, ip: &str) -> PortInfo {
    PortInfo::new(mac.parse().unwrap(), ip.parse().unwrap())
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A random network id (so concurrent runs can tell their messages apart).
pub fn network() -> NetworkId {
    uuid::Uuid::new_v4()
        .hyphenated()
        .to_string()
        .parse()
        .unwrap()
}

/// An add/remove payload: one network, several VTEPs with flood entries.
pub fn entries(net: NetworkId, vni: u32, vteps: &[(&str, Vec<PortInfo>)]) -> FdbPayload {
    FdbPayload::Entries(FdbEntries::single(
        net,
        NetworkFdb {
            segment_id: Some(vni),
            network_type: NetworkType::Vxlan,
            ports: vteps
                .iter()
                .map(|(v, list)| (ip(v), list.clone()))
                .collect(),
        },
    ))
}

pub fn sample_add(net: NetworkId) -> FdbPayload {
    entries(
        net,
        1001,
        &[
            (
                "192.0.2.11",
                vec![FLOODING_ENTRY, pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
            ),
            (
                "192.0.2.12",
                vec![
                    FLOODING_ENTRY,
                    pi("fa:16:3e:11:22:33", "10.0.0.7"),
                    pi("fa:16:3e:11:22:33", "2001:db8::7"),
                ],
            ),
            ("198.51.100.3", vec![FLOODING_ENTRY]),
        ],
    )
}

pub fn sample_remove(net: NetworkId) -> FdbPayload {
    entries(
        net,
        1001,
        &[("192.0.2.11", vec![pi("fa:16:3e:dd:ee:ff", "10.0.0.9")])],
    )
}

pub fn sample_update(net: NetworkId) -> FdbPayload {
    FdbPayload::ChgIp(ChgIp(vec![(
        net,
        vec![(
            ip("192.0.2.11"),
            IpChange {
                before: vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
                after: vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.6")],
            },
        )],
    )]))
}

/// Numbers a list of (target, method, payload) the way the engine does.
pub fn numbered(items: Vec<(Target, Method, FdbPayload)>) -> Vec<Notification> {
    let mut fanout_seq = 0;
    let mut host_seqs = std::collections::HashMap::<Host, u64>::new();
    items
        .into_iter()
        .enumerate()
        .map(|(i, (target, method, fdb_entries))| {
            let host_seq = match &target {
                Target::Fanout => {
                    fanout_seq += 1;
                    None
                }
                Target::Host(h) => {
                    let s = host_seqs.entry(h.clone()).or_default();
                    *s += 1;
                    Some(*s)
                }
            };
            Notification {
                seq: i as u64 + 1,
                target,
                method,
                source: None,
                fdb_entries,
                fanout_seq,
                host_seq,
            }
        })
        .collect()
}

pub const RECV_TIMEOUT: Duration = Duration::from_secs(20);

/// Deletes queues a test declared (topic queues are not auto-delete, as in oslo). Best effort.
pub async fn delete_queues(names: &[String]) {
    let Ok(connection) =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for name in names {
            let _ = channel
                .queue_delete(name.as_str().into(), Default::default())
                .await;
        }
    }
    let _ = connection.close(200, "OK".into()).await;
}

//! Two server processes (the real binary) on one store: exactly one is active, the other
//! stands by (503 on the API); `kill -9` of the active one makes the standby take over within
//! 30 s with everything that was acknowledged (the same resources and the same desired FDB
//! tables, compared as JSON), and it accepts new writes; the killed one, started again, stands
//! by. On PostgreSQL (a fresh database on `$L2POP_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; the test fails if it cannot be reached) and
//! on one SQLite file.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ChildServer, PgDatabase, admin_call};

const POLL_MS: u64 = 200;
const TAKEOVER: Duration = Duration::from_secs(30);
const HOSTS: [(&str, &str); 3] = [
    ("compute-1", "192.0.2.1"),
    ("compute-2", "192.0.2.2"),
    ("compute-3", "192.0.2.3"),
];

/// Agents, two networks with subnets, ports on every host (one of them down again, one deleted).
async fn populate(server: &ChildServer) {
    for (host, ip) in HOSTS {
        server
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"], "start_flag": true}})),
            )
            .await;
    }
    let mut ports = Vec::new();
    for (n, vni) in [1001, 1002].into_iter().enumerate() {
        let network = server
            .admin(
                Method::POST,
                "/v2.0/networks",
                Some(json!({"network": {"name": format!("net{n}"), "project_id": "alice",
                                        "provider:network_type": "vxlan", "provider:segmentation_id": vni}})),
            )
            .await;
        let network_id = network["network"]["id"].as_str().unwrap().to_owned();
        server
            .admin(
                Method::POST,
                "/v2.0/subnets",
                Some(json!({"subnet": {"network_id": network_id, "cidr": format!("10.{n}.0.0/24"), "project_id": "alice"}})),
            )
            .await;
        for (h, (host, _)) in HOSTS.iter().enumerate() {
            let port = server
                .admin(
                    Method::POST,
                    "/v2.0/ports",
                    Some(json!({"port": {"network_id": network_id, "name": format!("vm-{n}-{h}"), "project_id": "alice",
                                         "binding:host_id": host, "device_owner": "compute:nova"}})),
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
            ports.push((id, *host));
        }
    }
    let (down, host) = &ports[1];
    server
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{down}/down"),
            Some(json!({"device": {"host": host}})),
        )
        .await;
    let (deleted, _) = &ports[5];
    server
        .admin(Method::DELETE, &format!("/v2.0/ports/{deleted}"), None)
        .await;
}

/// Everything the API shows, as JSON, path by path.
async fn snapshot(server: &ChildServer) -> Vec<(String, Value)> {
    let mut paths: Vec<String> = [
        "/v2.0/networks",
        "/v2.0/subnets",
        "/v2.0/ports",
        "/v2.0/agents",
    ]
    .map(str::to_owned)
    .into();
    paths.extend(HOSTS.map(|(host, _)| format!("/v2.0/l2pop/hosts/{host}/fdb")));
    let mut all = Vec::new();
    for path in paths {
        let value = server.admin(Method::GET, &path, None).await;
        all.push((path, support::without_heartbeats(value)));
    }
    all
}

/// The standby keeps standing by for a while (several poll intervals) and refuses the API.
async fn assert_stands_by(standby: &mut ChildServer, active: &mut ChildServer) {
    let until = Instant::now() + Duration::from_millis(POLL_MS * 6);
    while Instant::now() < until {
        standby.assert_running();
        active.assert_running();
        let (standby_role, active_role) = (standby.role().await, active.role().await);
        assert_eq!(
            (standby_role.as_deref(), active_role.as_deref()),
            (Some("standby"), Some("active")),
            "expected {} standby and {} active\n{}\n{}",
            standby.name,
            active.name,
            standby.tail(),
            active.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = admin_call(
        &standby.http,
        &standby.url,
        Method::GET,
        "/v2.0/networks",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the standby answered the API: {body}\n{}",
        standby.tail()
    );
}

/// Waits until exactly one of two servers is active; returns (active, standby).
async fn elect(mut a: ChildServer, mut b: ChildServer) -> (ChildServer, ChildServer) {
    let started = Instant::now();
    loop {
        a.assert_running();
        b.assert_running();
        match (a.role().await.as_deref(), b.role().await.as_deref()) {
            (Some("active"), Some("active")) => {
                panic!("both servers are active\n{}\n{}", a.tail(), b.tail())
            }
            (Some("active"), _) => return (a, b),
            (_, Some("active")) => return (b, a),
            _ => {}
        }
        assert!(
            started.elapsed() < TAKEOVER,
            "neither server became active within {TAKEOVER:?}\n{}\n{}",
            a.tail(),
            b.tail()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn failover(dir: &Path, store_url: &str, start_together: bool) {
    let (mut active, mut standby) = if start_together {
        let (a, b) = tokio::join!(
            ChildServer::start(dir, "server-a", store_url, POLL_MS),
            ChildServer::start(dir, "server-b", store_url, POLL_MS),
        );
        elect(a, b).await
    } else {
        let mut a = ChildServer::start(dir, "server-a", store_url, POLL_MS).await;
        a.wait_role("active", TAKEOVER).await;
        let b = ChildServer::start(dir, "server-b", store_url, POLL_MS).await;
        (a, b)
    };
    assert_stands_by(&mut standby, &mut active).await;

    populate(&active).await;
    let before = snapshot(&active).await;
    assert_stands_by(&mut standby, &mut active).await;
    // The active server snapshotted its state and compacted the log under the standby that
    // follows it: the takeover reads a snapshot and the log after it.
    let compacted = support::wait_compacted(store_url, TAKEOVER).await;
    assert!(compacted >= support::CHILD_SNAPSHOT_EVERY, "{compacted}");

    active.kill9().await;
    let killed_at = Instant::now();
    standby.wait_role("active", TAKEOVER).await;
    println!(
        "{} took over {} ms after the kill",
        standby.name,
        killed_at.elapsed().as_millis()
    );
    let (mut active, killed) = (standby, active);
    let after = snapshot(&active).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(
            is,
            was,
            "{path} differs after the takeover\n{}\n{}",
            killed.tail(),
            active.tail()
        );
    }

    // The new active server takes writes.
    let networks = active.admin(Method::GET, "/v2.0/networks", None).await;
    let network_id = networks["networks"][0]["id"].as_str().unwrap().to_owned();
    let port = active
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id, "name": "after-takeover", "project_id": "alice",
                                 "binding:host_id": "compute-3", "device_owner": "compute:nova"}})),
        )
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_owned();
    let up = active
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{port_id}/up"),
            Some(json!({"device": {"host": "compute-3"}})),
        )
        .await;
    assert_eq!(up["port"]["status"], "ACTIVE", "{up}");
    let fdb = active
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    assert!(
        fdb.to_string().contains(&port_id),
        "the new port is not in compute-1's desired table: {fdb}"
    );

    // The killed server, started again, stands by.
    let mut restarted = ChildServer::start(dir, &killed.name, store_url, POLL_MS).await;
    drop(killed);
    assert_stands_by(&mut restarted, &mut active).await;
    let shown = active
        .admin(Method::GET, &format!("/v2.0/ports/{port_id}"), None)
        .await;
    assert_eq!(shown["port"]["name"], "after-takeover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_standby_takes_over_after_kill_9_with_everything_acknowledged() {
    let database = PgDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    failover(dir.path(), &database.url, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_second_process_stands_by_until_the_first_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    failover(dir.path(), &store_url, false).await;
}

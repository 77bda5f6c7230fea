//! Agents end to end against an in-process server on the in-memory bus, each on an in-memory
//! kernel (no root needed): taps appear, the agents learn their networks over RPC, report them
//! up, follow the casts, and every kernel ends equal to the server's desired table; entries
//! removed behind an agent's back and refused kernel operations are repaired.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2pop::agent::config::RawConfig as AgentConfig;
use l2pop::demo::checks::{expected_kernel, observed_table};
use l2pop::server::config::RawConfig;
use l2pop_bus::{Backend, BusSettings};
use l2pop_dataplane::{Dataplane, FakeKernel, KernelError, LinkKind, ObserveError, Observed, Op};
use reqwest::Method;
use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

mod support;
use support::{TestServer, config};

/// An in-memory kernel shared between an agent and the test (which changes it behind the
/// agent's back).
#[derive(Clone)]
struct Shared(Arc<Mutex<FakeKernel>>);

impl Dataplane for Shared {
    async fn observe(&mut self) -> Result<Observed, ObserveError> {
        let mut kernel = self.0.lock().await;
        Dataplane::observe(&mut *kernel).await
    }

    async fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        self.0.lock().await.execute_all(ops)
    }
}

struct Host {
    name: &'static str,
    vtep: Ipv4Addr,
    kernel: Shared,
    changed: mpsc::Sender<()>,
}

async fn start_agent(
    name: &'static str,
    vtep: Ipv4Addr,
    bus: &l2pop_bus::memory::MemoryBus,
    shutdown: &CancellationToken,
) -> Host {
    let mut settings = AgentConfig::parse(
        &format!(
            "[agent]\nhost = \"{name}\"\nlocal_ip = \"{vtep}\"\nstatus_listen = \"\"\n\
             scan_interval_ms = 200\nreconcile_interval_s = 1\n"
        ),
        "test",
    )
    .unwrap()
    .validate()
    .unwrap();
    settings.bus = BusSettings::memory(bus.clone());
    let kernel = Shared(Arc::new(Mutex::new(FakeKernel::new())));
    let (changed, events) = mpsc::channel(1);
    tokio::spawn(l2pop::agent::run_with(
        settings,
        kernel.clone(),
        events,
        shutdown.clone(),
    ));
    Host {
        name,
        vtep,
        kernel,
        changed,
    }
}

/// Waits until every port is ACTIVE (its agent reported it up) and every host's in-memory
/// kernel holds exactly its desired table.
async fn converged(server: &TestServer, hosts: &[Host], what: &str) {
    let started = Instant::now();
    loop {
        let mut problems = Vec::new();
        let ports = server.admin(Method::GET, "/v2.0/ports", None).await;
        for port in ports["ports"].as_array().into_iter().flatten() {
            if port["status"] != "ACTIVE" {
                problems.push(format!("port {} is {}", port["id"], port["status"]));
            }
        }
        for host in hosts {
            let desired = server
                .admin(
                    Method::GET,
                    &format!("/v2.0/l2pop/hosts/{}/fdb", host.name),
                    None,
                )
                .await;
            let expected = expected_kernel(&desired, host.vtep);
            let observed = host.kernel.0.lock().await.observe();
            let actual = observed_table(&observed, &expected.vnis());
            if expected.networks.is_empty() {
                problems.push(format!("{}: no network yet", host.name));
            }
            if let Some(diff) = expected.diff(&actual) {
                problems.push(format!("{}: {diff}", host.name));
            }
        }
        if problems.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not converged after {what}: {problems:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_in_memory_kernels_converge_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let settings = RawConfig::parse(&config(&url, "backend = \"memory\""), "test")
        .unwrap()
        .validate()
        .unwrap();
    let Backend::Memory(bus) = settings.bus.backend.clone() else {
        panic!("memory bus expected");
    };
    let server = TestServer::start_with_settings(settings).await;
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network_id, "ip_version": 4, "cidr": "10.0.1.0/24"}})),
        )
        .await;
    let shutdown = CancellationToken::new();
    let hosts = [
        start_agent("compute-1", Ipv4Addr::new(192, 0, 2, 11), &bus, &shutdown).await,
        start_agent("compute-2", Ipv4Addr::new(192, 0, 2, 12), &bus, &shutdown).await,
    ];
    let mut ports = Vec::new();
    for host in &hosts {
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network_id, "binding:host_id": host.name}})),
            )
            .await;
        let id = port["port"]["id"].as_str().unwrap().to_owned();
        let tap = format!("tap{}", &id[..11]);
        host.kernel
            .0
            .lock()
            .await
            .add_link(&tap, LinkKind::Other("veth".into()));
        let _ = host.changed.try_send(());
        ports.push((id, tap));
    }
    converged(&server, &hosts, "two taps plugged").await;
    // Each tap is enslaved to its network's bridge.
    for (host, (_, tap)) in hosts.iter().zip(&ports) {
        let observed = host.kernel.0.lock().await.observe();
        let master = observed.links[tap].master.clone().unwrap();
        assert!(master.starts_with("brq"), "{master}");
    }

    // An entry removed behind compute-1's back comes back.
    {
        let mut kernel = hosts[0].kernel.0.lock().await;
        let fdb = kernel.fdb_of("vxlan-1001");
        let (mac, dst) = fdb.into_iter().find(|(m, _)| !m.is_zero()).unwrap();
        assert!(kernel.remove_fdb("vxlan-1001", mac, dst));
    }
    let _ = hosts[0].changed.try_send(());
    converged(&server, &hosts, "an entry removed behind the agent's back").await;

    // The kernel refuses the next operations on compute-2; a third port's entries still land.
    hosts[1]
        .kernel
        .0
        .lock()
        .await
        .fail_nth(1, l2pop_dataplane::error::ENOBUFS);
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id, "binding:host_id": "compute-1"}})),
        )
        .await;
    let id = port["port"]["id"].as_str().unwrap().to_owned();
    hosts[0]
        .kernel
        .0
        .lock()
        .await
        .add_link(&format!("tap{}", &id[..11]), LinkKind::Other("veth".into()));
    let _ = hosts[0].changed.try_send(());
    converged(&server, &hosts, "a refused kernel operation").await;

    // A port deleted through the API leaves every other kernel.
    server
        .admin(Method::DELETE, &format!("/v2.0/ports/{}", ports[1].0), None)
        .await;
    converged(&server, &hosts[..1], "a port deleted").await;
    let observed = hosts[0].kernel.0.lock().await.observe();
    let macs: BTreeSet<String> = observed
        .fdb
        .values()
        .flatten()
        .map(|(m, _)| m.to_string())
        .collect();
    assert!(macs.len() <= 2, "stale entries: {macs:?}");
    shutdown.cancel();
    server.stop().await;
}

//! Export to a real FRR (zebra + bgpd, Debian package `frr`): FRR is the VPN site's PE/VTEP
//! (`advertise-all-vni`, VNI 1001, a bridge with an SVI) in a network namespace; our server
//! (RabbitMQ bus, its own topics) holds compute hosts with ports on the network associated
//! with the l2 BGPVPN bound to BGP agent bgp-1; our speaker, in-process, follows the server's
//! fanout stream and exports. FRR must receive our type-3 and type-2 routes and program them
//! (the HER flooding entry and the remote MAC on its VXLAN device, the neighbour on its SVI); a
//! port that comes up later arrives through the stream (the periodic snapshot is an hour away),
//! and a deleted port is withdrawn.
//!
//! Needs root, FRR and RabbitMQ (`scripts/services`): skipped when absent outside CI.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use l2pop::demo::frr::{Device, Site, SiteOptions, TEST_VTEP as PE_VTEP};
use reqwest::Method;
use serde_json::json;
use support::{ADMIN, TestServer};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const VM1: (&str, &str) = ("fa:16:3e:00:00:01", "10.1.0.11");
const VM2: (&str, &str) = ("fa:16:3e:00:00:02", "10.1.0.12");

fn sh(script: &str) -> String {
    let output = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn sh_quiet(script: &str) -> String {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

/// A namespace beside the PE's (`l2x…-c` for `l2x…-pe`).
fn sibling(pe: &Site, suffix: &str) -> String {
    format!("{}-{suffix}", &pe.ns()[..pe.ns().len() - 3])
}

/// The PE (no devices unless given) with FRR started. `underlay`: our compute host's
/// namespace (`sibling(pe, "c")`, adopted by the PE) is on a link to the PE (192.0.2.0/24),
/// else 192.0.2.0/24 is routed to us.
fn pe(variant: u8, underlay: bool, devices: Vec<Device>) -> Site {
    let mut pe = Site::create(SiteOptions {
        devices,
        ..SiteOptions::test("x", variant)
    })
    .unwrap();
    let (ns, ours) = (pe.ns().to_owned(), pe.ours());
    if underlay {
        let compute = sibling(&pe, "c");
        pe.adopt(&compute);
        sh(&format!(
            "ip netns add {compute}
             ip -n {compute} link add eth0 type veth peer name ul0 netns {ns}
             ip -n {compute} link set lo up
             ip -n {compute} addr add 192.0.2.1/24 dev eth0; ip -n {compute} link set eth0 up
             ip -n {compute} route add {PE_VTEP}/32 via 192.0.2.254
             ip -n {ns} addr add 192.0.2.254/24 dev ul0; ip -n {ns} link set ul0 up"
        ));
    } else {
        pe.exec(&["ip", "route", "add", "192.0.2.0/24", "via", &ours])
            .unwrap();
    }
    pe.start("zebra").unwrap();
    pe.start("bgpd").unwrap();
    pe
}

/// Polls `check` until it holds; fails with the PE's state after `WAIT`. Returns how long it took.
async fn wait_for(pe: &Site, what: &str, check: impl Fn(&Site) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check(pe) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "{what}: not reached\n{}",
            pe.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A compute host's agent and an active port on `network`; the port's id.
async fn port_up(
    server: &TestServer,
    network: &str,
    host: &str,
    vtep: &str,
    vm: (&str, &str),
) -> String {
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/agents",
            Some(json!({"agent": {"host": host, "tunneling_ip": vtep, "tunnel_types": ["vxlan"], "start_flag": true}})),
        )
        .await;
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network, "mac_address": vm.0,
                                  "fixed_ips": [{"ip_address": vm.1}],
                                  "binding:host_id": host, "device_owner": "compute:nova"}})),
        )
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{port_id}/up"),
            Some(json!({"device": {"host": host}})),
        )
        .await;
    port_id
}

fn has_route(pe: &Site, kind: &str, needle: &str) -> bool {
    pe.show(&format!("show bgp l2vpn evpn route type {kind} json"))
        .contains(needle)
}

/// The server (RabbitMQ bus on topics of its own) with the VXLAN network 1001 and its subnet,
/// and the speaker's settings: bgp-1 peering with the PE, exporting, snapshots an hour apart.
struct World {
    server: TestServer,
    network: String,
    speaker: l2pop::bgp::config::Settings,
    bus: String,
    _store: tempfile::TempDir,
}

async fn world(pe: &Site, variant: u8) -> World {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("l2pop=info")),
        )
        .try_init();
    let id = std::process::id();
    let topic = format!("l2pop-export-{id}-{variant}");
    let rpc_topic = format!("l2pop-export-rpc-{id}-{variant}");
    let amqp = support::amqp_url();
    let bus = format!("url = \"{amqp}\"\ntopic = \"{topic}\"\nrpc_topic = \"{rpc_topic}\"");
    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&support::config(
        &format!("sqlite:{}", store.path().join("l2pop.db").display()),
        &format!("backend = \"rabbit\"\n{bus}"),
    ))
    .await;
    let created = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "net1", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    let network = created["network"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network, "cidr": "10.1.0.0/24"}})),
        )
        .await;
    let config = format!(
        r#"
[bgp]
host = "bgp-1"
local_as = 65000
router_id = "{ours}"
connect_retry_s = 1
import_route_targets = ["65001:1001"]
[server]
url = "{url}"
token = "{ADMIN}"
[bus]
{bus}
[export]
refresh_s = 3600
[[neighbors]]
address = "{peer}"
remote_as = 65001
local_address = "{ours}"
"#,
        ours = pe.ours(),
        peer = pe.pe(),
        url = server.url,
    );
    let speaker = l2pop::bgp::config::RawConfig::parse(&config, "test")
        .unwrap()
        .validate()
        .unwrap();
    World {
        server,
        network,
        speaker,
        bus,
        _store: store,
    }
}

/// The l2 BGPVPN with FRR's route target on the network, bound to bgp-1's speaker.
async fn associate(world: &World) {
    world
        .server
        .bgpvpn_site(
            &world.network,
            "bgp-1",
            json!({"bgpvpn": {"name": "site", "type": "l2", "route_targets": ["65001:1001"], "vni": 1001}}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frr_installs_our_hosts_and_ports_and_follows_port_changes() {
    if !support::frr_can_run() {
        return;
    }
    let pe = pe(0, false, Vec::new());
    let world = world(&pe, 0).await;
    let (server, network) = (&world.server, &world.network);
    // compute-1 with VM1 before the speaker starts (it comes with the first snapshot).
    port_up(server, network, "compute-1", "192.0.2.1", VM1).await;
    associate(&world).await;
    let shutdown = CancellationToken::new();
    let speaker = tokio::spawn(l2pop::bgp::run(world.speaker.clone(), shutdown.clone()));

    // FRR received compute-1's type-3 (PMSI IR) and VM1's type-2, and programmed them.
    wait_for(&pe, "compute-1's routes in FRR's RIB", |pe| {
        has_route(pe, "multicast", "192.0.2.1") && has_route(pe, "macip", VM1.0)
    })
    .await;
    wait_for(&pe, "FRR programs our VTEP and VM1", |pe| {
        let fdb = pe.fdb();
        fdb.contains("00:00:00:00:00:00 dst 192.0.2.1")
            && fdb.contains(&format!("{} dst 192.0.2.1", VM1.0))
    })
    .await;
    wait_for(&pe, "FRR's neighbour entry for VM1 on the SVI", |pe| {
        pe.neigh().contains(&format!("{} lladdr {}", VM1.1, VM1.0))
    })
    .await;
    // Nothing learned from the site is exported back: under our RD, only our hosts.
    let ours = pe.show("show bgp l2vpn evpn route rd 65000:1001");
    assert!(ours.contains("192.0.2.1"), "{ours}");
    assert!(
        !ours.contains(PE_VTEP),
        "the site's own routes came back: {ours}"
    );

    // FRR sends our routes back over eBGP (AS path 65001 65000): they are loops, never
    // learned, so no host gets one of our own VTEPs as a site gateway.
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    for network in fdb["fdb"]["networks"].as_array().unwrap() {
        for vtep in network["vteps"].as_array().unwrap() {
            let from_site = vtep["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["source"] == json!({"extension": "bgpvpn"}));
            assert!(!from_site || vtep["vtep"] == PE_VTEP, "{vtep}");
        }
    }

    // A port that comes up now reaches FRR through the fanout stream.
    let vm2 = port_up(server, network, "compute-2", "192.0.2.2", VM2).await;
    let took = wait_for(&pe, "VM2 and compute-2 programmed in FRR", |pe| {
        let fdb = pe.fdb();
        fdb.contains(&format!("{} dst 192.0.2.2", VM2.0))
            && fdb.contains("00:00:00:00:00:00 dst 192.0.2.2")
    })
    .await;
    eprintln!("port up → FRR's kernel FDB: {took:?}");

    // The port deleted: the type-2 and (its host's last port) the type-3 are withdrawn.
    server
        .admin(Method::DELETE, &format!("/v2.0/ports/{vm2}"), None)
        .await;
    let took = wait_for(&pe, "VM2 and compute-2 withdrawn at FRR", |pe| {
        let fdb = pe.fdb();
        !has_route(pe, "macip", VM2.0) && !fdb.contains(VM2.0) && !fdb.contains("dst 192.0.2.2")
    })
    .await;
    eprintln!("port delete → withdrawn from FRR's kernel FDB: {took:?}");
    assert!(pe.fdb().contains(&format!("{} dst 192.0.2.1", VM1.0)));

    shutdown.cancel();
    speaker.await.unwrap().unwrap();
    // The session is gone: FRR drops our routes.
    wait_for(&pe, "our routes gone after the speaker stopped", |pe| {
        !pe.fdb().contains("dst 192.0.2.1")
    })
    .await;
    world.server.stop().await;
}

/// Issue 11 item 5: a VM behind our agent (compute host namespace, VTEP 192.0.2.1 on a link
/// to the PE) pings a device behind FRR (a namespace on FRR's bridge) through the two VTEPs,
/// and the underlay carries no ARP broadcast either way: our agent answers the VM's ARP from
/// the device's type-2 route, the PE's kernel answers the device's ARP from ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_behind_our_agent_pings_a_device_behind_frr_without_arp_broadcasts() {
    if !support::frr_can_run() {
        return;
    }
    const DEVICE: (&str, &str) = ("02:00:00:00:01:01", "10.1.0.50");
    // The device: a namespace on FRR's bridge, its MAC and IP known to the PE's SVI.
    let device = Device {
        port: "dev1".to_owned(),
        mac: DEVICE.0.to_owned(),
        ip: DEVICE.1.parse().ok(),
        ns: Some(format!("l2x{}1-d", std::process::id() % 100_000)),
    };
    let mut pe = pe(1, true, vec![device]);
    let (compute, vm) = (sibling(&pe, "c"), sibling(&pe, "v"));
    pe.adopt(&vm);
    let world = world(&pe, 1).await;
    associate(&world).await;
    let port = world
        .server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(
                json!({"port": {"network_id": world.network, "mac_address": VM1.0,
                                  "fixed_ips": [{"ip_address": VM1.1}],
                                  "binding:host_id": "compute-1", "device_owner": "compute:nova"}}),
            ),
        )
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_owned();
    // The VM: a namespace whose veth peer is the port's tap on the compute host.
    sh(&format!(
        "ip netns add {vm}
         ip -n {vm} link add eth0 address {mac} type veth peer name tap{tap} netns {compute}
         ip -n {vm} addr add {ip}/24 dev eth0; ip -n {vm} link set eth0 up; ip -n {vm} link set lo up
         ip -n {compute} link set tap{tap} up",
        mac = VM1.0,
        ip = VM1.1,
        tap = &port_id[..11],
    ));

    let shutdown = CancellationToken::new();
    let agent = l2pop::agent::config::RawConfig::parse(
        &format!(
            "[agent]\nhost = \"compute-1\"\nlocal_ip = \"192.0.2.1\"\nnetns = \"{compute}\"\n\
             status_listen = \"\"\nscan_interval_ms = 200\n[bus]\nbackend = \"rabbit\"\n{}\n",
            world.bus
        ),
        "test",
    )
    .unwrap()
    .validate()
    .unwrap();
    let agent = tokio::spawn(l2pop::agent::run(agent, shutdown.clone()));
    let speaker = tokio::spawn(l2pop::bgp::run(world.speaker.clone(), shutdown.clone()));

    // Converged: our agent has the device's ARP entry (from FRR's type-2), FRR our VM's.
    let neighbours = || sh_quiet(&format!("ip -n {compute} neigh show"));
    wait_for(&pe, "the device's ARP entry on the compute host", |_| {
        neighbours()
            .lines()
            .any(|l| l.starts_with(&format!("{} ", DEVICE.1)) && l.contains(DEVICE.0))
    })
    .await;
    wait_for(&pe, "FRR's neighbour entry for the VM", |pe| {
        pe.neigh().contains(&format!("{} lladdr {}", VM1.1, VM1.0))
            && pe.fdb().contains(&format!("{} dst 192.0.2.1", VM1.0))
    })
    .await;

    let capture_dir = tempfile::tempdir().unwrap();
    let capture =
        l2pop::demo::capture::Capture::start(std::slice::from_ref(&compute), capture_dir.path())
            .unwrap();
    let ping = sh_quiet(&format!("ip netns exec {vm} ping -c 3 -W 2 {}", DEVICE.1));
    let frames = capture.stop().unwrap().remove(0).1;
    assert!(
        ping.contains(" 0% packet loss"),
        "{ping}\n{}\n--- compute neigh\n{}",
        pe.diagnostics(),
        neighbours()
    );
    eprintln!(
        "{} VXLAN frames on compute-1's underlay; {}",
        frames.len(),
        ping.lines()
            .find(|l| l.contains("packet loss"))
            .unwrap_or("")
    );
    let vtep = |ip: &str| ip.parse::<std::net::Ipv4Addr>().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.src == vtep("192.0.2.1") && f.dst == vtep(PE_VTEP)),
        "the pings crossed the underlay as VXLAN: {frames:?}"
    );
    let from_us = l2pop::demo::capture::arp_broadcasts_from(&frames, vtep("192.0.2.1"));
    let from_site = l2pop::demo::capture::arp_broadcasts_from(&frames, vtep(PE_VTEP));
    assert_eq!(
        (from_us, from_site),
        (0, 0),
        "ARP broadcasts on the underlay: {frames:?}"
    );

    shutdown.cancel();
    speaker.await.unwrap().unwrap();
    agent.await.unwrap().unwrap();
    world.server.stop().await;
}

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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use support::{ADMIN, TestServer};
use tokio_util::sync::CancellationToken;

const FRR: &str = "/usr/lib/frr";
const PE_VTEP: &str = "203.0.113.10";
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

/// The PE in its namespace, joined to the root namespace by a veth; removed on drop.
struct Pe {
    ns: String,
    host_if: String,
    dir: PathBuf,
    run_dir: PathBuf,
    subnet: u8,
}

impl Pe {
    fn create() -> Pe {
        let id = std::process::id();
        let subnet = (id % 100) as u8 + 20;
        let ns = format!("l2x{}-pe", id % 100_000);
        let pe = Pe {
            host_if: format!("l2x{}h", id % 100_000),
            run_dir: PathBuf::from(format!("/var/run/frr/{ns}")),
            dir: std::env::temp_dir().join(format!("l2pop-bgp-export-{id}")),
            ns,
            subnet,
        };
        pe.build();
        pe
    }

    fn ours(&self) -> String {
        format!("198.18.{}.1", self.subnet)
    }

    fn peer(&self) -> String {
        format!("198.18.{}.2", self.subnet)
    }

    fn exec(&self, command: &str) -> String {
        sh(&format!("ip netns exec {} {command}", self.ns))
    }

    fn build(&self) {
        let (ns, host_if, ours, peer) = (&self.ns, &self.host_if, self.ours(), self.peer());
        let far = format!("{}p", &host_if[..host_if.len() - 1]);
        sh(&format!(
            "ip netns add {ns}
             ip link add {host_if} type veth peer name {far}
             ip link set {far} netns {ns}
             ip addr add {ours}/24 dev {host_if}; ip link set {host_if} up
             ip -n {ns} link set lo up
             ip -n {ns} addr add {peer}/24 dev {far}; ip -n {ns} link set {far} up
             ip -n {ns} addr add {PE_VTEP}/32 dev lo
             ip -n {ns} route add 192.0.2.0/24 via {ours}
             ip -n {ns} link add br1001 type bridge
             ip -n {ns} link add vxlan1001 type vxlan id 1001 local {PE_VTEP} dstport 4789 nolearning
             ip -n {ns} link set vxlan1001 master br1001
             ip -n {ns} link set vxlan1001 type bridge_slave neigh_suppress on learning off
             ip -n {ns} link set vxlan1001 up; ip -n {ns} link set br1001 up
             ip -n {ns} addr add 10.1.0.1/24 dev br1001"
        ));
        std::fs::create_dir_all(&self.dir).unwrap();
        std::fs::create_dir_all(&self.run_dir).unwrap();
        std::fs::write(self.dir.join("zebra.conf"), "hostname pe-zebra\n").unwrap();
        std::fs::write(
            self.dir.join("bgpd.conf"),
            format!(
                "hostname pe-bgpd
log file {log}
router bgp 65001
 bgp router-id {PE_VTEP}
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 neighbor {ours} remote-as 65000
 neighbor {ours} timers 3 9
 neighbor {ours} timers connect 1
 neighbor {ours} advertisement-interval 0
 address-family l2vpn evpn
  neighbor {ours} activate
  advertise-all-vni
  vni 1001
   rd {PE_VTEP}:1001
   route-target both 65001:1001
  exit-vni
 exit-address-family
",
                log = self.dir.join("bgpd.log").display()
            ),
        )
        .unwrap();
        sh(&format!(
            "chown -R frr:frr {} {}",
            self.dir.display(),
            self.run_dir.display()
        ));
        for daemon in ["zebra", "bgpd"] {
            let d = self.dir.display();
            self.exec(&format!(
                "{FRR}/{daemon} -d -N {ns} -f {d}/{daemon}.conf -i {d}/{daemon}.pid -z {d}/zserv.api --vty_socket {d} -A 127.0.0.1",
                ns = self.ns
            ));
        }
    }

    fn vtysh(&self, command: &str) -> String {
        sh_quiet(&format!(
            "vtysh --vty_socket {} -c '{command}'",
            self.dir.display()
        ))
    }

    fn fdb(&self) -> String {
        sh_quiet(&format!(
            "ip netns exec {} bridge fdb show dev vxlan1001",
            self.ns
        ))
    }

    fn neigh(&self) -> String {
        sh_quiet(&format!(
            "ip netns exec {} ip neigh show dev br1001",
            self.ns
        ))
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- show bgp l2vpn evpn summary\n{}\n--- show bgp l2vpn evpn\n{}\n--- bridge fdb\n{}\n--- ip neigh\n{}\n--- bgpd.log\n{}",
            self.vtysh("show bgp l2vpn evpn summary"),
            self.vtysh("show bgp l2vpn evpn"),
            self.fdb(),
            self.neigh(),
            support::file_tail(&self.dir.join("bgpd.log"), 30),
        )
    }
}

impl Drop for Pe {
    fn drop(&mut self) {
        for daemon in ["bgpd", "zebra"] {
            if let Some(pid) = std::fs::read_to_string(self.dir.join(format!("{daemon}.pid")))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = std::fs::remove_dir_all(&self.run_dir);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn can_run() -> bool {
    if !l2pop::demo::is_root() {
        eprintln!("skipped: the FRR export test needs root (network namespaces, FRR daemons)");
        return false;
    }
    if !Path::new(FRR).join("bgpd").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "FRR is not installed ({FRR}/bgpd): scripts/services installs it"
        );
        eprintln!("skipped: FRR is not installed (apt-get install -y frr)");
        return false;
    }
    true
}

/// Polls `check` until it holds; fails with the PE's state after `WAIT`. Returns how long it took.
async fn wait_for(pe: &Pe, what: &str, check: impl Fn(&Pe) -> bool) -> Duration {
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

fn has_route(pe: &Pe, kind: &str, needle: &str) -> bool {
    pe.vtysh(&format!("show bgp l2vpn evpn route type {kind} json"))
        .contains(needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frr_installs_our_hosts_and_ports_and_follows_port_changes() {
    if !can_run() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("l2pop=info")),
        )
        .try_init();
    let pe = Pe::create();
    let id = std::process::id();
    let topic = format!("l2pop-export-{id}");
    let rpc_topic = format!("l2pop-export-rpc-{id}");
    let amqp = support::amqp_url();
    let bus = format!(
        "backend = \"rabbit\"\nurl = \"{amqp}\"\ntopic = \"{topic}\"\nrpc_topic = \"{rpc_topic}\""
    );
    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&support::config(
        &format!("sqlite:{}", store.path().join("l2pop.db").display()),
        &bus,
    ))
    .await;

    // compute-1 with VM1 before the speaker starts (it comes with the first snapshot).
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
    port_up(&server, &network, "compute-1", "192.0.2.1", VM1).await;
    server
        .bgpvpn_site(
            &network,
            "bgp-1",
            json!({"bgpvpn": {"name": "site", "type": "l2", "route_targets": ["65001:1001"], "vni": 1001}}),
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
url = "{amqp}"
topic = "{topic}"
rpc_topic = "{rpc_topic}"
[export]
refresh_s = 3600
[[neighbors]]
address = "{peer}"
remote_as = 65001
local_address = "{ours}"
"#,
        ours = pe.ours(),
        peer = pe.peer(),
        url = server.url,
    );
    let settings = l2pop::bgp::config::RawConfig::parse(&config, "test")
        .unwrap()
        .validate()
        .unwrap();
    let shutdown = CancellationToken::new();
    let speaker = tokio::spawn(l2pop::bgp::run(settings, shutdown.clone()));

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
    let ours = pe.vtysh("show bgp l2vpn evpn route rd 65000:1001");
    assert!(ours.contains("192.0.2.1"), "{ours}");
    assert!(
        !ours.contains(PE_VTEP),
        "the site's own routes came back: {ours}"
    );

    // A port that comes up now reaches FRR through the fanout stream.
    let vm2 = port_up(&server, &network, "compute-2", "192.0.2.2", VM2).await;
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
    server.stop().await;
}

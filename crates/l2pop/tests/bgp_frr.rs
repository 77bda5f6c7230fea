//! `l2pop bgp` against a real FRR (zebra + bgpd, Debian package `frr`) in a network namespace:
//! FRR is the VPN site's PE/VTEP (`advertise-all-vni`, VNI 1001, two devices behind its
//! bridge); our speaker, in-process, peers with it over a veth pair and reports to an
//! in-process l2pop server. The site's gateway VTEP and both device MACs must appear in a
//! compute host's full FDB for the network associated with the BGPVPN whose route target FRR
//! uses; killing bgpd must take them out again (case 6b), and a new bgpd bring them back;
//! stopping the speaker takes them out for good. Twice: our speaker connecting, and our speaker
//! passive with FRR connecting to its listener.
//!
//! Needs root: skipped with a message otherwise. Needs FRR (`apt-get install -y frr`,
//! scripts/services installs it): skipped when absent, except under CI=true, where it fails.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, TestServer};
use tokio_util::sync::CancellationToken;

const FRR: &str = "/usr/lib/frr";
const VTEP: &str = "203.0.113.10";
const DEVICE_1: (&str, &str) = ("02:00:00:00:01:01", "10.1.0.50");
const DEVICE_2: &str = "02:00:00:00:01:02";
const WAIT: Duration = Duration::from_secs(90);

fn run(args: &[&str]) {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run_quiet(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
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

/// The PE: a namespace, a veth to the root namespace, FRR's files; removed on drop.
struct Site {
    ns: String,
    host_if: String,
    dir: PathBuf,
    run_dir: PathBuf,
    /// 198.18.N.0/24: .1 is our speaker (root namespace), .2 the PE.
    subnet: u8,
}

impl Site {
    /// `variant` tells apart the sites of the tests that run at once; with `listen_port`
    /// FRR connects to our speaker there (and we wait for it).
    fn create(variant: u8, listen_port: Option<u16>) -> Site {
        let id = std::process::id();
        let subnet = (id % 100) as u8 + 20 + 100 * variant;
        let name = format!("l2e{}{variant}", id % 100_000);
        let ns = format!("{name}-pe");
        let dir = std::env::temp_dir().join(format!("l2pop-bgp-frr-{id}-{variant}"));
        let site = Site {
            host_if: format!("{name}h"),
            run_dir: PathBuf::from(format!("/var/run/frr/{ns}")),
            ns,
            dir,
            subnet,
        };
        site.build(listen_port);
        site
    }

    fn ours(&self) -> String {
        format!("198.18.{}.1", self.subnet)
    }

    fn pe(&self) -> String {
        format!("198.18.{}.2", self.subnet)
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(args);
        run(&full);
    }

    fn build(&self, listen_port: Option<u16>) {
        let ns = self.ns.as_str();
        run(&["ip", "netns", "add", ns]);
        let peer_if = format!("{}p", &self.host_if[..self.host_if.len() - 1]);
        run(&[
            "ip",
            "link",
            "add",
            &self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer_if,
        ]);
        run(&["ip", "link", "set", &peer_if, "netns", ns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.ours()),
            "dev",
            &self.host_if,
        ]);
        run(&["ip", "link", "set", &self.host_if, "up"]);
        self.exec(&["ip", "link", "set", "lo", "up"]);
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.pe()),
            "dev",
            &peer_if,
        ]);
        self.exec(&["ip", "link", "set", &peer_if, "up"]);
        // The VTEP, its VNI 1001 in a bridge with an SVI, two devices behind it: device 1
        // with its IP in the SVI's neighbour table (MAC+IP route), device 2 MAC only.
        self.exec(&["ip", "addr", "add", &format!("{VTEP}/32"), "dev", "lo"]);
        self.exec(&["ip", "link", "add", "br1001", "type", "bridge"]);
        self.exec(&[
            "ip",
            "link",
            "add",
            "vxlan1001",
            "type",
            "vxlan",
            "id",
            "1001",
            "local",
            VTEP,
            "dstport",
            "4789",
            "nolearning",
        ]);
        self.exec(&["ip", "link", "set", "vxlan1001", "master", "br1001"]);
        self.exec(&[
            "ip",
            "link",
            "set",
            "vxlan1001",
            "type",
            "bridge_slave",
            "neigh_suppress",
            "on",
            "learning",
            "off",
        ]);
        for (port, mac) in [("dev1", DEVICE_1.0), ("dev2", DEVICE_2)] {
            let far = format!("{port}x");
            self.exec(&[
                "ip", "link", "add", port, "type", "veth", "peer", "name", &far,
            ]);
            self.exec(&["ip", "link", "set", port, "master", "br1001"]);
            self.exec(&["ip", "link", "set", port, "up"]);
            self.exec(&["ip", "link", "set", &far, "up"]);
            self.exec(&["bridge", "fdb", "add", mac, "dev", port, "master", "static"]);
        }
        self.exec(&["ip", "link", "set", "vxlan1001", "up"]);
        self.exec(&["ip", "link", "set", "br1001", "up"]);
        self.exec(&["ip", "addr", "add", "10.1.0.1/24", "dev", "br1001"]);
        self.exec(&[
            "ip",
            "neigh",
            "add",
            DEVICE_1.1,
            "lladdr",
            DEVICE_1.0,
            "dev",
            "br1001",
            "nud",
            "permanent",
        ]);

        std::fs::create_dir_all(&self.dir).unwrap();
        std::fs::create_dir_all(&self.run_dir).unwrap();
        std::fs::write(self.dir.join("zebra.conf"), "hostname pe-zebra\n").unwrap();
        let ours = self.ours();
        let port = listen_port
            .map(|p| format!(" neighbor {ours} port {p}\n"))
            .unwrap_or_default();
        std::fs::write(
            self.dir.join("bgpd.conf"),
            format!(
                "hostname pe-bgpd
log file {log}
router bgp 65001
 bgp router-id {VTEP}
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 neighbor {ours} remote-as 65000
 neighbor {ours} timers 3 9
 neighbor {ours} timers connect 1
 neighbor {ours} advertisement-interval 0
{port} address-family l2vpn evpn
  neighbor {ours} activate
  advertise-all-vni
  vni 1001
   rd {VTEP}:1001
   route-target both 65001:1001
  exit-vni
 exit-address-family
",
                log = self.dir.join("bgpd.log").display()
            ),
        )
        .unwrap();
        run(&["chown", "-R", "frr:frr", self.dir.to_str().unwrap()]);
        run(&["chown", "-R", "frr:frr", self.run_dir.to_str().unwrap()]);
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn start(&self, daemon: &str) {
        let binary = format!("{FRR}/{daemon}");
        let config = self.path(&format!("{daemon}.conf"));
        let pid = self.path(&format!("{daemon}.pid"));
        let zserv = self.path("zserv.api");
        let vty = self.dir.display().to_string();
        self.exec(&[
            &binary,
            "-d",
            "-N",
            &self.ns,
            "-f",
            &config,
            "-i",
            &pid,
            "-z",
            &zserv,
            "--vty_socket",
            &vty,
            "-A",
            "127.0.0.1",
        ]);
    }

    fn pid(&self, daemon: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.pid")))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    fn kill(&self, daemon: &str) {
        if let Some(pid) = self.pid(daemon) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            // Wait until it is gone, so that a restart does not race its exit.
            let proc = PathBuf::from(format!("/proc/{pid}"));
            let started = Instant::now();
            while proc.exists() && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(self.dir.join(format!("{daemon}.pid")));
        }
    }

    /// What FRR and the kernel say, for failure messages.
    fn diagnostics(&self) -> String {
        let vty = self.dir.display().to_string();
        let show = |cmd: &str| run_quiet(&["vtysh", "--vty_socket", &vty, "-c", cmd]);
        format!(
            "--- show bgp l2vpn evpn summary\n{}\n--- show bgp l2vpn evpn\n{}\n--- show evpn vni\n{}\n--- bridge fdb\n{}\n--- bgpd.log (tail)\n{}",
            show("show bgp l2vpn evpn summary"),
            show("show bgp l2vpn evpn"),
            show("show evpn vni"),
            run_quiet(&[
                "ip",
                "netns",
                "exec",
                &self.ns,
                "bridge",
                "fdb",
                "show",
                "dev",
                "vxlan1001"
            ]),
            support::file_tail(&self.dir.join("bgpd.log"), 30),
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill("bgpd");
        self.kill("zebra");
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

/// Skips (returns false) when not root, or FRR is absent outside CI; fails under CI=true.
fn can_run() -> bool {
    if !l2pop::demo::is_root() {
        eprintln!("skipped: the FRR interop test needs root (network namespaces, FRR daemons)");
        return false;
    }
    if !Path::new(FRR).join("bgpd").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "FRR is not installed ({FRR}/bgpd): scripts/services installs it (apt-get install -y frr)"
        );
        eprintln!("skipped: FRR is not installed (apt-get install -y frr)");
        return false;
    }
    true
}

/// The server side: compute-1 with an active port on the vxlan network 1001, the l2 BGPVPN
/// with FRR's route target associated with it, and BGP agent bgp-1 hosting a speaker bound to
/// the BGPVPN.
async fn neutron(server: &TestServer) {
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/agents",
            Some(json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": true}})),
        )
        .await;
    let network = server
        .admin(
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": "net1", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
        )
        .await;
    let network_id = network["network"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": network_id, "cidr": "10.1.0.0/24"}})),
        )
        .await;
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network_id, "name": "vm1", "mac_address": "fa:16:3e:00:00:01",
                                  "binding:host_id": "compute-1", "device_owner": "compute:nova"}})),
        )
        .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{port_id}/up"),
            Some(json!({"device": {"host": "compute-1"}})),
        )
        .await;
    server
        .bgpvpn_site(
            &network_id,
            "bgp-1",
            json!({"bgpvpn": {"name": "site", "type": "l2", "route_targets": ["65001:1001"], "vni": 1001}}),
        )
        .await;
}

/// compute-1's entries under the site's VTEP, as `[mac, ip]` pairs (empty if none).
async fn site_entries(server: &TestServer) -> Vec<(String, String)> {
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    fdb["fdb"]["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["segment_id"] == 1001)
        .flat_map(|n| n["vteps"].as_array().cloned().unwrap_or_default())
        .filter(|v| v["vtep"] == VTEP)
        .flat_map(|v| v["entries"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["mac_address"].as_str().unwrap_or_default().to_owned(),
                e["ip_address"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn bgp_agent_alive(server: &TestServer) -> Option<bool> {
    let agents = server.admin(Method::GET, "/v2.0/agents", None).await;
    agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["host"] == "bgp-1")
        .and_then(|a| a["alive"].as_bool())
}

fn has_site(entries: &[(String, String)]) -> bool {
    let has = |mac: &str, ip: &str| entries.iter().any(|(m, i)| m == mac && i == ip);
    has("00:00:00:00:00:00", "0.0.0.0") && has(DEVICE_1.0, DEVICE_1.1) && has(DEVICE_2, "0.0.0.0")
}

/// Polls until `done(entries, alive)`; on timeout fails with what the server and FRR hold.
async fn wait_for(
    server: &TestServer,
    site: &Site,
    what: &str,
    done: impl Fn(&[(String, String)], Option<bool>) -> bool,
) {
    let started = Instant::now();
    loop {
        let entries = site_entries(server).await;
        let alive = bgp_agent_alive(server).await;
        if done(&entries, alive) {
            return;
        }
        if started.elapsed() > WAIT {
            panic!(
                "{what}: not reached; compute-1 holds {entries:?} for {VTEP}, bgp-1 alive {alive:?}\n{}",
                site.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frr_site_gateway_and_devices_reach_the_fdb_and_leave_with_the_session() {
    scenario(0, false).await;
}

/// The same with our speaker passive: FRR connects to our listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_when_frr_connects_to_a_passive_speaker() {
    scenario(1, true).await;
}

async fn scenario(variant: u8, passive: bool) {
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
    // A port on our side of the veth (198.18.N.1), free a moment ago.
    let listen_port = passive.then(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    });
    let site = Site::create(variant, listen_port);
    site.start("zebra");
    site.start("bgpd");

    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start(&format!(
        "sqlite:{}",
        store.path().join("l2pop.db").display()
    ))
    .await;
    neutron(&server).await;

    let config = format!(
        r#"
[bgp]
host = "bgp-1"
local_as = 65000
router_id = "{ours}"
connect_retry_s = 1
import_route_targets = ["65001:1001"]
{listen}
[server]
url = "{url}"
token = "{ADMIN}"
[[neighbors]]
address = "{pe}"
remote_as = 65001
local_address = "{ours}"
passive = {passive}
"#,
        listen = listen_port
            .map(|p| format!("listen = \"{}:{p}\"", site.ours()))
            .unwrap_or_default(),
        ours = site.ours(),
        pe = site.pe(),
        url = server.url,
    );
    let settings = l2pop::bgp::config::RawConfig::parse(&config, "test")
        .unwrap()
        .validate()
        .unwrap();
    let shutdown = CancellationToken::new();
    let speaker = tokio::spawn(l2pop::bgp::run(settings, shutdown.clone()));

    wait_for(&server, &site, "gateway and devices learned", |e, alive| {
        has_site(e) && alive == Some(true)
    })
    .await;
    // Nothing but the site's own entries under its VTEP, from the bgpvpn extension.
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    let sources: Vec<&Value> = fdb["fdb"]["networks"][0]["vteps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["vtep"] == VTEP)
        .flat_map(|v| v["entries"].as_array().unwrap())
        .map(|e| &e["source"])
        .collect();
    assert!(
        sources
            .iter()
            .all(|s| **s == json!({"extension": "bgpvpn"})),
        "{sources:?}"
    );

    // Session flap: bgpd dies, the session drops, the agent goes down (case 6b) and the
    // site's entries leave compute-1's FDB.
    site.kill("bgpd");
    wait_for(
        &server,
        &site,
        "entries removed after bgpd died",
        |e, alive| e.is_empty() && alive == Some(false),
    )
    .await;
    // A new bgpd: the session comes back and so do the entries.
    site.start("bgpd");
    wait_for(
        &server,
        &site,
        "entries back with the new bgpd",
        |e, alive| has_site(e) && alive == Some(true),
    )
    .await;

    // Stop: the agent reports itself down and its entries go (case 6b).
    shutdown.cancel();
    speaker.await.unwrap().unwrap();
    wait_for(&server, &site, "entries removed at stop", |e, alive| {
        e.is_empty() && alive == Some(false)
    })
    .await;
    server.stop().await;
}

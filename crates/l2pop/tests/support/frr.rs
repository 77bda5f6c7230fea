//! A VPN site's PE for the FRR interop tests: FRR (zebra + bgpd) in a network namespace with a
//! VXLAN VTEP (VNI 1001) and two devices behind its bridge, reached over a veth pair.
//! A copy of `bgp_frr.rs`'s site with extra `router bgp` lines (graceful restart), kept apart
//! so that the two test files change independently; `bgp_frr.rs` can move to it.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const FRR: &str = "/usr/lib/frr";
pub const VTEP: &str = "203.0.113.10";
pub const DEVICE_1: (&str, &str) = ("02:00:00:00:01:01", "10.1.0.50");
pub const DEVICE_2: &str = "02:00:00:00:01:02";
pub const WAIT: Duration = Duration::from_secs(90);

pub fn run(args: &[&str]) {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn run_quiet(args: &[&str]) -> String {
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
pub struct Site {
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
    pub fn create(variant: u8, listen_port: Option<u16>) -> Site {
        Site::create_with(variant, listen_port, "")
    }

    /// `extra` goes into `router bgp` (e.g. graceful restart settings).
    pub fn create_with(variant: u8, listen_port: Option<u16>, extra: &str) -> Site {
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
        site.build(listen_port, extra);
        site
    }

    pub fn ours(&self) -> String {
        format!("198.18.{}.1", self.subnet)
    }

    pub fn pe(&self) -> String {
        format!("198.18.{}.2", self.subnet)
    }

    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(args);
        run(&full);
    }

    fn build(&self, listen_port: Option<u16>, extra: &str) {
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
{extra} no bgp default ipv4-unicast
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

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn start(&self, daemon: &str) {
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

    pub fn pid(&self, daemon: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.pid")))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    pub fn kill(&self, daemon: &str) {
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

    /// Our side of the veth up or down: while down, no BGP session can be (re)established.
    pub fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        run(&["ip", "link", "set", &self.host_if, state]);
    }

    /// A `vtysh` show command's output.
    pub fn show(&self, command: &str) -> String {
        let vty = self.dir.display().to_string();
        run_quiet(&["vtysh", "--vty_socket", &vty, "-c", command])
    }

    /// What FRR and the kernel say, for failure messages.
    pub fn diagnostics(&self) -> String {
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
            super::support::file_tail(&self.dir.join("bgpd.log"), 30),
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
pub fn can_run() -> bool {
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

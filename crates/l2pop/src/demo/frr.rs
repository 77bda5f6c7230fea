//! A VPN site's PE/VTEP run by FRR (zebra + bgpd, Debian package `frr`) in a network
//! namespace: a VXLAN device and a bridge for one VNI (`advertise-all-vni`), devices behind
//! the bridge, and a veth from the root namespace over which our speaker peers with bgpd.
//!
//! One builder for the demo's site and the FRR interop tests (`bgp_frr`, `bgp_graceful`,
//! `bgp_export`): their differences are [`SiteOptions`] fields. Built with iproute2 like the
//! rest of the demo's topology; FRR's files (configs, pid files, vty sockets, bgpd's log)
//! live in [`SiteOptions::dir`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::topology::{check_in, run_in};

/// Where Debian's `frr` package puts the daemons.
pub const FRR_DIR: &str = "/usr/lib/frr";

/// The test site's VTEP (on the PE's loopback).
pub const TEST_VTEP: &str = "203.0.113.10";
/// The test site's device 1: its MAC and IP (a MAC+IP route).
pub const TEST_DEVICE_1: (&str, &str) = ("02:00:00:00:01:01", "10.1.0.50");
/// The test site's device 2: a MAC only (a MAC route).
pub const TEST_DEVICE_2: &str = "02:00:00:00:01:02";

/// Whether zebra and bgpd are installed.
pub fn installed() -> bool {
    ["zebra", "bgpd"]
        .iter()
        .all(|d| Path::new(FRR_DIR).join(d).exists())
}

/// One device behind the site's bridge.
#[derive(Clone, Debug)]
pub struct Device {
    /// The bridge port (a veth end in the site's namespace).
    pub port: String,
    pub mac: String,
    /// With an IP the site knows it in the SVI's neighbour table (FRR sends a MAC+IP route).
    pub ip: Option<Ipv4Addr>,
    /// A namespace of its own holding the veth's other end as `eth0` with the MAC and IP;
    /// None leaves that end (`{port}x`) in the site's namespace, up.
    pub ns: Option<String>,
}

/// What to build. [`SiteOptions::test`] gives the interop tests' site.
#[derive(Clone, Debug)]
pub struct SiteOptions {
    /// The site's namespace.
    pub ns: String,
    /// Create the namespace (and delete it on drop); false: it exists (the demo's, on its
    /// underlay).
    pub create_ns: bool,
    /// FRR's configs, pid files, vty sockets and log.
    pub dir: PathBuf,
    /// The peering veth's end in the root namespace (at most 14 bytes: its peer is named
    /// like it with a trailing `p`).
    pub host_if: String,
    /// Our speaker's address on the peering veth (root namespace), /24.
    pub ours: Ipv4Addr,
    /// bgpd's address on the peering veth.
    pub pe: Ipv4Addr,
    pub vtep: Ipv4Addr,
    /// Put the VTEP address on the namespace's loopback (false: it is already on a link).
    pub vtep_on_loopback: bool,
    pub vni: u32,
    pub bridge: String,
    pub vxlan: String,
    /// The bridge's address (the SVI): where zebra keeps the neighbours of MAC+IP routes.
    pub svi: (Ipv4Addr, u8),
    pub devices: Vec<Device>,
    /// FRR's AS and ours.
    pub local_as: u32,
    pub remote_as: u32,
    /// The VNI's route target, both ways.
    pub route_target: String,
    /// FRR connects to our speaker at this port too (for a passive speaker).
    pub listen_port: Option<u16>,
    /// Lines added to `router bgp` (e.g. graceful restart).
    pub extra_bgp: String,
}

impl SiteOptions {
    /// The interop tests' site: `tag` and `variant` tell apart the tests that run at once
    /// (with the process id): namespace `l2{tag}{pid}{variant}-pe`, peering 198.18.N.0/24,
    /// VTEP [`TEST_VTEP`] on loopback, VNI 1001 (AS 65001, route target 65001:1001) with the
    /// SVI 10.1.0.1/24 and devices 1 and 2 on ports `dev1` and `dev2`.
    pub fn test(tag: &str, variant: u8) -> SiteOptions {
        let id = std::process::id();
        let subnet = (id % 100) as u8 + 20 + 100 * variant;
        let name = format!("l2{tag}{}{variant}", id % 100_000);
        let device = |port: &str, mac: &str, ip: Option<&str>| Device {
            port: port.to_owned(),
            mac: mac.to_owned(),
            ip: ip.and_then(|ip| ip.parse().ok()),
            ns: None,
        };
        SiteOptions {
            ns: format!("{name}-pe"),
            create_ns: true,
            dir: std::env::temp_dir().join(format!("l2pop-frr-{tag}-{id}-{variant}")),
            host_if: format!("{name}h"),
            ours: Ipv4Addr::new(198, 18, subnet, 1),
            pe: Ipv4Addr::new(198, 18, subnet, 2),
            vtep: TEST_VTEP.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            vtep_on_loopback: true,
            vni: 1001,
            bridge: "br1001".to_owned(),
            vxlan: "vxlan1001".to_owned(),
            svi: (Ipv4Addr::new(10, 1, 0, 1), 24),
            devices: vec![
                device("dev1", TEST_DEVICE_1.0, Some(TEST_DEVICE_1.1)),
                device("dev2", TEST_DEVICE_2, None),
            ],
            local_as: 65001,
            remote_as: 65000,
            route_target: "65001:1001".to_owned(),
            listen_port: None,
            extra_bgp: String::new(),
        }
    }

    /// bgpd's configuration: eBGP to our speaker, l2vpn evpn with `advertise-all-vni` and the
    /// VNI's RD and route target.
    pub fn bgpd_conf(&self) -> String {
        let SiteOptions {
            ours,
            vtep,
            vni,
            local_as,
            remote_as,
            route_target,
            extra_bgp,
            ..
        } = self;
        let port = self
            .listen_port
            .map(|p| format!(" neighbor {ours} port {p}\n"))
            .unwrap_or_default();
        let extra = if extra_bgp.is_empty() || extra_bgp.ends_with('\n') {
            extra_bgp.clone()
        } else {
            format!("{extra_bgp}\n")
        };
        format!(
            "hostname pe-bgpd
log file {log}
router bgp {local_as}
 bgp router-id {vtep}
{extra} no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 neighbor {ours} remote-as {remote_as}
 neighbor {ours} timers 3 9
 neighbor {ours} timers connect 1
 neighbor {ours} advertisement-interval 0
{port} address-family l2vpn evpn
  neighbor {ours} activate
  advertise-all-vni
  vni {vni}
   rd {vtep}:{vni}
   route-target both {route_target}
  exit-vni
 exit-address-family
",
            log = self.dir.join("bgpd.log").display()
        )
    }
}

/// A built site; its daemons start with [`Site::start`]. Dropping it stops them and removes
/// the namespaces it created (and those it [adopted](Site::adopt)), the peering veth and
/// FRR's run folder, unless [`Site::leave_up`] was called.
#[derive(Debug)]
pub struct Site {
    options: SiteOptions,
    run_dir: PathBuf,
    adopted: Vec<String>,
    leave_up: bool,
    keep_files: bool,
}

impl Site {
    /// Builds the namespace's links, the VNI, the devices and FRR's files; starts nothing.
    pub fn create(options: SiteOptions) -> anyhow::Result<Site> {
        let site = Site {
            run_dir: PathBuf::from(format!("/var/run/frr/{}", options.ns)),
            options,
            adopted: Vec::new(),
            leave_up: false,
            keep_files: false,
        };
        site.build()?;
        Ok(site)
    }

    pub fn options(&self) -> &SiteOptions {
        &self.options
    }

    pub fn ns(&self) -> &str {
        &self.options.ns
    }

    /// Our speaker's address on the peering link.
    pub fn ours(&self) -> String {
        self.options.ours.to_string()
    }

    /// bgpd's address on the peering link.
    pub fn pe(&self) -> String {
        self.options.pe.to_string()
    }

    /// A file in FRR's folder.
    pub fn path(&self, name: &str) -> String {
        self.options.dir.join(name).display().to_string()
    }

    /// Runs a command in the site's namespace; its stdout.
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<String> {
        check_in(Some(&self.options.ns), args)
    }

    /// Deletes namespace `ns` with the site (a test's compute host or VM beside it).
    pub fn adopt(&mut self, ns: &str) {
        self.adopted.push(ns.to_owned());
    }

    /// Leaves everything up when dropped (the demo's `--keep`; its clean-up removes it).
    pub fn leave_up(&mut self) {
        self.leave_up = true;
    }

    /// Keeps FRR's folder (configs, bgpd's log) when dropped: the demo keeps a failed run's.
    pub fn keep_files(&mut self) {
        self.keep_files = true;
    }

    fn build(&self) -> anyhow::Result<()> {
        let o = &self.options;
        let ns = o.ns.as_str();
        if o.create_ns {
            check_in(None, &["ip", "netns", "add", ns])?;
            self.exec(&["ip", "link", "set", "lo", "up"])?;
        }
        let peer_if = format!("{}p", o.host_if);
        check_in(
            None,
            &[
                "ip", "link", "add", &o.host_if, "type", "veth", "peer", "name", &peer_if, "netns",
                ns,
            ],
        )?;
        check_in(
            None,
            &[
                "ip",
                "addr",
                "add",
                &format!("{}/24", o.ours),
                "dev",
                &o.host_if,
            ],
        )?;
        check_in(None, &["ip", "link", "set", &o.host_if, "up"])?;
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", o.pe),
            "dev",
            &peer_if,
        ])?;
        self.exec(&["ip", "link", "set", &peer_if, "up"])?;
        if o.vtep_on_loopback {
            self.exec(&["ip", "addr", "add", &format!("{}/32", o.vtep), "dev", "lo"])?;
        }
        // The VNI: a VXLAN device without learning in a bridge, ARP/ND suppressed on it
        // (the bridge answers from the SVI's neighbours that zebra installs).
        self.exec(&["ip", "link", "add", &o.bridge, "type", "bridge"])?;
        self.exec(&[
            "ip",
            "link",
            "add",
            &o.vxlan,
            "type",
            "vxlan",
            "id",
            &o.vni.to_string(),
            "local",
            &o.vtep.to_string(),
            "dstport",
            &super::topology::VXLAN_PORT.to_string(),
            "nolearning",
        ])?;
        self.exec(&["ip", "link", "set", &o.vxlan, "master", &o.bridge])?;
        self.exec(&[
            "ip",
            "link",
            "set",
            &o.vxlan,
            "type",
            "bridge_slave",
            "neigh_suppress",
            "on",
            "learning",
            "off",
        ])?;
        for device in &o.devices {
            self.build_device(device)?;
        }
        self.exec(&["ip", "link", "set", &o.vxlan, "up"])?;
        self.exec(&["ip", "link", "set", &o.bridge, "up"])?;
        let (svi, len) = o.svi;
        self.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{svi}/{len}"),
            "dev",
            &o.bridge,
        ])?;
        for device in &o.devices {
            if let Some(ip) = device.ip {
                self.exec(&[
                    "ip",
                    "neigh",
                    "replace",
                    &ip.to_string(),
                    "lladdr",
                    &device.mac,
                    "dev",
                    &o.bridge,
                    "nud",
                    "permanent",
                ])?;
            }
        }
        self.write_files()
    }

    /// A device's veth on the bridge, its MAC static on the port (FRR advertises it before
    /// any traffic).
    fn build_device(&self, device: &Device) -> anyhow::Result<()> {
        let o = &self.options;
        let port = device.port.as_str();
        match &device.ns {
            Some(dev_ns) => {
                check_in(None, &["ip", "netns", "add", dev_ns])?;
                let dev = Some(dev_ns.as_str());
                // A quiet device: no IPv6 router solicitations or DAD on the VNI.
                let _ = run_in(dev, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
                let _ = run_in(
                    dev,
                    &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
                );
                check_in(dev, &["ip", "link", "set", "lo", "up"])?;
                check_in(
                    dev,
                    &[
                        "ip",
                        "link",
                        "add",
                        "eth0",
                        "address",
                        &device.mac,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        port,
                        "netns",
                        &o.ns,
                    ],
                )?;
                if let Some(ip) = device.ip {
                    check_in(
                        dev,
                        &[
                            "ip",
                            "addr",
                            "add",
                            &format!("{ip}/{}", o.svi.1),
                            "dev",
                            "eth0",
                        ],
                    )?;
                }
                check_in(dev, &["ip", "link", "set", "eth0", "up"])?;
            }
            None => {
                let far = format!("{port}x");
                self.exec(&[
                    "ip", "link", "add", port, "type", "veth", "peer", "name", &far,
                ])?;
                self.exec(&["ip", "link", "set", &far, "up"])?;
            }
        }
        self.exec(&["ip", "link", "set", port, "master", &o.bridge])?;
        self.exec(&["ip", "link", "set", port, "up"])?;
        self.exec(&[
            "bridge",
            "fdb",
            "replace",
            &device.mac,
            "dev",
            port,
            "master",
            "static",
        ])?;
        Ok(())
    }

    fn write_files(&self) -> anyhow::Result<()> {
        let dir = &self.options.dir;
        for folder in [dir, &self.run_dir] {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        std::fs::write(dir.join("zebra.conf"), "hostname pe-zebra\n")?;
        std::fs::write(dir.join("bgpd.conf"), self.options.bgpd_conf())?;
        // The daemons drop to the frr user.
        for folder in [dir, &self.run_dir] {
            check_in(
                None,
                &["chown", "-R", "frr:frr", &folder.display().to_string()],
            )?;
        }
        Ok(())
    }

    /// Starts `zebra` or `bgpd` (daemonized, in the site's namespace); its pid.
    pub fn start(&self, daemon: &str) -> anyhow::Result<u32> {
        let binary = format!("{FRR_DIR}/{daemon}");
        let config = self.path(&format!("{daemon}.conf"));
        let pid = self.path(&format!("{daemon}.pid"));
        let zserv = self.path("zserv.api");
        let vty = self.options.dir.display().to_string();
        self.exec(&[
            &binary,
            "-d",
            "-N",
            &self.options.ns,
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
        ])?;
        match self.pid(daemon) {
            Some(pid) => Ok(pid),
            None => bail!("{daemon} started but wrote no pid file {pid}"),
        }
    }

    /// The daemon's pid, from its pid file.
    pub fn pid(&self, daemon: &str) -> Option<u32> {
        std::fs::read_to_string(self.options.dir.join(format!("{daemon}.pid")))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// kill -9 of a daemon, waiting until it is gone (so that a restart does not race its
    /// exit).
    pub fn kill(&self, daemon: &str) {
        if let Some(pid) = self.pid(daemon) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let proc = PathBuf::from(format!("/proc/{pid}"));
            let started = Instant::now();
            while proc.exists() && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(self.options.dir.join(format!("{daemon}.pid")));
        }
    }

    /// Our end of the peering veth up or down: while down, no session can be (re)established.
    pub fn link(&self, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        check_in(None, &["ip", "link", "set", &self.options.host_if, state])?;
        Ok(())
    }

    /// The command line that asks this site's FRR `command` (for `--keep`'s help).
    pub fn vtysh_command(&self, command: &str) -> String {
        format!(
            "vtysh --vty_socket {} -c '{command}'",
            self.options.dir.display()
        )
    }

    /// A `vtysh` show command's output (with its errors).
    pub fn show(&self, command: &str) -> String {
        let vty = self.options.dir.display().to_string();
        quiet(None, &["vtysh", "--vty_socket", &vty, "-c", command])
    }

    /// `bridge fdb show dev VXLAN` in the site.
    pub fn fdb(&self) -> String {
        quiet(
            Some(&self.options.ns),
            &["bridge", "fdb", "show", "dev", &self.options.vxlan],
        )
    }

    /// `ip neigh show dev BRIDGE` in the site (the SVI's neighbours).
    pub fn neigh(&self) -> String {
        quiet(
            Some(&self.options.ns),
            &["ip", "neigh", "show", "dev", &self.options.bridge],
        )
    }

    /// What FRR and the kernel say, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- show bgp l2vpn evpn summary\n{}\n--- show bgp l2vpn evpn\n{}\n--- show evpn vni\n{}\n--- bridge fdb\n{}\n--- ip neigh\n{}\n--- bgpd.log (tail)\n{}",
            self.show("show bgp l2vpn evpn summary"),
            self.show("show bgp l2vpn evpn"),
            self.show("show evpn vni"),
            self.fdb(),
            self.neigh(),
            tail(&self.options.dir.join("bgpd.log"), 30),
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if self.leave_up {
            return;
        }
        self.kill("bgpd");
        self.kill("zebra");
        let o = &self.options;
        let mut namespaces: Vec<&str> = self.adopted.iter().map(String::as_str).collect();
        namespaces.extend(o.devices.iter().filter_map(|d| d.ns.as_deref()));
        if o.create_ns {
            namespaces.push(&o.ns);
        }
        for ns in namespaces {
            let _ = run_in(None, &["ip", "netns", "del", ns]);
        }
        let _ = run_in(None, &["ip", "link", "del", &o.host_if]);
        let _ = std::fs::remove_dir_all(&self.run_dir);
        if !self.keep_files && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&o.dir);
        }
    }
}

/// A command's stdout and stderr, whatever its status.
fn quiet(ns: Option<&str>, args: &[&str]) -> String {
    run_in(ns, args)
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_else(|e| format!("<{e:#}>"))
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

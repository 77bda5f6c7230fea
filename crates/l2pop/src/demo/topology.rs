//! The demo's machines, as network namespaces on this one: an underlay switch, compute hosts,
//! VMs (one namespace each, wired to their host by a veth whose host end is named like
//! Neutron's tap), and an external BGP VPN site (a gateway VTEP in front of two devices).
//!
//! Built with iproute2 (`ip`, `bridge`): the harness is not the product, and iproute2 is the
//! independent implementation the checks compare the agent's netlink work against. Every
//! name starts with the run's prefix, so that [`cleanup`] finds what a killed run left.

use std::net::Ipv4Addr;
use std::process::{Command, Output};

use anyhow::{Context as _, bail};

/// The UDP port of VXLAN (IANA).
pub const VXLAN_PORT: u16 = 4789;

/// Runs `ip netns exec NS ARGS...` (or the command itself when `ns` is None).
pub fn run_in(ns: Option<&str>, args: &[&str]) -> anyhow::Result<Output> {
    let mut command = match ns {
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns]);
            command.args(args);
            command
        }
        None => {
            let mut command = Command::new(args[0]);
            command.args(&args[1..]);
            command
        }
    };
    command
        .output()
        .with_context(|| format!("cannot run {}", args.join(" ")))
}

/// Like [`run_in`], failing unless the command succeeds.
pub fn check_in(ns: Option<&str>, args: &[&str]) -> anyhow::Result<String> {
    let output = run_in(ns, args)?;
    if !output.status.success() {
        bail!(
            "{}{}: {}",
            ns.map(|n| format!("[{n}] ")).unwrap_or_default(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The namespaces of this machine whose names start with `prefix-`.
pub fn namespaces(prefix: &str) -> Vec<String> {
    let Ok(output) = run_in(None, &["ip", "netns", "list"]) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&format!("{prefix}-")))
        .map(str::to_owned)
        .collect()
}

/// Deletes every namespace of the prefix (their veths, bridges and VXLAN devices go with
/// them). Returns how many there were.
pub fn cleanup(prefix: &str) -> usize {
    let found = namespaces(prefix);
    for ns in &found {
        // Deleting the name is enough: a capture left inside keeps nothing alive.
        let _ = run_in(None, &["ip", "netns", "del", ns]);
    }
    found.len()
}

/// One compute host.
#[derive(Clone, Debug)]
pub struct HostSpec {
    pub name: String,
    pub ns: String,
    pub vtep: Ipv4Addr,
}

/// One VM: its namespace, and the port the server gave it.
#[derive(Clone, Debug)]
pub struct VmSpec {
    pub name: String,
    pub ns: String,
    pub host: usize,
    pub tap: String,
    pub port_id: String,
    pub mac: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub vni: u32,
}

impl VmSpec {
    /// VM `number` of the demo's naming (`vm<number>` in namespace `<prefix>-vm<number>`) on
    /// `host`, behind `port` (a port view as the API answers it: its tap, MAC and first IPv4
    /// address) on a network of VNI `vni`.
    pub fn of_port(
        prefix: &str,
        number: usize,
        host: usize,
        port: &serde_json::Value,
        prefix_len: u8,
        vni: u32,
    ) -> anyhow::Result<VmSpec> {
        let id = port["id"].as_str().unwrap_or_default().to_owned();
        let ip: Ipv4Addr = port["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .context("the server gave the port no IPv4 address")?;
        Ok(VmSpec {
            name: format!("vm{number}"),
            ns: format!("{prefix}-vm{number}"),
            host,
            tap: l2pop_dataplane::tap_name(&id),
            port_id: id,
            mac: port["mac_address"].as_str().unwrap_or_default().to_owned(),
            ip,
            prefix_len,
            vni,
        })
    }
}

/// The external site: a gateway VTEP with devices behind it on one VNI.
#[derive(Clone, Debug)]
pub struct SiteSpec {
    pub ns: String,
    pub vtep: Ipv4Addr,
    pub vni: u32,
    /// (namespace, MAC, IP) of each device.
    pub devices: Vec<(String, String, Ipv4Addr)>,
    pub prefix_len: u8,
}

/// The underlay: one switch (a bridge in its own namespace), 192.0.2.0/24.
pub fn underlay_ns(prefix: &str) -> String {
    format!("{prefix}-ul")
}

fn add_ns(ns: &str) -> anyhow::Result<()> {
    check_in(None, &["ip", "netns", "add", ns])?;
    check_in(Some(ns), &["ip", "link", "set", "lo", "up"])?;
    // Quiet VMs and hosts: no IPv6 router solicitations or DAD on the demo's links.
    let _ = run_in(
        Some(ns),
        &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    );
    let _ = run_in(
        Some(ns),
        &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
    );
    Ok(())
}

/// Creates the underlay switch.
pub fn build_underlay(prefix: &str) -> anyhow::Result<()> {
    let ul = underlay_ns(prefix);
    add_ns(&ul)?;
    check_in(Some(&ul), &["ip", "link", "add", "sw", "type", "bridge"])?;
    check_in(Some(&ul), &["ip", "link", "set", "sw", "up"])?;
    Ok(())
}

/// Plugs namespace `ns` into the underlay as `eth0` with `addr`/24; `port` names the switch
/// port (at most 15 bytes).
pub fn plug_underlay(prefix: &str, ns: &str, port: &str, addr: Ipv4Addr) -> anyhow::Result<()> {
    let ul = underlay_ns(prefix);
    check_in(
        Some(&ul),
        &[
            "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    check_in(
        Some(&ul),
        &["ip", "link", "set", port, "master", "sw", "up"],
    )?;
    check_in(
        Some(ns),
        &["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"],
    )?;
    check_in(Some(ns), &["ip", "link", "set", "eth0", "up"])?;
    Ok(())
}

/// Creates a compute host's namespace on the underlay.
pub fn build_host(prefix: &str, host: &HostSpec, index: usize) -> anyhow::Result<()> {
    add_ns(&host.ns)?;
    plug_underlay(prefix, &host.ns, &format!("h{index}"), host.vtep)
}

/// Creates a VM: its namespace with `eth0` (the port's MAC and IP), wired to its host by a
/// veth whose host end is the port's tap name, left down for the agent to wire.
pub fn build_vm(vm: &VmSpec, host: &HostSpec) -> anyhow::Result<()> {
    build_vm_namespace(vm)?;
    plug_vm(vm, host)
}

/// The first half of [`build_vm`]: the VM's namespace alone, not yet plugged into its host
/// (the agent benchmark times the plug on its own).
pub fn build_vm_namespace(vm: &VmSpec) -> anyhow::Result<()> {
    add_ns(&vm.ns)
}

/// The second half of [`build_vm`]: the veth (its host end, the tap, appears in the host at
/// once, down), then the VM's address and link.
pub fn plug_vm(vm: &VmSpec, host: &HostSpec) -> anyhow::Result<()> {
    check_in(
        Some(&vm.ns),
        &[
            "ip", "link", "add", "eth0", "address", &vm.mac, "type", "veth", "peer", "name",
            &vm.tap, "netns", &host.ns,
        ],
    )?;
    check_in(
        Some(&vm.ns),
        &[
            "ip",
            "addr",
            "add",
            &format!("{}/{}", vm.ip, vm.prefix_len),
            "dev",
            "eth0",
        ],
    )?;
    check_in(Some(&vm.ns), &["ip", "link", "set", "eth0", "up"])?;
    Ok(())
}

/// Creates the external site: the gateway namespace on the underlay with a VXLAN device and a
/// bridge, and one namespace per device behind it. What a BGP EVPN gateway would learn of
/// our side (VM MACs behind compute VTEPs, the flood list) is programmed by
/// [`program_site`].
pub fn build_site(prefix: &str, site: &SiteSpec) -> anyhow::Result<()> {
    build_site_namespace(prefix, site)?;
    let ns = Some(site.ns.as_str());
    check_in(ns, &["ip", "link", "add", "br0", "type", "bridge"])?;
    check_in(
        ns,
        &[
            "ip",
            "link",
            "add",
            "vxlan0",
            "type",
            "vxlan",
            "id",
            &site.vni.to_string(),
            "local",
            &site.vtep.to_string(),
            "dstport",
            &VXLAN_PORT.to_string(),
            "nolearning",
            "proxy",
        ],
    )?;
    check_in(ns, &["ip", "link", "set", "vxlan0", "master", "br0", "up"])?;
    check_in(ns, &["ip", "link", "set", "br0", "up"])?;
    for (index, (dev_ns, mac, ip)) in site.devices.iter().enumerate() {
        add_ns(dev_ns)?;
        let port = format!("d{index}");
        check_in(
            ns,
            &[
                "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", dev_ns,
            ],
        )?;
        check_in(ns, &["ip", "link", "set", &port, "master", "br0", "up"])?;
        let dev = Some(dev_ns.as_str());
        check_in(dev, &["ip", "link", "set", "eth0", "address", mac])?;
        check_in(
            dev,
            &[
                "ip",
                "addr",
                "add",
                &format!("{ip}/{}", site.prefix_len),
                "dev",
                "eth0",
            ],
        )?;
        check_in(dev, &["ip", "link", "set", "eth0", "up"])?;
    }
    Ok(())
}

/// The site's namespace on the underlay with the gateway VTEP's address: the part of
/// [`build_site`] that the site run by FRR shares (FRR's builder adds the rest).
pub fn build_site_namespace(prefix: &str, site: &SiteSpec) -> anyhow::Result<()> {
    add_ns(&site.ns)?;
    plug_underlay(prefix, &site.ns, "site", site.vtep)
}

/// Programs the gateway's tables the way EVPN would: flood to each compute VTEP with a port
/// on the VPN's network, each VM's MAC behind its VTEP, and its IP in the ARP proxy.
pub fn program_site(
    site: &SiteSpec,
    vteps: &[Ipv4Addr],
    vms: &[(&VmSpec, Ipv4Addr)],
) -> anyhow::Result<()> {
    let ns = Some(site.ns.as_str());
    for vtep in vteps {
        check_in(
            ns,
            &[
                "bridge",
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vxlan0",
                "dst",
                &vtep.to_string(),
            ],
        )?;
    }
    for (vm, vtep) in vms {
        check_in(
            ns,
            &[
                "bridge",
                "fdb",
                "replace",
                &vm.mac,
                "dev",
                "vxlan0",
                "dst",
                &vtep.to_string(),
            ],
        )?;
        check_in(
            ns,
            &[
                "ip",
                "neigh",
                "replace",
                &vm.ip.to_string(),
                "lladdr",
                &vm.mac,
                "dev",
                "vxlan0",
                "nud",
                "permanent",
            ],
        )?;
    }
    Ok(())
}

/// One ping from `ns` to `ip`: true when a reply came back.
pub fn ping(ns: &str, ip: Ipv4Addr) -> bool {
    run_in(
        Some(ns),
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", &ip.to_string()],
    )
    .map(|o| o.status.success())
    .unwrap_or(false)
}

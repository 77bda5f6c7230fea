//! `cargo bench -p l2pop --bench bgp_routes`: the BGP EVPN speaker end to end (issue 11, item
//! 7). Root only; RabbitMQ must be up (`./scripts/services`).
//!
//! Three compute hosts on an underlay switch (the demo's topology functions), the server
//! (SQLite), one `l2pop agent --netns` per host and `l2pop bgp` as child processes on a bus
//! topic of their own; every host has a port and a VM on VXLAN network 1001, which an l2
//! BGPVPN (route target 65001:1001) bound to the speaker's BGP agent is associated with.
//! The bench itself is the VPN site's PE: it accepts the speaker's connection on 127.0.0.1,
//! answers with the OPEN FRR 8.4 sent (the capabilities captured in
//! `reference/environment.md`; iBGP, AS 65000) and then sends pre-encoded UPDATEs, built with
//! the l2pop-evpn codec and packed as FRR packs them (every route sharing the attributes in
//! one UPDATE of at most 4,096 octets): the type-3 route of the gateway VTEP 203.0.113.10 and
//! `L2POP_BENCH_ROUTES` (default 100,000) type-2 MAC+IP routes behind it (VNI 1001 as label,
//! the BGPVPN's route target, next hop the gateway), then End-of-RIB.
//!
//! **Import.** The clock starts when the first UPDATE is written and stops when every host's
//! kernel holds every entry the agent programs for them: the gateway's flooding entry and one
//! unicast FDB entry per device on `vxlan-1001`, and the device's ARP-proxy neighbour. Each
//! kernel is watched by `ip -n NS monitor neigh` (lines timestamped as they are read).
//! **Floor**, same run, same hosts, measured first with the agents paused (SIGSTOP): decode the
//! same UPDATEs with the same codec, write the `bridge -batch` (flood entry, `fdb replace` per
//! device) and `ip -batch` (`neigh replace`) files of exactly those entries, and run them into
//! the three hosts in parallel, stopped by the same monitors; then the entries are deleted
//! and the agents resumed. Ratio = import ÷ floor; goal ≤ 2×.
//!
//! **Learned**: first UPDATE written → the server acknowledged the last learned route (the
//! speaker's reporter logs every acknowledged request at debug level with its route count;
//! the log's timestamps are read). **Exported**: 100 fake hosts registered, then
//! `L2POP_BENCH_ROUTES` ports created and made active on a second network (VNI 1002) of the
//! same BGPVPN through the API (32 requests in flight) → the bench's peer has received all their
//! type-2 NLRI from our speaker; against a floor of encoding the same routes with the codec.
//!
//! Environment: `L2POP_BENCH_ROUTES` (default 100000), `L2POP_BENCH_AMQP_URL`,
//! `L2POP_BENCH_KEEP_LOGS=1`. Nothing asserts on time: a missed goal is printed.

#[path = "support/e2e.rs"]
mod e2e;
#[path = "../../l2pop-engine/benches/support/report.rs"]
mod report;

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use e2e::{
    ADMIN, Api, DEFAULT_AMQP, Seen, Setup, check_rabbit, cpu_ticks, create_remote_ports,
    env_number, fake_host, interrupt_cleanup, is_root, start_monitors, wait_tables,
};
use l2pop::demo::topology::{self, HostSpec};
use l2pop_evpn::codec::{self, ExportSession, Framer, WireMessage};
use l2pop_evpn::export::{ExportDiff, ExportPath, Origin, auto_rd, rd_of};
use l2pop_evpn::rib::{Rd, RouteKey};
use l2pop_model::{Mac, NetworkId};
use report::{fmt_ratio, thousands};
use serde_json::json;

const HOSTS: usize = 3;
const VNI: u32 = 1001;
const EXPORT_VNI: u32 = 1002;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const ROUTE_TARGET: &str = "65001:1001";
const SITE_TARGET: l2pop_bgpvpn::RouteTarget = l2pop_bgpvpn::RouteTarget::As2 {
    asn: 65001,
    number: 1001,
};
const LOCAL_AS: u32 = 65000;
const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const FAKE_HOSTS: u64 = 100;
/// FRR 8.4's OPEN (AS 65000, hold 180, identifier 192.0.2.11; MP L2VPN/EVPN, route refresh,
/// 4-octet AS, ADD-PATH receive, FQDN, graceful restart), from `reference/environment.md`.
const FRR_OPEN: &str = "ffffffffffffffffffffffffffffffff00620104fde800b4c000020b450206010400190046020280000202020002024600020641040000fde8020206000206450400194601020a4908066f76667272310002044002c0780209470700194680000000";
/// Linux's USER_HZ.
const TICKS_PER_SECOND: f64 = 100.0;

fn main() -> ExitCode {
    if !is_root() {
        eprintln!("bgp_routes bench skipped: needs root (network namespaces)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bgp_routes: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let amqp = std::env::var("L2POP_BENCH_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP.to_owned());
    let routes = env_number("L2POP_BENCH_ROUTES", 100_000)? as usize;
    if routes == 0 || routes > 4_000_000 {
        bail!("L2POP_BENCH_ROUTES={routes}: between 1 and 4000000");
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_l2pop"));
    if !exe.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p l2pop` (cargo bench builds it)",
            exe.display()
        );
    }
    check_rabbit(&amqp)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let prefix = format!("bg{}", std::process::id());
    interrupt_cleanup(vec![prefix.clone()]);
    let setup = Setup::new(&exe, &amqp, &prefix)?;
    println!(
        "bgp_routes: {HOSTS} hosts, {} type-2 routes, prefix {prefix}",
        thousands(routes as u64)
    );

    // The deployment: hosts, agents, a port per host, the BGPVPN on networks 1001 and 1002.
    let api = setup.start_server()?;
    let hosts = setup.build_hosts(HOSTS)?;
    let mut agents = Vec::new();
    for host in &hosts {
        agents.push(setup.start_agent(host)?);
        api.wait_agents(&[host.name.as_str()], &setup)?;
    }
    let network = api.network(VNI, "10.0.0.0/16")?;
    let export_network = api.network(EXPORT_VNI, "10.64.0.0/12")?;
    let mut vms = Vec::new();
    for host in 0..HOSTS {
        let vm = api.port(&setup.prefix, network, host, &hosts, host + 1, VNI)?;
        topology::build_vm(&vm, &hosts[host])?;
        vms.push(vm);
    }
    wait_tables(&runtime, &hosts, &vms, VNI, Duration::from_secs(60))?;
    for h in 0..FAKE_HOSTS {
        let vtep = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 1)) + h as u32);
        api.post(
            "/v2.0/l2pop/agents",
            json!({"agent": {"host": fake_host(h), "tunneling_ip": vtep.to_string(), "tunnel_types": ["vxlan"], "start_flag": true}}),
        )?;
    }
    bgpvpn_site(&api, &[(network, VNI), (export_network, EXPORT_VNI)])?;

    // The speaker, and the bench's peer it connects to.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let peer_port = listener.local_addr()?.port();
    let speaker = start_speaker(&setup, &api, peer_port)?;
    let peer = Peer::accept(&listener, &setup)?;
    println!("bgp_routes: session up; our speaker exports our hosts' ports to the bench's peer");

    let site = site_updates(routes);
    let bytes: usize = site.iter().map(Vec::len).sum();
    println!(
        "bgp_routes: {} UPDATEs ({} octets) for 1 type-3 and {} type-2 routes",
        thousands(site.len() as u64),
        thousands(bytes as u64),
        thousands(routes as u64)
    );
    let monitors = start_monitors(&setup, &hosts)?;

    // The floor, with the agents paused so that nothing else touches the tables.
    signal(&agents, "-STOP")?;
    let floor = floor(&setup, &hosts, &site, routes, &monitors);
    let resumed = signal(&agents, "-CONT");
    let floor = floor?;
    resumed?;
    std::thread::sleep(Duration::from_secs(1));

    // The system: the UPDATEs go out; the agents program the hosts.
    while monitors.try_recv().is_ok() {}
    let mut tally = Tally::new(HOSTS, routes);
    let pids: Vec<u32> = [speaker, api_pid(&setup)]
        .into_iter()
        .chain(agents.iter().copied())
        .collect();
    let cpu_before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let wall_start = SystemTime::now();
    let start = Instant::now();
    peer.send_all(&site)?;
    let sent = start.elapsed();
    let limit = Duration::from_secs(300).max(Duration::from_millis(routes as u64 * 10));
    tally.wait(&monitors, &hosts, start + limit, "the agents")?;
    let import_dumped = tally.dumped;
    let import = tally.last.saturating_duration_since(start);
    let cpu = cpu_since(&pids, &cpu_before);
    let learned = learned_at(&setup, routes + 1, wall_start, Duration::from_secs(30))?;

    // Export: ports on the second network → the peer holds their type-2 routes.
    let export_rd = auto_rd(
        Origin {
            asn: LOCAL_AS,
            router_id: ROUTER_ID,
        },
        EXPORT_VNI,
    );
    peer.expect(export_rd, routes);
    let cpu_before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let start = Instant::now();
    runtime.block_on(create_remote_ports(
        &api.base,
        export_network,
        routes as u64,
        FAKE_HOSTS,
    ))?;
    let created = start.elapsed();
    let exported = peer
        .wait_expected(start + limit + Duration::from_secs(600))
        .with_context(|| format!("speaker log:\n{}", setup.log_tail("bgp")))?
        .saturating_duration_since(start);
    let export_cpu = cpu_since(&pids, &cpu_before);
    let encode = encode_floor(routes);
    peer.stop();

    let outcome = Outcome {
        routes,
        floor,
        sent,
        import,
        import_dumped,
        learned,
        cpu,
        created,
        exported,
        export_cpu,
        encode,
    };
    outcome.print();
    Ok(())
}

/// CPU seconds each of `pids` used since `before` was read.
fn cpu_since(pids: &[u32], before: &[u64]) -> Vec<f64> {
    pids.iter()
        .zip(before)
        .map(|(p, b)| cpu_ticks(*p).saturating_sub(*b) as f64 / TICKS_PER_SECOND)
        .collect()
}

/// The server's pid (the phase's child named `server`).
fn api_pid(setup: &Setup) -> u32 {
    setup
        .children
        .borrow()
        .iter()
        .find(|(role, _)| role == "server")
        .map_or(0, |(_, child)| child.id())
}

fn signal(pids: &[u32], signal: &str) -> anyhow::Result<()> {
    for pid in pids {
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
    }
    Ok(())
}

/// One l2 BGPVPN with the site's route target per `(network, VNI)` (a BGPVPN's VNI must be
/// its networks'), each bound to bgp-1's speaker, as networking-bgpvpn and
/// neutron-dynamic-routing set them up.
fn bgpvpn_site(api: &Api, networks: &[(NetworkId, u32)]) -> anyhow::Result<()> {
    let agent = api.call(
        reqwest::Method::PUT,
        "/v2.0/l2pop/bgp-agents/bgp-1",
        Some(json!({"bgp_agent": {"start_flag": true}})),
    )?;
    let agent_id = agent["agent"]["id"].as_str().unwrap_or_default().to_owned();
    let speaker = api.post(
        "/v2.0/bgp-speakers",
        json!({"bgp_speaker": {"name": "speaker", "local_as": LOCAL_AS}}),
    )?;
    let speaker_id = speaker["bgp_speaker"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.post(
        &format!("/v2.0/agents/{agent_id}/bgp-drinstances"),
        json!({"bgp_speaker_id": speaker_id}),
    )?;
    for (network, vni) in networks {
        let vpn = api.post(
            "/v2.0/bgpvpn/bgpvpns",
            json!({"bgpvpn": {"name": format!("site-{vni}"), "type": "l2", "route_targets": [ROUTE_TARGET], "vni": vni}}),
        )?;
        let vpn_id = vpn["bgpvpn"]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("BGPVPN create answered without an id: {vpn}"))?
            .to_owned();
        api.post(
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}/network_associations"),
            json!({"network_association": {"network_id": network.to_string()}}),
        )?;
        api.call(
            reqwest::Method::PUT,
            &format!("/v2.0/bgp-speakers/{speaker_id}/add_bgp_vpn"),
            Some(json!({"bgpvpn_id": vpn_id})),
        )?;
    }
    Ok(())
}

/// Starts `l2pop bgp` as BGP agent bgp-1, connecting to the bench's peer on `port`; its pid.
fn start_speaker(setup: &Setup, api: &Api, port: u16) -> anyhow::Result<u32> {
    let config = setup.dir.join("bgp.toml");
    std::fs::write(
        &config,
        format!(
            "[bgp]\nhost = \"bgp-1\"\nlocal_as = {LOCAL_AS}\nrouter_id = \"{ROUTER_ID}\"\n\
             connect_retry_s = 1\ngraceful_restart_time_s = 0\n\
             import_route_targets = [\"{ROUTE_TARGET}\"]\n\
             [server]\nurl = \"{}\"\ntoken = \"{ADMIN}\"\n\
             [bus]\nurl = \"{}\"\ntopic = \"{}\"\nrpc_topic = \"{}\"\n\
             [export]\nrefresh_s = 3600\n\
             [[neighbors]]\naddress = \"127.0.0.1\"\nremote_as = {LOCAL_AS}\nport = {port}\n\
             local_address = \"127.0.0.1\"\n",
            api.base, setup.amqp, setup.topic, setup.rpc_topic
        ),
    )?;
    setup.spawn(
        "bgp",
        Command::new(&setup.exe)
            .args(["bgp", "--config", &config.display().to_string()])
            .env("RUST_LOG", "info,l2pop::bgp::report=debug")
            .env("NO_COLOR", "1"),
    )
}

/// The site's routes as FRR would send them: the gateway's type 3, then the type 2s, then
/// End-of-RIB.
fn site_updates(routes: usize) -> Vec<Vec<u8>> {
    let rd = rd_of(ROUTE_TARGET_RD);
    let path = ExportPath {
        next_hop: IpAddr::V4(GATEWAY),
        vni: VNI,
        route_targets: [SITE_TARGET].into(),
        local_pref: None,
    };
    let mut diff = ExportDiff::default();
    diff.announce.push((
        RouteKey::Imet {
            rd,
            ethernet_tag: 0,
            originator: IpAddr::V4(GATEWAY),
        },
        path.clone(),
    ));
    for k in 0..routes {
        let (mac, ip) = device(k);
        diff.announce.push((
            RouteKey::MacIp {
                rd,
                ethernet_tag: 0,
                mac,
                ip: Some(IpAddr::V4(ip)),
            },
            path.clone(),
        ));
    }
    let mut out = codec::export_updates(&diff, &session());
    out.push(codec::end_of_rib());
    out
}

/// The site PE's RD: `<gateway>:<VNI>`, as FRR's automatic RD.
const ROUTE_TARGET_RD: l2pop_bgpvpn::RouteTarget = l2pop_bgpvpn::RouteTarget::Ipv4 {
    address: GATEWAY,
    number: VNI as u16,
};

fn session() -> ExportSession {
    ExportSession {
        local_as: LOCAL_AS,
        ibgp: true,
        four_octet_as: true,
    }
}

/// Device `k`: MAC 02:5e:xx:xx:xx:xx and IP in 100.64.0.0/10.
fn device(k: usize) -> (Mac, Ipv4Addr) {
    let n = k as u32 + 1;
    let [a, b, c, d] = n.to_be_bytes();
    (
        Mac::new([0x02, 0x5e, a, b, c, d]),
        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + n),
    )
}

// ---------------------------------------------------------------------------------------------
// The bench's BGP peer: the site PE.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Received {
    /// Type-2 routes announced to us, by RD.
    mac_ip: HashMap<Rd, HashSet<RouteKey>>,
    expect: Option<(Rd, usize)>,
    reached: Option<Instant>,
    closed: Option<String>,
}

struct Peer {
    writer: Arc<Mutex<TcpStream>>,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
}

impl Peer {
    /// Accepts the speaker's connection and completes the OPEN exchange; then a thread reads
    /// (and decodes) what the speaker sends, and another sends KEEPALIVEs every 20 s.
    fn accept(listener: &TcpListener, setup: &Setup) -> anyhow::Result<Peer> {
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        bail!(
                            "the speaker did not connect within 60 s:\n{}",
                            setup.log_tail("bgp")
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut framer = Framer::default();
        let mut buffer = vec![0u8; 65536];
        let mut opened = false;
        while !opened {
            let n = stream
                .read(&mut buffer)
                .context("reading the speaker's OPEN")?;
            if n == 0 {
                bail!("the speaker closed the connection before its OPEN");
            }
            framer.push(&buffer[..n]);
            while let Some(message) = framer.next_message() {
                match message.map_err(|e| anyhow!("speaker's message: {e:?}"))? {
                    WireMessage::Open(_) => opened = true,
                    other => bail!("expected the speaker's OPEN, got {other:?}"),
                }
            }
        }
        let open = hex(FRR_OPEN)?;
        stream.write_all(&open)?;
        stream.write_all(&codec::keepalive())?;
        stream.set_read_timeout(None)?;
        let reader = stream.try_clone()?;
        let peer = Peer {
            writer: Arc::new(Mutex::new(stream)),
            received: Arc::new(Mutex::new(Received::default())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let received = peer.received.clone();
        std::thread::spawn(move || read_loop(reader, framer, &received));
        let (writer, stop) = (peer.writer.clone(), peer.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..200 {
                    std::thread::sleep(Duration::from_millis(100));
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
                if let Ok(mut w) = writer.lock() {
                    let _ = w.write_all(&codec::keepalive());
                }
            }
        });
        Ok(peer)
    }

    /// Writes `messages`, 64 at a time (KEEPALIVEs may go in between).
    fn send_all(&self, messages: &[Vec<u8>]) -> anyhow::Result<()> {
        for chunk in messages.chunks(64) {
            let bytes: Vec<u8> = chunk.concat();
            let mut writer = self.writer.lock().map_err(|_| anyhow!("writer poisoned"))?;
            writer.write_all(&bytes).context("sending UPDATEs")?;
        }
        Ok(())
    }

    /// From now on, note when `count` type-2 routes of `rd` have been received.
    fn expect(&self, rd: Rd, count: usize) {
        if let Ok(mut r) = self.received.lock() {
            r.expect = Some((rd, count));
            r.reached = None;
        }
    }

    fn wait_expected(&self, deadline: Instant) -> anyhow::Result<Instant> {
        loop {
            {
                let r = self
                    .received
                    .lock()
                    .map_err(|_| anyhow!("peer state poisoned"))?;
                if let Some(at) = r.reached {
                    return Ok(at);
                }
                if let Some(why) = &r.closed {
                    bail!("the session ended: {why}");
                }
                if Instant::now() > deadline {
                    let (rd, want) = r.expect.unwrap_or((Rd([0; 8]), 0));
                    let have = r.mac_ip.get(&rd).map_or(0, HashSet::len);
                    bail!("the peer received {have} of {want} exported type-2 routes of RD {rd}");
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(w) = self.writer.lock() {
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn read_loop(mut stream: TcpStream, mut framer: Framer, received: &Mutex<Received>) {
    let mut buffer = vec![0u8; 1 << 16];
    let why = loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => break "connection closed".to_owned(),
            Ok(n) => n,
            Err(e) => break e.to_string(),
        };
        framer.push(&buffer[..n]);
        let mut closed = None;
        while let Some(message) = framer.next_message() {
            match message {
                Ok(WireMessage::Update(update)) => {
                    let Ok(routes) = codec::evpn_update(&update, true, true) else {
                        continue;
                    };
                    let Ok(mut r) = received.lock() else { return };
                    let at = Instant::now();
                    for (key, _) in routes.announced {
                        if let RouteKey::MacIp { rd, .. } = key {
                            r.mac_ip.entry(rd).or_default().insert(key);
                        }
                    }
                    for key in routes.withdrawn {
                        if let RouteKey::MacIp { rd, .. } = key
                            && let Some(set) = r.mac_ip.get_mut(&rd)
                        {
                            set.remove(&key);
                        }
                    }
                    if r.reached.is_none()
                        && let Some((rd, want)) = r.expect
                        && r.mac_ip.get(&rd).map_or(0, HashSet::len) >= want
                    {
                        r.reached = Some(at);
                    }
                }
                Ok(WireMessage::Notification(n)) => closed = Some(format!("NOTIFICATION {n:?}")),
                Ok(_) => {}
                Err(e) => closed = Some(format!("undecodable message: {e:?}")),
            }
        }
        if let Some(why) = closed {
            break why;
        }
    };
    if let Ok(mut r) = received.lock() {
        r.closed = Some(why);
    }
}

fn hex(text: &str) -> anyhow::Result<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| anyhow!("hex: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Watching the kernels: every host must hold the flooding entry, N FDB entries, N neighbours.
// ---------------------------------------------------------------------------------------------

struct Tally {
    want: usize,
    flood: Vec<bool>,
    fdb: Vec<HashSet<String>>,
    neigh: Vec<HashSet<String>>,
    last: Instant,
    /// Completion was seen in a dump (the monitors had lost lines).
    dumped: bool,
}

impl Tally {
    fn new(hosts: usize, want: usize) -> Tally {
        Tally {
            want,
            flood: vec![false; hosts],
            fdb: vec![HashSet::with_capacity(want); hosts],
            neigh: vec![HashSet::with_capacity(want); hosts],
            last: Instant::now(),
            dumped: false,
        }
    }

    /// `GW dev vxlan-1001 lladdr MAC …` is an FDB entry (the monitor prints `NDA_DST` first),
    /// `100.x.y.z dev vxlan-1001 lladdr MAC …` a device's neighbour.
    fn note(&mut self, seen: &Seen) {
        let line = seen.line.trim_start();
        if line.starts_with("Deleted") || line.starts_with("Miss") {
            return;
        }
        let mut words = line.split_whitespace();
        let (Some(first), Some("dev"), Some(dev), Some("lladdr"), Some(mac)) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            return;
        };
        if dev != "vxlan-1001" {
            return;
        }
        let host = seen.host;
        let new = if first == "203.0.113.10" {
            if mac == "00:00:00:00:00:00" {
                !std::mem::replace(&mut self.flood[host], true)
            } else {
                self.fdb[host].insert(mac.to_owned())
            }
        } else if first.starts_with("100.") {
            self.neigh[host].insert(first.to_owned())
        } else {
            false
        };
        if new {
            self.last = seen.at;
        }
    }

    fn done(&self) -> bool {
        (0..self.flood.len()).all(|h| {
            self.flood[h] && self.fdb[h].len() >= self.want && self.neigh[h].len() >= self.want
        })
    }

    /// Until every host holds everything. The monitors lose lines when a burst overflows
    /// their socket, so after a quiet second the kernels are dumped: when they hold
    /// everything, the last line read is when the last entry arrived (it is read after the
    /// burst that overflowed the buffer, so it is not early).
    fn wait(
        &mut self,
        monitors: &mpsc::Receiver<Seen>,
        hosts: &[HostSpec],
        deadline: Instant,
        who: &str,
    ) -> anyhow::Result<()> {
        let mut progress = false;
        while !self.done() {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                bail!(
                    "{who} did not program every host in time: {}",
                    self.missing()
                );
            };
            match monitors.recv_timeout(wait.min(Duration::from_secs(1))) {
                Ok(seen) => {
                    let before = self.last;
                    self.note(&seen);
                    progress |= self.last != before;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if progress && self.kernels_complete(hosts)? {
                        return Ok(());
                    }
                    progress = false;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the kernel monitors stopped"),
            }
        }
        Ok(())
    }

    /// Dumps every host: the flooding entry, `want` FDB entries and neighbours of the site.
    fn kernels_complete(&mut self, hosts: &[HostSpec]) -> anyhow::Result<bool> {
        let device = l2pop_dataplane::vxlan_name(VNI);
        let gateway = IpAddr::V4(GATEWAY);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for host in hosts {
            let observed = runtime.block_on(async {
                let kernel = l2pop_dataplane::Netlink::connect(Some(&host.ns)).await?;
                anyhow::Ok(kernel.observe().await?)
            })?;
            let fdb = observed.fdb.get(&device);
            let flood = fdb.is_some_and(|f| f.contains(&(Mac::ZERO, gateway)));
            let unicast = fdb.map_or(0, |f| {
                f.iter()
                    .filter(|(m, d)| *d == gateway && !m.is_zero())
                    .count()
            });
            let neighbours = observed.neighbours.get(&device).map_or(0, |n| {
                n.keys()
                    .filter(|ip| matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 100))
                    .count()
            });
            if !(flood && unicast >= self.want && neighbours >= self.want) {
                return Ok(false);
            }
        }
        self.dumped = true;
        Ok(true)
    }

    fn missing(&self) -> String {
        (0..self.flood.len())
            .map(|h| {
                format!(
                    "host {}: flood {}, fdb {}/{}, neigh {}/{}",
                    h + 1,
                    self.flood[h],
                    self.fdb[h].len(),
                    self.want,
                    self.neigh[h].len(),
                    self.want
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

// ---------------------------------------------------------------------------------------------
// The floors.
// ---------------------------------------------------------------------------------------------

struct Floor {
    decode: Duration,
    /// First UPDATE decoded → the last entry seen by the monitors.
    total: Duration,
    /// First UPDATE decoded → the last batch process exited.
    exited: Duration,
    dumped: bool,
}

/// Decode the UPDATEs, `bridge -batch` and `ip -batch` their entries into every host at once,
/// wait for the monitors to see them all; then delete them (not timed).
fn floor(
    setup: &Setup,
    hosts: &[HostSpec],
    site: &[Vec<u8>],
    routes: usize,
    monitors: &mpsc::Receiver<Seen>,
) -> anyhow::Result<Floor> {
    while monitors.try_recv().is_ok() {}
    let mut tally = Tally::new(hosts.len(), routes);
    let dev = l2pop_dataplane::vxlan_name(VNI);
    let start = Instant::now();
    let mut framer = Framer::default();
    for message in site {
        framer.push(message);
    }
    let mut fdb = String::new();
    let mut neigh = String::new();
    let mut undo_fdb = String::new();
    let mut undo_neigh = String::new();
    while let Some(message) = framer.next_message() {
        let WireMessage::Update(update) = message.map_err(|e| anyhow!("{e:?}"))? else {
            continue;
        };
        let decoded = codec::evpn_update(&update, true, true)
            .map_err(|n| anyhow!("the codec refused our UPDATE: {n}"))?;
        for (key, path) in decoded.announced {
            let dst = path.next_hop;
            match key {
                RouteKey::Imet { originator, .. } => {
                    fdb.push_str(&format!(
                        "fdb append 00:00:00:00:00:00 dev {dev} dst {originator} self permanent\n"
                    ));
                    undo_fdb.push_str(&format!(
                        "fdb del 00:00:00:00:00:00 dev {dev} dst {originator} self\n"
                    ));
                }
                RouteKey::MacIp { mac, ip, .. } => {
                    fdb.push_str(&format!(
                        "fdb replace {mac} dev {dev} dst {dst} self permanent\n"
                    ));
                    undo_fdb.push_str(&format!("fdb del {mac} dev {dev} dst {dst} self\n"));
                    if let Some(ip) = ip {
                        neigh.push_str(&format!(
                            "neigh replace {ip} lladdr {mac} dev {dev} nud permanent\n"
                        ));
                        undo_neigh.push_str(&format!("neigh del {ip} dev {dev}\n"));
                    }
                }
            }
        }
    }
    let decode = start.elapsed();
    let files = write_batches(&setup.dir, "floor", &fdb, &neigh)?;
    let exits = run_batches(hosts, &files)?;
    let exited = exits
        .into_iter()
        .max()
        .unwrap_or(start)
        .saturating_duration_since(start);
    tally.wait(
        monitors,
        hosts,
        Instant::now() + Duration::from_secs(600),
        "the floor",
    )?;
    let total = tally.last.saturating_duration_since(start);
    let undo = write_batches(&setup.dir, "undo", &undo_fdb, &undo_neigh)?;
    run_batches(hosts, &undo)?;
    Ok(Floor {
        decode,
        total: total.max(exited),
        exited,
        dumped: tally.dumped,
    })
}

fn write_batches(
    dir: &Path,
    name: &str,
    fdb: &str,
    neigh: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let files = (
        dir.join(format!("{name}-fdb.batch")),
        dir.join(format!("{name}-neigh.batch")),
    );
    std::fs::write(&files.0, fdb)?;
    std::fs::write(&files.1, neigh)?;
    Ok(files)
}

/// `bridge -batch` then `ip -batch` in every host, the hosts in parallel; when each finished.
fn run_batches(hosts: &[HostSpec], files: &(PathBuf, PathBuf)) -> anyhow::Result<Vec<Instant>> {
    let threads: Vec<_> = hosts
        .iter()
        .map(|host| {
            let ns = host.ns.clone();
            let (fdb, neigh) = (files.0.clone(), files.1.clone());
            std::thread::spawn(move || -> anyhow::Result<Instant> {
                for (tool, file) in [("bridge", &fdb), ("ip", &neigh)] {
                    let output = Command::new(tool)
                        .args(["-n", &ns, "-batch", &file.display().to_string()])
                        .output()?;
                    if !output.status.success() {
                        bail!(
                            "{tool} -n {ns} -batch {}: {}",
                            file.display(),
                            String::from_utf8_lossy(&output.stderr)
                        );
                    }
                }
                Ok(Instant::now())
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow!("batch thread panicked"))?)
        .collect()
}

/// Encoding the exported routes with the codec, as the speaker does: the export floor.
fn encode_floor(routes: usize) -> Duration {
    let rd = auto_rd(
        Origin {
            asn: LOCAL_AS,
            router_id: ROUTER_ID,
        },
        EXPORT_VNI,
    );
    let mut diff = ExportDiff::default();
    for k in 0..routes {
        let (mac, ip) = device(k);
        let vtep = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 1)) + (k as u32 % 100));
        diff.announce.push((
            RouteKey::MacIp {
                rd,
                ethernet_tag: 0,
                mac,
                ip: Some(IpAddr::V4(ip)),
            },
            ExportPath {
                next_hop: IpAddr::V4(vtep),
                vni: EXPORT_VNI,
                route_targets: [SITE_TARGET].into(),
                local_pref: None,
            },
        ));
    }
    let start = Instant::now();
    let messages = codec::export_updates(&diff, &session());
    let took = start.elapsed();
    drop(messages);
    took
}

// ---------------------------------------------------------------------------------------------
// Learned: the reporter's acknowledged requests, from the speaker's log.
// ---------------------------------------------------------------------------------------------

/// When the server had acknowledged `want` learned routes (from the speaker's debug lines
/// `… reported to the server routes=N`), as a duration since `since`.
fn learned_at(
    setup: &Setup,
    want: usize,
    since: SystemTime,
    within: Duration,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + within;
    let since = since.duration_since(UNIX_EPOCH)?.as_secs_f64();
    loop {
        let log = std::fs::read_to_string(setup.dir.join("bgp.log")).unwrap_or_default();
        let mut total = 0usize;
        for line in log.lines().filter(|l| l.contains("reported to the server")) {
            let Some(routes) = line
                .split("routes=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|r| r.parse::<usize>().ok())
            else {
                continue;
            };
            total += routes;
            if total >= want {
                let at = log_time(line)
                    .ok_or_else(|| anyhow!("no timestamp in speaker log line {line:?}"))?;
                return Ok(Duration::from_secs_f64((at - since).max(0.0)));
            }
        }
        if Instant::now() > deadline {
            bail!("the speaker reported {total} of {want} routes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Seconds since the epoch of a tracing line `2026-12-03T13:20:01.123456Z …`.
fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min, s) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // Days since 1970-01-01 (civil calendar, Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

// ---------------------------------------------------------------------------------------------
// The report.
// ---------------------------------------------------------------------------------------------

struct Outcome {
    routes: usize,
    floor: Floor,
    sent: Duration,
    import: Duration,
    import_dumped: bool,
    learned: Duration,
    /// CPU seconds during the import: speaker, server, agents.
    cpu: Vec<f64>,
    created: Duration,
    exported: Duration,
    /// CPU seconds during the export, same processes.
    export_cpu: Vec<f64>,
    encode: Duration,
}

impl Outcome {
    fn print(&self) {
        let n = self.routes as f64;
        let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        let rate = |d: Duration| thousands((n / d.as_secs_f64().max(1e-9)) as u64);
        let ratio = self.import.as_secs_f64() / self.floor.total.as_secs_f64().max(1e-9);
        println!();
        println!(
            "bgp_routes: {} type-2 routes (MAC+IP) + 1 type-3 from one peer -> {HOSTS} hosts' kernels",
            thousands(self.routes as u64)
        );
        println!(
            "  import: first UPDATE -> every host holds {} FDB entries + flood + {} neighbours: {}  ({} routes/s)",
            thousands(self.routes as u64),
            thousands(self.routes as u64),
            s(self.import),
            rate(self.import)
        );
        println!(
            "  floor:  decode ({}) + bridge -batch + ip -batch into {HOSTS} hosts in parallel: {} (batches exited at {})",
            s(self.floor.decode),
            s(self.floor.total),
            s(self.floor.exited)
        );
        if self.import_dumped || self.floor.dumped {
            println!(
                "  (the monitors lost lines: completion seen in a dump of the kernels; import {}, floor {})",
                self.import_dumped, self.floor.dumped
            );
        }
        println!(
            "  ratio import / floor: {}  (goal <= 2x{})",
            fmt_ratio(ratio),
            if ratio <= 2.0 { "" } else { ": MISSED" }
        );
        println!(
            "  learned: first UPDATE -> server acknowledged the last route: {}  ({} routes/s); UPDATEs written in {}",
            s(self.learned),
            rate(self.learned),
            s(self.sent)
        );
        let names: Vec<String> = ["speaker", "server"]
            .into_iter()
            .map(str::to_owned)
            .chain((1..=HOSTS).map(|h| format!("agent h{h}")))
            .collect();
        let cpu = |seconds: &[f64]| -> String {
            names
                .iter()
                .zip(seconds)
                .map(|(name, c)| format!("{name} {c:.1} s"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("  CPU during the import: {}", cpu(&self.cpu));
        println!(
            "  exported: {} ports created and active through the API in {} -> peer holds all their type-2 routes at {}  ({} routes/s)",
            thousands(self.routes as u64),
            s(self.created),
            s(self.exported),
            rate(self.exported)
        );
        println!("  CPU during the export: {}", cpu(&self.export_cpu));
        println!(
            "  export floor: encoding the same routes with the codec: {}  (ratio {})",
            s(self.encode),
            fmt_ratio(self.exported.as_secs_f64() / self.encode.as_secs_f64().max(1e-9))
        );
    }
}

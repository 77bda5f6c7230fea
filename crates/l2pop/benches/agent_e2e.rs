//! `cargo bench -p l2pop --bench agent_e2e`: the agent end to end, in network namespaces, over
//! RabbitMQ (issue 10, item 8). Root only; RabbitMQ must be up (`./scripts/services`).
//!
//! **Latency.** Ten compute hosts on an underlay switch (the demo's topology functions), the
//! server (SQLite) and one `l2pop agent --netns` per host as child processes, all on a bus
//! topic of their own; every host gets a port and a VM (a veth into a VM namespace, as the
//! demo does) on one VXLAN network. Then, for each round, a port is created through the API,
//! bound to one host in turn, and made active in three ways, measured separately:
//! - **rpc**: the bench sends the `update_device_up` that the host's agent would send (the same
//!   RPC, over RabbitMQ), then plugs the tap;
//! - **api**: the same through `POST /v2.0/l2pop/devices/{id}/up`, then plugs the tap;
//! - **plug**: the bench plugs the tap and lets the host's agent find it, learn its network
//!   (`get_devices_details_list_and_failed_devices`), wire it and send `update_device_up`.
//!
//! The clock stops when the port's unicast FDB entry and its ARP-proxy neighbour entry are in
//! the kernel of every other host (the port's own host holds its tap, not an entry). Each host's
//! kernel is watched by an `ip -n NS monitor link neigh` process whose lines are timestamped as
//! they arrive, so nothing polls. For rpc and api the clock starts when the request is sent;
//! for plug it starts at the tap's `RTM_NEWLINK` in the host (the kernel event the agent sees).
//! The baseline, measured in the same run, interleaved with the rounds: one notification
//! published through `l2pop_bus` and consumed on a scratch topic (one fanout, one queue).
//!
//! **Memory.** One agent on one host, the server with 1,000 registered fake hosts, then
//! 100,000 ports bound to them and made active through the API (the agent's host has no port
//! on the network yet: it drops those fanouts). Then the host's own port is plugged: the agent
//! receives the network's full FDB (100,000 ports, 1,000 flood entries) and programs it. The
//! agent's `VmRSS` before and after, divided by the entries held.
//!
//! The `l2pop` binary the children run is the one cargo builds next to this bench
//! (`CARGO_BIN_EXE_l2pop`); running the bench executable by hand needs
//! `cargo build --release -p l2pop` first.
//!
//! Environment: `L2POP_BENCH_ROUNDS` (default 50), `L2POP_BENCH_ENTRIES` (default 100000),
//! `L2POP_BENCH_ONLY` (`latency` or `memory`), `L2POP_BENCH_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Nothing asserts on time: a missed goal is printed.

#[path = "support/e2e.rs"]
mod e2e;
#[path = "../../l2pop-engine/benches/support/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use e2e::{
    DEFAULT_AMQP, Seen, Setup, check_rabbit, cpu_ticks, create_remote_ports, env_number, fake_host,
    interrupt_cleanup, is_root, start_monitors, wait_tables,
};
use l2pop::agent::rpc::ServerRpc;
use l2pop::demo::topology::{self, HostSpec, VmSpec};
use l2pop_bus::BusSettings;
use l2pop_model::{
    FdbEntries, FdbPayload, Host, Mac, Method, NetworkFdb, NetworkId, NetworkType, Notification,
    PortInfo, Target,
};
use report::{cpu_stall_us, fmt_ratio, thousands};
use serde_json::json;

const HOSTS: usize = 10;
const VNI: u32 = 1001;
/// How long one round may take before it counts as failed.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
const FAKE_HOSTS: u64 = 1_000;
/// Linux's USER_HZ (`/proc/<pid>/stat` counts CPU time in it).
const TICKS_PER_SECOND: f64 = 100.0;

fn main() -> ExitCode {
    if !is_root() {
        eprintln!("agent_e2e bench skipped: needs root (network namespaces)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agent_e2e: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let amqp = std::env::var("L2POP_BENCH_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP.to_owned());
    let rounds = env_number("L2POP_BENCH_ROUNDS", 50)? as usize;
    let entries = env_number("L2POP_BENCH_ENTRIES", 100_000)?;
    let only = std::env::var("L2POP_BENCH_ONLY").unwrap_or_default();
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
    let pid = std::process::id();
    interrupt_cleanup(vec![format!("bn{pid}"), format!("bm{pid}")]);
    let stall_before = cpu_stall_us();
    let started = Instant::now();

    let latency = if only.is_empty() || only == "latency" {
        let setup = Setup::new(&exe, &amqp, &format!("bn{pid}"))?;
        Some(latency_bench(&setup, &runtime, rounds)?)
    } else {
        None
    };
    let memory = if only.is_empty() || only == "memory" {
        let setup = Setup::new(&exe, &amqp, &format!("bm{pid}"))?;
        Some(memory_bench(&setup, &runtime, entries)?)
    } else {
        None
    };

    println!();
    if let Some(latency) = &latency {
        latency.print();
    }
    if let Some(memory) = &memory {
        memory.print();
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let (Some(before), Some(after)) = (stall_before, cpu_stall_us()) {
        let share = (after - before) as f64 / 1e6 / elapsed * 100.0;
        println!(
            "whole run: {elapsed:.0} s; some task waited for a CPU during {share:.1}% of it (Linux PSI)"
        );
    }
    Ok(())
}

/// What a round waits for, per host: the port's unicast FDB entry (`VTEP dev vxlan-N lladdr
/// MAC`, as `ip monitor` prints an `AF_BRIDGE` entry) and its ARP-proxy neighbour (`IP dev
/// vxlan-N lladdr MAC`); on the port's own host, optionally, the tap's appearance.
struct Expect<'a> {
    vm: &'a VmSpec,
    vtep: Ipv4Addr,
    /// Per host: when the FDB entry and the neighbour were seen.
    fdb: BTreeMap<usize, Instant>,
    neigh: BTreeMap<usize, Instant>,
    tap: Option<Instant>,
}

impl Expect<'_> {
    fn note(&mut self, seen: &Seen) {
        let line = seen.line.trim_start();
        if line.starts_with("Deleted") || line.starts_with("Miss") {
            return;
        }
        if seen.host == self.vm.host {
            if self.tap.is_none() && line.contains(&self.vm.tap) {
                self.tap = Some(seen.at);
            }
            return;
        }
        if !line.contains(&format!("lladdr {}", self.vm.mac)) {
            return;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if first == self.vtep.to_string() {
            self.fdb.entry(seen.host).or_insert(seen.at);
        } else if first == self.vm.ip.to_string() {
            self.neigh.entry(seen.host).or_insert(seen.at);
        }
    }

    fn remote_done(&self, hosts: usize) -> bool {
        self.fdb.len() == hosts - 1 && self.neigh.len() == hosts - 1
    }

    /// When the last remote entry appeared.
    fn last(&self) -> Option<Instant> {
        self.fdb.values().chain(self.neigh.values()).max().copied()
    }

    fn missing(&self, hosts: &[HostSpec]) -> String {
        hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.vm.host)
            .filter_map(|(i, h)| {
                let what: Vec<&str> = [
                    (!self.fdb.contains_key(&i)).then_some("fdb"),
                    (!self.neigh.contains_key(&i)).then_some("neigh"),
                ]
                .into_iter()
                .flatten()
                .collect();
                (!what.is_empty()).then(|| format!("{}: {}", h.name, what.join("+")))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Port up → the entry in every other host's kernel, ÷ a bare publish→consume round.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Rpc,
    Api,
    Plug,
}

impl Trigger {
    const ALL: [Trigger; 3] = [Trigger::Rpc, Trigger::Api, Trigger::Plug];

    fn label(self) -> &'static str {
        match self {
            Trigger::Rpc => "update_device_up (RPC) -> entry in 9 remote kernels",
            Trigger::Api => "POST /v2.0/l2pop/devices/{id}/up -> entry in 9 kernels",
            Trigger::Plug => "tap plugged -> entry in 9 remote kernels (whole agent)",
        }
    }
}

#[derive(Default)]
struct Latency {
    rounds: usize,
    /// Per trigger: the measured latencies.
    samples: BTreeMap<&'static str, Vec<Duration>>,
    failed: BTreeMap<&'static str, usize>,
    /// The bare publish→consume rounds.
    bare: Vec<Duration>,
    /// The `update_device_up` call's own round trip (request to reply).
    rpc_reply: Vec<Duration>,
    /// The API call's round trip.
    api_reply: Vec<Duration>,
    /// From the start of the plug (`ip netns exec` of `ip link add`) to the tap's RTM_NEWLINK.
    plug_command: Vec<Duration>,
    /// From the first remote entry to the last (how far apart the nine agents finish).
    spread: Vec<Duration>,
}

fn latency_bench(
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
    rounds: usize,
) -> anyhow::Result<Latency> {
    println!(
        "agent_e2e latency: {HOSTS} hosts, {rounds} rounds of 3 triggers, prefix {}",
        setup.prefix
    );
    let api = setup.start_server()?;
    let hosts = setup.build_hosts(HOSTS)?;
    // One at a time: ten agents calling report_state at once lost some replies (see
    // docs/benchmarks.md), and a lost reply costs the agent its 60-s call timeout.
    for host in &hosts {
        setup.start_agent(host)?;
        api.wait_agents(&[host.name.as_str()], setup)?;
    }
    let network = api.network(VNI, "10.0.0.0/16")?;
    let monitors = start_monitors(setup, &hosts)?;

    // One port and VM per host, then wait until every host holds the nine others.
    let mut vms = Vec::new();
    for host in 0..HOSTS {
        let vm = api.port(&setup.prefix, network, host, &hosts, host + 1, VNI)?;
        topology::build_vm(&vm, &hosts[host])?;
        vms.push(vm);
    }
    wait_tables(runtime, &hosts, &vms, VNI, Duration::from_secs(60))?;
    println!("agent_e2e latency: {HOSTS} agents converged on {HOSTS} ports");

    // The agents' RPC, as each host's agent sends it, dialled before the clock ever runs.
    let rpcs: Vec<ServerRpc> = runtime.block_on(async {
        let bus = l2pop_bus::connect(&setup.bus()).await?;
        let mut rpcs = Vec::new();
        for host in &hosts {
            let rpc = ServerRpc::new(bus.rpc_client(), Host::new(&host.name)?);
            rpc.snapshot().await?;
            rpcs.push(rpc);
        }
        anyhow::Ok(rpcs)
    })?;
    let mut probe = runtime.block_on(Probe::start(&setup.amqp, &setup.prefix))?;
    for _ in 0..10 {
        runtime.block_on(probe.round())?;
    }

    let mut outcome = Latency {
        rounds,
        ..Latency::default()
    };
    let mut number = HOSTS;
    for round in 0..rounds {
        for (t, trigger) in Trigger::ALL.into_iter().enumerate() {
            // Every trigger visits every host, in a different order.
            let host = (round + t * 3) % HOSTS;
            number += 1;
            let vm = api.port(&setup.prefix, network, host, &hosts, number, VNI)?;
            topology::build_vm_namespace(&vm)?;
            while monitors.try_recv().is_ok() {}
            let mut expect = Expect {
                vm: &vm,
                vtep: hosts[host].vtep,
                fdb: BTreeMap::new(),
                neigh: BTreeMap::new(),
                tap: None,
            };
            let start = Instant::now();
            match trigger {
                Trigger::Rpc => {
                    runtime.block_on(rpcs[host].device_up(&vm.tap, false))?;
                    outcome.rpc_reply.push(start.elapsed());
                }
                Trigger::Api => {
                    api.post(
                        &format!("/v2.0/l2pop/devices/{}/up", vm.port_id),
                        json!({"device": {"host": hosts[host].name}}),
                    )?;
                    outcome.api_reply.push(start.elapsed());
                }
                Trigger::Plug => topology::plug_vm(&vm, &hosts[host])?,
            }
            let deadline = start + ROUND_TIMEOUT;
            while !(expect.remote_done(HOSTS) && (trigger != Trigger::Plug || expect.tap.is_some()))
            {
                let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                match monitors.recv_timeout(wait) {
                    Ok(seen) => expect.note(&seen),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        bail!("the kernel monitors stopped")
                    }
                }
            }
            let from = match trigger {
                Trigger::Plug => expect.tap,
                _ => Some(start),
            };
            match (from, expect.last()) {
                (Some(from), Some(last)) if expect.remote_done(HOSTS) => {
                    outcome
                        .samples
                        .entry(trigger.label())
                        .or_default()
                        .push(last.saturating_duration_since(from));
                    let first = expect
                        .fdb
                        .values()
                        .chain(expect.neigh.values())
                        .min()
                        .copied();
                    if let Some(first) = first {
                        outcome.spread.push(last - first);
                    }
                    if trigger == Trigger::Plug {
                        outcome
                            .plug_command
                            .push(from.saturating_duration_since(start));
                    }
                }
                _ => {
                    eprintln!(
                        "agent_e2e: round {round} ({trigger:?}, {} on {}) timed out; missing {}",
                        vm.name,
                        hosts[host].name,
                        expect.missing(&hosts)
                    );
                    *outcome.failed.entry(trigger.label()).or_default() += 1;
                }
            }
            if trigger != Trigger::Plug {
                topology::plug_vm(&vm, &hosts[host])?;
            }
            // Let the port's own agent wire the tap and report it (a no-op at the server by
            // now), and every agent's hold-off after its own writes (at least 200 ms) run out,
            // so that rounds do not overlap.
            wait_wired(&hosts[host].ns, &vm.tap)?;
            std::thread::sleep(Duration::from_millis(400));
            outcome.bare.push(runtime.block_on(probe.round())?);
        }
        if (round + 1) % 10 == 0 {
            println!("agent_e2e latency: {} rounds done", round + 1);
        }
    }
    runtime.block_on(probe.stop());
    Ok(outcome)
}

/// Polls the host until `tap` is enslaved to a bridge (the agent wired it).
fn wait_wired(ns: &str, tap: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        let out = topology::run_in(None, &["ip", "-n", ns, "-o", "link", "show", "dev", tap])?;
        if String::from_utf8_lossy(&out.stdout).contains("master brq") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{tap} was not wired in {ns} within {ROUND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The baseline: one notification published and consumed through `l2pop_bus` on a topic and
/// host of its own (a fanout, as the server's port-up fanout, with one queue bound).
struct Probe {
    publisher: l2pop_bus::Publisher,
    consumer: l2pop_bus::Consumer,
    seq: u64,
    network: NetworkId,
}

impl Probe {
    async fn start(amqp: &str, prefix: &str) -> anyhow::Result<Probe> {
        let mut settings = BusSettings::rabbit(amqp);
        settings.topic = format!("{prefix}-probe");
        settings.rpc_topic = format!("{prefix}-probe-rpc");
        let bus = l2pop_bus::connect(&settings).await?;
        let consumer = bus.consumer(Host::new("probe")?);
        let mut connected = consumer.connected();
        tokio::time::timeout(Duration::from_secs(30), connected.wait_for(|up| *up))
            .await
            .context("the probe consumer did not connect within 30 s")??;
        let stream_id = u64::from(std::process::id()) << 20 | 0xbe;
        Ok(Probe {
            publisher: bus.publisher(stream_id, 0),
            consumer,
            seq: 0,
            network: "5e9a0c1e-0000-4000-8000-000000000001"
                .parse()
                .map_err(|e| anyhow!("probe network id: {e:?}"))?,
        })
    }

    /// One publish → consume, timed.
    async fn round(&mut self) -> anyhow::Result<Duration> {
        self.seq += 1;
        let vtep: IpAddr = "192.0.2.99".parse()?;
        let device = PortInfo::new(
            Mac::new([0xfa, 0x16, 0x3e, 0, 0, (self.seq % 251) as u8]),
            "10.0.0.99".parse()?,
        );
        let notification = Notification {
            seq: self.seq,
            target: Target::Fanout,
            method: Method::AddFdbEntries,
            source: None,
            fdb_entries: FdbPayload::Entries(FdbEntries::single(
                self.network,
                NetworkFdb {
                    segment_id: Some(VNI),
                    network_type: NetworkType::Vxlan,
                    ports: vec![(vtep, vec![device])],
                },
            )),
            fanout_seq: self.seq,
            host_seq: None,
        };
        let start = Instant::now();
        self.publisher.publish(&notification).await?;
        tokio::time::timeout(Duration::from_secs(10), self.consumer.recv())
            .await
            .context("the probe's notification did not come back within 10 s")?
            .context("the probe consumer stopped")?;
        Ok(start.elapsed())
    }

    async fn stop(self) {
        let _ = self.publisher.shutdown(Duration::from_secs(5)).await;
    }
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(samples: &[Duration]) -> Vec<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

impl Latency {
    fn print(&self) {
        let bare = sorted(&self.bare);
        let (bare50, bare99) = (percentile(&bare, 50.0), percentile(&bare, 99.0));
        println!(
            "agent end to end: port up -> its entry in every other host's kernel ({HOSTS} hosts, netns, RabbitMQ), {} rounds",
            self.rounds
        );
        println!(
            "baseline: bare RabbitMQ publish -> consume through l2pop_bus (fanout, 1 queue), {} rounds: p50 {} ms, p99 {} ms",
            bare.len(),
            ms(bare50),
            ms(bare99)
        );
        println!();
        println!(
            "{:<58} {:>4} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}",
            "trigger -> entry present",
            "n",
            "p50 ms",
            "p99 ms",
            "p50/bare",
            "p99/bare",
            "target",
            "result"
        );
        println!("{}", "-".repeat(118));
        for trigger in Trigger::ALL {
            let samples = sorted(
                self.samples
                    .get(trigger.label())
                    .map_or(&[][..], Vec::as_slice),
            );
            let failed = self.failed.get(trigger.label()).copied().unwrap_or(0);
            if samples.is_empty() {
                println!("{:<58} {:>4} {:>8}", trigger.label(), 0, "no samples");
                continue;
            }
            let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
            let r50 = p50.as_secs_f64() / bare50.as_secs_f64();
            let r99 = p99.as_secs_f64() / bare99.as_secs_f64();
            let (target, result) = match trigger {
                Trigger::Rpc | Trigger::Api => ("<= 3", if r99 <= 3.0 { "met" } else { "MISSED" }),
                Trigger::Plug => ("-", "info"),
            };
            println!(
                "{:<58} {:>4} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}",
                trigger.label(),
                samples.len(),
                ms(p50),
                ms(p99),
                fmt_ratio(r50),
                fmt_ratio(r99),
                target,
                result
            );
            if failed > 0 {
                println!(
                    "  {failed} rounds timed out after {ROUND_TIMEOUT:?} (not in the figures)"
                );
            }
        }
        println!();
        for (what, samples) in [
            ("update_device_up call, request -> reply", &self.rpc_reply),
            ("device-up API call, request -> answer", &self.api_reply),
            (
                "plug: start of `ip link add` -> tap's RTM_NEWLINK",
                &self.plug_command,
            ),
            ("first remote entry -> last remote entry", &self.spread),
        ] {
            let s = sorted(samples);
            println!(
                "  {what:<52} p50 {:>7} ms, p99 {:>7} ms",
                ms(percentile(&s, 50.0)),
                ms(percentile(&s, 99.0))
            );
        }
        let beyond = self.rounds - (0.99 * self.rounds as f64).ceil() as usize;
        if beyond == 0 {
            println!(
                "  (nearest rank: with {} samples per trigger, p99 is the slowest one)",
                self.rounds
            );
        } else {
            println!(
                "  (nearest rank: with {} samples per trigger, p99 leaves out the {beyond} slowest)",
                self.rounds
            );
        }
        println!();
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Agent memory per entry held.
// ---------------------------------------------------------------------------------------------

struct Memory {
    ports: u64,
    fdb: usize,
    neighbours: usize,
    /// VmRSS (bytes): agent idle and registered; after the ports' fanouts (dropped); holding.
    idle: u64,
    before: u64,
    after: u64,
    /// VmHWM at the end: the peak while it received and programmed the table.
    peak: u64,
    create_seconds: f64,
    program_seconds: f64,
}

fn proc_status_kb(pid: u32, key: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("the agent (pid {pid}) is gone"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .ok_or_else(|| anyhow!("/proc/{pid}/status has no {key}"))
}

/// Waits until the process used at most 2% of a CPU over a whole second (at most 60 s).
fn wait_idle(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = cpu_ticks(pid);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_ticks(pid);
        if ((now - last) as f64) / TICKS_PER_SECOND <= 0.02 {
            return;
        }
        last = now;
    }
}

fn memory_bench(
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
    ports: u64,
) -> anyhow::Result<Memory> {
    println!(
        "agent_e2e memory: one agent, {} remote ports on {FAKE_HOSTS} fake hosts, prefix {}",
        thousands(ports),
        setup.prefix
    );
    let api = setup.start_server()?;
    for h in 0..FAKE_HOSTS {
        let vtep = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 1)) + h as u32);
        api.post(
            "/v2.0/l2pop/agents",
            json!({"agent": {"host": fake_host(h), "tunneling_ip": vtep.to_string(), "tunnel_types": ["vxlan"], "start_flag": true}}),
        )?;
    }
    let hosts = setup.build_hosts(1)?;
    let agent = setup.start_agent(&hosts[0])?;
    api.wait_agents(&[hosts[0].name.as_str()], setup)?;
    wait_idle(agent);
    let idle = proc_status_kb(agent, "VmRSS:")? * 1024;
    let network = api.network(VNI, "10.0.0.0/12")?;

    let started = Instant::now();
    runtime.block_on(create_remote_ports(&api.base, network, ports, FAKE_HOSTS))?;
    let create_seconds = started.elapsed().as_secs_f64();
    println!(
        "agent_e2e memory: {} ports created and active in {create_seconds:.0} s",
        thousands(ports)
    );
    wait_idle(agent);
    let before = proc_status_kb(agent, "VmRSS:")? * 1024;

    // The host's own port: the agent takes the network's full FDB and programs it.
    let vm = api.port(&setup.prefix, network, 0, &hosts, 1, VNI)?;
    let started = Instant::now();
    topology::build_vm(&vm, &hosts[0])?;
    let device = l2pop_dataplane::vxlan_name(VNI);
    let want_fdb = ports as usize + FAKE_HOSTS as usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    let (fdb, neighbours) = loop {
        let observed = runtime.block_on(async {
            let kernel = l2pop_dataplane::Netlink::connect(Some(&hosts[0].ns)).await?;
            anyhow::Ok(kernel.observe().await?)
        })?;
        let fdb = observed.fdb.get(&device).map_or(0, |f| f.len());
        let neighbours = observed.neighbours.get(&device).map_or(0, |n| n.len());
        if fdb >= want_fdb && neighbours >= ports as usize {
            break (fdb, neighbours);
        }
        if Instant::now() > deadline {
            bail!(
                "the agent programmed {fdb} FDB entries and {neighbours} neighbours of {want_fdb} and {ports} within 600 s:\n{}",
                setup.log_tail(&hosts[0].name)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let program_seconds = started.elapsed().as_secs_f64();
    wait_idle(agent);
    let after = proc_status_kb(agent, "VmRSS:")? * 1024;
    let peak = proc_status_kb(agent, "VmHWM:")? * 1024;
    Ok(Memory {
        ports,
        fdb,
        neighbours,
        idle,
        before,
        after,
        peak,
        create_seconds,
        program_seconds,
    })
}

impl Memory {
    fn print(&self) {
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        let held = self.after.saturating_sub(self.before);
        println!(
            "agent memory: one agent holding one network of {} remote ports ({} FDB entries incl. {FAKE_HOSTS} flood, {} neighbours)",
            thousands(self.ports),
            thousands(self.fdb as u64),
            thousands(self.neighbours as u64)
        );
        println!(
            "  VmRSS: idle {}, after {} fanouts for a network it does not hold {}, holding the network {}; VmHWM {}",
            mib(self.idle),
            thousands(self.ports),
            mib(self.before),
            mib(self.after),
            mib(self.peak)
        );
        println!(
            "  bytes per port held (FDB + neighbour): {:.0}  (VmRSS holding - before) / {}",
            held as f64 / self.ports as f64,
            thousands(self.ports)
        );
        println!(
            "  bytes per kernel entry held: {:.0}  (same / {} FDB + neighbour entries)",
            held as f64 / (self.fdb + self.neighbours) as f64,
            thousands((self.fdb + self.neighbours) as u64)
        );
        println!(
            "  bytes per port from idle: {:.0}  (VmRSS holding - idle) / {}",
            self.after.saturating_sub(self.idle) as f64 / self.ports as f64,
            thousands(self.ports)
        );
        println!(
            "  ports created through the API in {:.0} s; the agent had the table in its kernel {:.1} s after the tap was plugged",
            self.create_seconds, self.program_seconds
        );
    }
}

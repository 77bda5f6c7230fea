//! `cargo bench -p l2pop-engine`: the engine's costs as ratios against a baseline measured in the
//! same run, so that the figures mean the same on any machine (docs/benchmarks.md).
//!
//! 1. Full FDB of a host joining a network of 100,000 active ports: build + serialize vs
//!    serialize only (target ≤ 1.5).
//! 2. RFE 1793653's "overhead of adding more information to the FDB": a `StaticFdb` adding
//!    100,000 entries vs 100,000 more native ports (≤ 1.1); an extension adding nothing vs no
//!    extension (≤ 1.02).
//! 3. An agent restart (rule 16): what l2pop sends for a refresh of 1,000 local ports in a
//!    10,000-port network vs what Neutron sends, in messages and bytes; and the time of both.
//! 4. A port down + up with 1,000,000 ports loaded vs 1,000 (≤ 2); memory per port.
//!
//! Timings are criterion's. At the end, `main` reads each benchmark's median back from
//! criterion's `estimates.json` and prints the ratio table. A missed target is printed, never a
//! failure: nothing here asserts on time.

#[path = "support/deployment.rs"]
mod deployment;
#[path = "support/report.rs"]
mod report;

use std::cell::OnceCell;
use std::hint::black_box;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime};

use cap::Cap;
use criterion::{Bencher, Criterion, SamplingMode};
use deployment::*;
use ipnet::IpNet;
use l2pop_engine::extensions::{StaticAction, StaticFdb};
use l2pop_engine::{
    DeviceDown, DeviceUp, Engine, EngineBuilder, Event, ExtensionChanges, ExtensionEntries,
    FdbExtension, FullFdbRequest,
};
use l2pop_model::{
    FLOODING_ENTRY, FdbEntries, FdbPayload, Host, Mac, Method, NetworkFdb, NetworkId, PortId,
    PortInfo, python_json,
};
use report::{Row, cpu_stall_us, criterion_dir, fmt_ns, fmt_ratio, median, print_table, thousands};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Counts live heap bytes (an `AtomicUsize` inside `Cap`, wrapping `System`): case 4's memory
/// per port. The workspace forbids `unsafe_code`, hence the `cap` crate instead of a local impl.
#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

// ---------------------------------------------------------------------------------------------
// Deployments, built through the public API only.
// ---------------------------------------------------------------------------------------------

/// Case 2: 100 gateway VTEPs, each flooding for the network and serving 1,000 devices, through
/// `update_extension::<StaticFdb>`. The devices take the addresses the 100,000 extra native ports
/// of the baseline take, so both payloads have the same shape and nearly the same size.
/// Returns the engine and a copy of the extension's state (for timing the extension alone).
fn network_with_static_fdb() -> (Engine, StaticFdb) {
    let builder = EngineBuilder::new()
        .extension("static", StaticFdb::new())
        .expect("valid extension name");
    let mut engine = large_network(builder, &[]);
    let subnet: IpNet = LARGE_SUBNET.parse().expect("valid cidr");
    let mut copy = StaticFdb::new();
    for g in 0..100 {
        let mut entries = vec![FLOODING_ENTRY];
        for d in 0..1_000u32 {
            let device = g * 1_000 + d;
            let [_, a, b, c] = device.to_be_bytes();
            entries.push(PortInfo::new(
                Mac::new([0x02, 0x42, 0x00, a, b, c]),
                address(&subnet, 100_000 + device),
            ));
        }
        engine
            .update_extension::<StaticFdb>("static", |ext, view| {
                ext.apply(
                    StaticAction::Add,
                    network_id(0),
                    gateway_vtep(g),
                    &entries,
                    view,
                )
            })
            .expect("static entries accepted");
    }
    let reports = engine.take_reports();
    assert!(reports.is_empty(), "unexpected reports: {reports:?}");
    engine
        .update_extension::<StaticFdb>("static", |ext, _| {
            copy = ext.clone();
            Ok(ExtensionChanges::default())
        })
        .expect("registered extension");
    print_full_fdb_size(
        "case 2: 100,000 ports + StaticFdb (100 gateways x (flood + 1,000 devices))",
        &engine,
    );
    (engine, copy)
}

/// Case 2's baseline: the same network with 100,000 more native ports, on 100 more hosts of
/// 1,000 ports (as many VTEPs and entries as the gateways of the extension).
fn network_of_200k_ports() -> Engine {
    let extra = HostGroup {
        first: 1_000,
        count: 100,
        ports: 1_000,
    };
    let engine = large_network(EngineBuilder::new(), &[extra]);
    print_full_fdb_size(
        "case 2: 200,000 native ports (1,000 hosts x 100 + 100 hosts x 1,000)",
        &engine,
    );
    engine
}

// ---------------------------------------------------------------------------------------------
// Case 1: full FDB, build + serialize vs serialize only.
// ---------------------------------------------------------------------------------------------

/// Returns the paired check, when the pair ran.
fn case1(c: &mut Criterion) -> Option<f64> {
    let engine_cell = OnceCell::new();
    let engine = || {
        engine_cell.get_or_init(|| {
            let started = Instant::now();
            let engine = large_network(EngineBuilder::new(), &[]);
            println!(
                "case 1: 100,000 active ports on 1,000 hosts loaded in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            print_full_fdb_size("case 1: 100,000 ports", &engine);
            let fdb = engine
                .full_fdb(&host(NEWCOMER), network_id(0), None)
                .expect("known network");
            (engine, fdb.fdb_entries)
        })
    };
    let newcomer = host(NEWCOMER);
    let mut group = c.benchmark_group("case1_full_fdb");
    configure(&mut group, 30, 3);
    group.bench_function("build_serialize", |b| {
        let (engine, _) = engine();
        b.iter(|| build_and_serialize(engine, black_box(&newcomer), network_id(0)));
    });
    group.bench_function("serialize_only", |b| {
        let (_, entries) = engine();
        b.iter(|| {
            serde_json::to_vec(black_box(entries))
                .expect("serializable")
                .len()
        });
    });
    group.bench_function("build_only", |b| {
        let (engine, _) = engine();
        b.iter(|| {
            engine
                .full_fdb(black_box(&newcomer), network_id(0), None)
                .expect("known network")
        });
    });
    group.finish();
    // The ratio measured in one stretch of time, as case 2's paired checks.
    let paired = engine_cell.get().map(|(engine, entries)| {
        paired_median(
            || build_and_serialize(engine, black_box(&newcomer), network_id(0)),
            || {
                serde_json::to_vec(black_box(entries))
                    .expect("serializable")
                    .len()
            },
        )
    });
    if let Some(ratio) = paired {
        println!(
            "case 1: paired check, build+serialize / serialize only over 101 alternating runs: \
             median ratio {ratio:.4}"
        );
    }
    paired
}

// ---------------------------------------------------------------------------------------------
// Case 2: the cost of extension entries.
// ---------------------------------------------------------------------------------------------

/// Returns the paired checks of the pairs that ran.
fn case2(c: &mut Criterion) -> Paired {
    let static_cell = OnceCell::new();
    let with_static = || static_cell.get_or_init(network_with_static_fdb);
    let native_cell = OnceCell::new();
    let native = || native_cell.get_or_init(network_of_200k_ports);
    // The same 100,000-port network with a registered extension that adds nothing, and without,
    // loaded in lockstep.
    let twins_cell = OnceCell::new();
    let twins = || {
        twins_cell.get_or_init(|| {
            let empty = EngineBuilder::new()
                .extension("static", StaticFdb::new())
                .expect("valid extension name");
            large_networks([empty, EngineBuilder::new()], &[])
        })
    };

    let newcomer = host(NEWCOMER);
    let net = network_id(0);
    // Each pair's paired check (both engines timed in alternation, 101 times) runs once, right
    // after the pair is loaded and before criterion times either engine: it measures the ratio
    // within one stretch of time, and it keeps the seconds right after loading (in which the
    // first criterion window measured the StaticFdb engine 13-30% slower than any measurement
    // that alternates the two) out of criterion's windows, for both engines alike.
    let static_paired = OnceCell::new();
    let static_pair = || {
        let (with, _) = with_static();
        let without = native();
        static_paired.get_or_init(|| paired_ratio(with, without, &newcomer, net));
        (with, without)
    };
    let empty_paired = OnceCell::new();
    let empty_pair = || {
        let [empty, none] = twins();
        empty_paired.get_or_init(|| paired_ratio(empty, none, &newcomer, net));
        (empty, none)
    };
    let mut group = c.benchmark_group("case2_extension");
    configure(&mut group, 30, 4);
    // Each timed run of one engine of a pair follows an (untimed) run of the other, so both
    // always start from the same cache state (the previous run of the same engine would leave
    // its own data warm). The drift between two measurement windows on a shared machine can
    // still exceed the 10% (and below, 2%) checked: hence the paired checks.
    group.bench_function("static_100k_build_serialize", |b| {
        let (with, without) = static_pair();
        after_partner(b, with, without, &newcomer, net);
    });
    group.bench_function("native_200k_build_serialize", |b| {
        let (with, without) = static_pair();
        after_partner(b, without, with, &newcomer, net);
    });
    configure(&mut group, 40, 5);
    group.bench_function("empty_ext_build_serialize", |b| {
        let (empty, none) = empty_pair();
        after_partner(b, empty, none, &newcomer, net);
    });
    group.bench_function("no_ext_build_serialize", |b| {
        let (empty, none) = empty_pair();
        after_partner(b, none, empty, &newcomer, net);
    });
    configure(&mut group, 30, 4);
    // Breakdown of the first pair: where the extension's extra time goes.
    group.bench_function("static_100k_build_only", |b| {
        let (engine, _) = with_static();
        b.iter(|| engine.full_fdb(black_box(&newcomer), net, None));
    });
    group.bench_function("native_200k_build_only", |b| {
        let engine = native();
        b.iter(|| engine.full_fdb(black_box(&newcomer), net, None));
    });
    group.bench_function("static_extend_only", |b| {
        let (engine, ext) = with_static();
        let network = engine.network(net).expect("known network");
        let request = FullFdbRequest {
            network,
            host: &newcomer,
            host_vtep: engine.vtep(&newcomer),
        };
        b.iter(|| {
            let mut out = ExtensionEntries::default();
            ext.extend_full_fdb(black_box(&request), &mut out)
                .expect("static extension never fails");
            out.len()
        });
    });
    group.finish();

    let static_paired = static_paired.get().copied();
    if let Some(ratio) = static_paired {
        println!(
            "case 2: paired check, StaticFdb +100k entries / +100k native ports over 101 \
             alternating runs: median ratio {ratio:.4}"
        );
    }
    let empty_paired = empty_paired.get().copied();
    if let Some(ratio) = empty_paired {
        println!(
            "case 2: paired check, empty extension / no extension over 101 alternating runs: \
             median ratio {ratio:.4}"
        );
    }
    Paired {
        static_fdb: static_paired,
        empty: empty_paired,
    }
}

/// Case 2's paired checks (median ratio over alternating runs), for the pairs that ran.
struct Paired {
    static_fdb: Option<f64>,
    empty: Option<f64>,
}

/// Times `measured`'s build + serialize, each run right after an untimed run of `partner`.
fn after_partner(
    b: &mut Bencher<'_>,
    measured: &Engine,
    partner: &Engine,
    host: &Host,
    net: NetworkId,
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            black_box(build_and_serialize(partner, black_box(host), net));
            let started = Instant::now();
            black_box(build_and_serialize(measured, black_box(host), net));
            total += started.elapsed();
        }
        total
    });
}

/// Median of `a / b` over runs of `a` and `b` in alternation (one pair at a time).
fn paired_ratio(a: &Engine, b: &Engine, host: &Host, net: NetworkId) -> f64 {
    paired_median(
        || build_and_serialize(a, black_box(host), net),
        || build_and_serialize(b, black_box(host), net),
    )
}

/// Median of the time of `a` / the time of `b` over 101 runs in alternation (one pair at a time),
/// so that both are measured in the same stretch of time.
fn paired_median<T>(mut a: impl FnMut() -> T, mut b: impl FnMut() -> T) -> f64 {
    let mut ratios: Vec<f64> = (0..101)
        .map(|_| {
            let started = Instant::now();
            black_box(a());
            let ta = started.elapsed();
            let started = Instant::now();
            black_box(b());
            ta.as_secs_f64() / started.elapsed().as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Case 3: an agent restart (rule 16).
// ---------------------------------------------------------------------------------------------

/// The restarting host (1,000 ports) and the 90 other hosts of 100 ports: 10,000 ports.
const REFRESH_HOST: u32 = 0;
const REFRESH_PORTS: u32 = 1_000;

fn refresh_network() -> Engine {
    let groups = [
        HostGroup {
            first: REFRESH_HOST,
            count: 1,
            ports: REFRESH_PORTS,
        },
        HostGroup {
            first: 1,
            count: 90,
            ports: 100,
        },
    ];
    let mut loader = Loader::new(vec![Engine::new()]);
    for g in &groups {
        loader.agents(g.hosts());
    }
    loader.network(0, SMALL_SUBNET);
    loader.ports(0, SMALL_SUBNET, &groups);
    loader.engines.pop().expect("one engine")
}

/// What the restarted agent reports: its state report with `start_flag`, then every local port
/// up with `refresh_tunnels` (OVS sets it on the first loop after a restart).
fn refresh_events() -> Vec<Event> {
    let mut events = vec![agent_report(REFRESH_HOST, true)];
    events.extend((0..REFRESH_PORTS).map(|k| {
        Event::DeviceUp(DeviceUp {
            id: port_id(0, REFRESH_HOST, k),
            host: host(REFRESH_HOST),
            refresh_tunnels: true,
        })
    }));
    events
}

/// Messages and their sizes: compact JSON of `fdb_entries`, Python's `json.dumps` of it, and
/// the whole oslo.messaging body on the wire (reference §3).
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    messages: u64,
    compact: u64,
    python: u64,
    oslo: u64,
}

impl Traffic {
    fn add(&mut self, method: Method, payload: &FdbPayload) {
        self.messages += 1;
        self.compact += serde_json::to_vec(payload).expect("serializable").len() as u64;
        self.python += python_json::to_vec(payload).expect("serializable").len() as u64;
        self.oslo += oslo_body(method, payload).len() as u64;
    }
}

/// The captured Neutron body's context (reference §3): every l2pop cast of a server worker
/// carries the same one (rule 19).
static OSLO_CONTEXT: LazyLock<Vec<(&'static str, serde_json::Value)>> = LazyLock::new(|| {
    use serde_json::{Value, json};
    vec![
        ("_context_user", Value::Null),
        ("_context_project_id", Value::Null),
        ("_context_system_scope", Value::Null),
        ("_context_project", Value::Null),
        ("_context_domain", Value::Null),
        ("_context_user_domain", Value::Null),
        ("_context_project_domain", Value::Null),
        ("_context_is_admin", json!(true)),
        ("_context_read_only", json!(false)),
        ("_context_show_deleted", json!(false)),
        ("_context_auth_token", Value::Null),
        (
            "_context_request_id",
            json!("req-b3b4f538-f4b1-4afe-a88d-b9736bcbe886"),
        ),
        ("_context_global_request_id", Value::Null),
        ("_context_resource_uuid", Value::Null),
        ("_context_roles", json!(["member", "admin", "reader"])),
        ("_context_user_identity", json!("- - - - -")),
        ("_context_is_admin_project", json!(true)),
        ("_context_user_id", Value::Null),
        ("_context_timestamp", json!("2026-11-21 10:47:02.361756")),
        ("_context_project_name", Value::Null),
        ("_context_user_name", Value::Null),
        ("_context_has_global_access", json!(true)),
        ("_context_can_set_project_id", json!(true)),
    ]
});

/// The oslo.messaging body of an l2pop cast: `{"oslo.version": "2.0", "oslo.message": "<the
/// message as a JSON string>"}`, the message being `method`, `args`, `version`, `_unique_id`
/// and the context, everything in Python's `json.dumps` layout.
fn oslo_body(method: Method, payload: &FdbPayload) -> Vec<u8> {
    struct Args<'a>(&'a FdbPayload);
    impl Serialize for Args<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry("fdb_entries", self.0)?;
            map.end()
        }
    }
    struct Message<'a>(Method, &'a FdbPayload);
    impl Serialize for Message<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            map.serialize_entry("method", &self.0)?;
            map.serialize_entry("args", &Args(self.1))?;
            map.serialize_entry("version", "1.0")?;
            map.serialize_entry("_unique_id", "9d92072e52154b9ba78e8d577e0d067a")?;
            for (key, value) in OSLO_CONTEXT.iter() {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }
    struct Envelope(String);
    impl Serialize for Envelope {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("oslo.version", "2.0")?;
            map.serialize_entry("oslo.message", &self.0)?;
            map.end()
        }
    }
    let message = python_json::to_string(&Message(method, payload)).expect("serializable");
    python_json::to_vec(&Envelope(message)).expect("serializable")
}

/// The fanout payload of one port up on `host` (rule 2b-e): the template for the host's VTEP,
/// the flooding entry (2c: the refresh forces it), the port's PortInfos (2d).
fn neutron_port_up_fanout(engine: &Engine, host: &Host, port: PortId) -> FdbPayload {
    let port = engine.port(port).expect("known port");
    let network = engine.network(port.network_id).expect("known network");
    let mut entries = vec![FLOODING_ENTRY];
    entries.extend(port.fixed_ips.iter().map(|ip| PortInfo::new(port.mac, *ip)));
    FdbPayload::Entries(FdbEntries::single(
        port.network_id,
        NetworkFdb {
            segment_id: network.segment.segmentation_id(),
            network_type: network.segment.network_type(),
            ports: vec![(engine.vtep(host).expect("visible host"), entries)],
        },
    ))
}

/// Neutron's messages for the refresh (rule 16): for each device, rule 2c's host cast of the
/// full FDB (the same content as the one l2pop sends) and rule 2e's fanout. Calls `each` with
/// every message in the order Neutron sends them.
fn neutron_refresh(engine: &Engine, mut each: impl FnMut(Method, &FdbPayload)) {
    let restarting = host(REFRESH_HOST);
    for k in 0..REFRESH_PORTS {
        let port = port_id(0, REFRESH_HOST, k);
        let network = engine.port(port).expect("known port").network_id;
        let full = engine
            .full_fdb(&restarting, network, None)
            .expect("known network");
        each(
            Method::AddFdbEntries,
            &FdbPayload::Entries(full.fdb_entries),
        );
        each(
            Method::AddFdbEntries,
            &neutron_port_up_fanout(engine, &restarting, port),
        );
    }
}

struct RefreshCounts {
    ours: Traffic,
    neutron: Traffic,
    /// The one full FDB l2pop sends equals what Neutron's host casts carry.
    same_full_fdb: bool,
}

fn count_refresh(engine: &mut Engine, events: &[Event]) -> RefreshCounts {
    let mut ours = Traffic::default();
    let mut host_casts = Vec::new();
    for event in events {
        for n in engine.apply(event).expect("refresh event accepted") {
            ours.add(n.method, &n.fdb_entries);
            if let l2pop_model::Target::Host(_) = n.target {
                host_casts.push(n.fdb_entries);
            }
        }
    }
    let expected = engine
        .full_fdb(&host(REFRESH_HOST), network_id(0), None)
        .expect("known network");
    let same_full_fdb = host_casts == [FdbPayload::Entries(expected.fdb_entries)];
    let mut neutron = Traffic::default();
    neutron_refresh(engine, |method, payload| neutron.add(method, payload));
    RefreshCounts {
        ours,
        neutron,
        same_full_fdb,
    }
}

/// The reference's captured body (§3, 1,226 bytes) from its payload: checks `oslo_body`.
fn oslo_body_matches_capture() -> bool {
    let payload: FdbPayload = serde_json::from_str(
        r#"{"9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f": {"segment_id": 1001, "network_type": "vxlan",
            "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"],
                                     ["fa:16:3e:aa:bb:cc", "10.0.0.5"]]}}}"#,
    )
    .expect("valid payload");
    oslo_body(Method::AddFdbEntries, &payload).len() == 1226
}

fn case3(c: &mut Criterion) -> RefreshCounts {
    let started = Instant::now();
    let mut engine = refresh_network();
    let events = refresh_events();
    let counts = count_refresh(&mut engine, &events);
    print_refresh(&counts);
    println!(
        "case 3: network loaded and both refreshes counted in {:.1} s; oslo body model \
         reproduces the captured 1,226-byte Neutron body: {}",
        started.elapsed().as_secs_f64(),
        if oslo_body_matches_capture() {
            "yes"
        } else {
            "NO"
        }
    );

    let mut group = c.benchmark_group("case3_refresh");
    configure(&mut group, 10, 10);
    group.bench_function("l2pop_apply_serialize", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for event in &events {
                for n in engine.apply(black_box(event)).expect("accepted") {
                    bytes += serde_json::to_vec(&n.fdb_entries)
                        .expect("serializable")
                        .len();
                }
            }
            bytes
        });
    });
    group.bench_function("neutron_build_serialize", |b| {
        b.iter(|| {
            let mut bytes = 0;
            neutron_refresh(&engine, |_, payload| {
                bytes += serde_json::to_vec(payload).expect("serializable").len();
            });
            bytes
        });
    });
    group.finish();
    counts
}

fn print_refresh(counts: &RefreshCounts) {
    let (o, n) = (counts.ours, counts.neutron);
    println!();
    println!(
        "case 3: agent restart, refresh of {REFRESH_PORTS} local ports in a 10,000-port network \
         (90 other hosts x 100 ports)"
    );
    println!(
        "  {:<22} {:>9} {:>16} {:>16} {:>16}",
        "", "messages", "bytes (compact)", "bytes (python)", "bytes (oslo)"
    );
    for (name, t) in [("l2pop", o), ("Neutron (rule 16)", n)] {
        println!(
            "  {:<22} {:>9} {:>16} {:>16} {:>16}",
            name,
            t.messages,
            thousands(t.compact),
            thousands(t.python),
            thousands(t.oslo)
        );
    }
    println!(
        "  {:<22} {:>9} {:>16} {:>16} {:>16}",
        "l2pop / Neutron",
        fmt_ratio(o.messages as f64 / n.messages as f64),
        fmt_ratio(o.compact as f64 / n.compact as f64),
        fmt_ratio(o.python as f64 / n.python as f64),
        fmt_ratio(o.oslo as f64 / n.oslo as f64),
    );
    println!(
        "  l2pop's full FDB equals Neutron's host-cast content: {}",
        if counts.same_full_fdb { "yes" } else { "NO" }
    );
    println!();
}

// ---------------------------------------------------------------------------------------------
// Case 4: apply cost against deployment size; memory per port.
// ---------------------------------------------------------------------------------------------

/// 10 hosts of 100 ports per network: `networks` networks over `10 × networks` hosts.
fn deployment(networks: u32) -> (Engine, Duration, usize, u64) {
    let before = ALLOCATOR.allocated();
    let started = Instant::now();
    let mut loader = Loader::new(vec![Engine::new()]);
    loader.agents(0..networks * 10);
    for n in 0..networks {
        loader.network(n, SMALL_SUBNET);
        let group = HostGroup {
            first: n * 10,
            count: 10,
            ports: 100,
        };
        loader.ports(n, SMALL_SUBNET, &[group]);
    }
    let elapsed = started.elapsed();
    let events = loader.events;
    let engine = loader.engines.pop().expect("one engine");
    let bytes = ALLOCATOR.allocated().saturating_sub(before);
    (engine, elapsed, bytes, events)
}

/// A port in the middle of the deployment: network `networks / 2`, its 6th host, slot 50.
fn down_up(networks: u32) -> [Event; 2] {
    let n = networks / 2;
    let h = n * 10 + 5;
    let id = port_id(n, h, 50);
    [
        Event::DeviceDown(DeviceDown { id, host: host(h) }),
        Event::DeviceUp(DeviceUp {
            id,
            host: host(h),
            refresh_tunnels: false,
        }),
    ]
}

#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    ports: u64,
    bytes: usize,
}

fn case4(c: &mut Criterion) -> (Option<Memory>, Option<Memory>) {
    let mut big: Option<Engine> = None;
    let mut small: Option<Engine> = None;
    let mut big_memory = None;
    let mut small_memory = None;
    let mut group = c.benchmark_group("case4_port_down_up");
    configure(&mut group, 20, 3);
    // Microsecond-scale: criterion's default linear sampling fits best.
    group.sampling_mode(SamplingMode::Auto);
    let events = down_up(1_000);
    group.bench_function("ports_1m", |b| {
        let engine = big.get_or_insert_with(|| {
            let (engine, elapsed, bytes, events) = deployment(1_000);
            println!(
                "case 4: 1,000,000 ports (1,000 networks x 10 hosts x 100 ports) loaded in {:.1} s \
                 ({events} events, {:.0} events/s); {} live heap bytes, {:.0} bytes per port",
                elapsed.as_secs_f64(),
                events as f64 / elapsed.as_secs_f64(),
                thousands(bytes as u64),
                bytes as f64 / 1e6
            );
            big_memory = Some(Memory {
                ports: 1_000_000,
                bytes,
            });
            engine
        });
        b.iter(|| {
            let down = engine.apply(black_box(&events[0])).expect("accepted");
            let up = engine.apply(black_box(&events[1])).expect("accepted");
            (down, up)
        });
    });
    let events = down_up(1);
    group.bench_function("ports_1k", |b| {
        let engine = small.get_or_insert_with(|| {
            let (engine, _, bytes, _) = deployment(1);
            small_memory = Some(Memory {
                ports: 1_000,
                bytes,
            });
            engine
        });
        b.iter(|| {
            let down = engine.apply(black_box(&events[0])).expect("accepted");
            let up = engine.apply(black_box(&events[1])).expect("accepted");
            (down, up)
        });
    });
    group.finish();
    // The notifications of one pair, for the record.
    if let Some(engine) = big.as_mut() {
        let events = down_up(1_000);
        let down = engine.apply(&events[0]).expect("accepted");
        let up = engine.apply(&events[1]).expect("accepted");
        println!(
            "case 4: one pair emits {} + {} fanouts ({} + {} bytes)",
            down.len(),
            up.len(),
            payload_bytes(&down),
            payload_bytes(&up)
        );
    }
    drop(big);
    (big_memory, small_memory)
}

fn payload_bytes(notifications: &[l2pop_model::Notification]) -> usize {
    notifications
        .iter()
        .map(|n| {
            serde_json::to_vec(&n.fdb_entries)
                .expect("serializable")
                .len()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The ratio table, from criterion's own estimates.
// ---------------------------------------------------------------------------------------------

fn main() {
    let since = SystemTime::now();
    let started = Instant::now();
    let stall_before = cpu_stall_us();
    let mut c = Criterion::default().configure_from_args();

    let case1_paired = case1(&mut c);
    let paired = case2(&mut c);
    let refresh = case3(&mut c);
    let (memory, small_memory) = case4(&mut c);

    c.final_summary();
    let elapsed = started.elapsed();
    let stall = stall_before
        .zip(cpu_stall_us())
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e6 / elapsed.as_secs_f64());

    let dir = criterion_dir();
    let m = |group: &str, bench: &str| median(&dir, group, bench, since);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);

    let c1 = (
        m("case1_full_fdb", "build_serialize"),
        m("case1_full_fdb", "serialize_only"),
    );
    let c2_static = m("case2_extension", "static_100k_build_serialize");
    let c2_native = m("case2_extension", "native_200k_build_serialize");
    let c2_empty = m("case2_extension", "empty_ext_build_serialize");
    let c2_none = m("case2_extension", "no_ext_build_serialize");
    let c3 = (
        m("case3_refresh", "l2pop_apply_serialize"),
        m("case3_refresh", "neutron_build_serialize"),
    );
    let c4 = (
        m("case4_port_down_up", "ports_1m"),
        m("case4_port_down_up", "ports_1k"),
    );
    let (o, n) = (refresh.ours, refresh.neutron);
    let per_port = |m: Option<Memory>| m.map(|m| m.bytes as f64 / m.ports as f64);

    let rows = [
        Row {
            case: "1",
            what: "full FDB 100k ports: build+serialize / serialize only",
            measured: ratio(c1.0, c1.1),
            target: Some(1.5),
            shown: None,
        },
        Row {
            case: "1",
            what: "  same, paired check (101 alternating runs, not criterion)",
            measured: case1_paired,
            target: Some(1.5),
            shown: None,
        },
        Row {
            case: "2",
            what: "StaticFdb +100k entries / +100k native ports (b+s)",
            measured: ratio(c2_static, c2_native),
            target: Some(1.1),
            shown: None,
        },
        Row {
            case: "2",
            what: "  same, paired check (101 alternating runs, not criterion)",
            measured: paired.static_fdb,
            target: Some(1.1),
            shown: None,
        },
        Row {
            case: "2",
            what: "empty extension / no extension, 100k ports (b+s)",
            measured: ratio(c2_empty, c2_none),
            target: Some(1.02),
            shown: None,
        },
        Row {
            case: "2",
            what: "  same, paired check (101 alternating runs, not criterion)",
            measured: paired.empty,
            target: Some(1.02),
            shown: None,
        },
        Row {
            case: "3",
            what: "refresh messages: l2pop / Neutron",
            measured: Some(o.messages as f64 / n.messages as f64),
            target: None,
            shown: Some(format!("{}/{}", o.messages, n.messages)),
        },
        Row {
            case: "3",
            what: "refresh bytes, compact fdb_entries: l2pop / Neutron",
            measured: Some(o.compact as f64 / n.compact as f64),
            target: None,
            shown: None,
        },
        Row {
            case: "3",
            what: "refresh bytes, oslo wire body: l2pop / Neutron",
            measured: Some(o.oslo as f64 / n.oslo as f64),
            target: None,
            shown: None,
        },
        Row {
            case: "3",
            what: "refresh time: l2pop apply / Neutron payloads build+ser",
            measured: ratio(c3.0, c3.1),
            target: None,
            shown: None,
        },
        Row {
            case: "4",
            what: "port down+up: 1,000,000 ports / 1,000 ports loaded",
            measured: ratio(c4.0, c4.1),
            target: Some(2.0),
            shown: None,
        },
        Row {
            case: "4",
            what: "live heap bytes per port, 1,000,000 ports",
            measured: per_port(memory),
            target: None,
            shown: per_port(memory).map(|b| format!("{b:.0} B")),
        },
    ];

    println!();
    println!("l2pop-engine benchmarks: ratios of medians measured in this run");
    println!("(criterion estimates under {})", dir.display());
    println!();
    print_table(&rows);
    println!();
    println!("medians:");
    let medians = [
        ("case1_full_fdb", "build_serialize"),
        ("case1_full_fdb", "serialize_only"),
        ("case1_full_fdb", "build_only"),
        ("case2_extension", "static_100k_build_serialize"),
        ("case2_extension", "native_200k_build_serialize"),
        ("case2_extension", "empty_ext_build_serialize"),
        ("case2_extension", "no_ext_build_serialize"),
        ("case2_extension", "static_100k_build_only"),
        ("case2_extension", "native_200k_build_only"),
        ("case2_extension", "static_extend_only"),
        ("case3_refresh", "l2pop_apply_serialize"),
        ("case3_refresh", "neutron_build_serialize"),
        ("case4_port_down_up", "ports_1m"),
        ("case4_port_down_up", "ports_1k"),
    ];
    for (group, bench) in medians {
        let value = m(group, bench).map_or_else(|| "not run".to_owned(), fmt_ns);
        println!("  {:<48} {:>14}", format!("{group}/{bench}"), value);
    }
    if let Some(b) = per_port(small_memory) {
        println!("  live heap bytes per port with 1,000 ports: {b:.0} B");
    }
    print_refresh(&refresh);
    if let Some(stall) = stall {
        println!(
            "machine: some task waited for a CPU during {:.1}% of the run (Linux PSI); other \
             processes competing with this one make the ratios noisier",
            stall * 100.0
        );
    }
}

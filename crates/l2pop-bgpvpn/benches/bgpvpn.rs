//! `cargo bench -p l2pop-bgpvpn`: what external devices learned through the BGPVPN extension
//! cost in the full FDB and to learn, as ratios against baselines measured in the same run
//! (docs/benchmarks.md, "BGPVPN: external devices in the full FDB").
//!
//! 1. Full FDB of a host joining a vxlan network of 100,000 native ports plus 100,000 devices
//!    behind 100 gateways learned through the extension, vs 200,000 native ports (the same
//!    shape): build + serialize (target ≤ 1.1), build only, and the extension's own
//!    `extend_full_fdb`.
//! 2. RFE 1793653's "overhead of adding more information to the FDB": the 100,000-port network
//!    with the extension's 100,000 devices vs without any extension: ratio, ns per extension
//!    entry, bytes added.
//! 3. Learning: one `bgp_devices` op of 1,000 new devices on a BGPVPN holding 100,000 devices
//!    vs one holding 1,000 (≤ 2); the extension's `apply` alone; the same for an op of 1 device.
//!
//! The approach and the helpers are copied from `crates/l2pop-engine/benches/engine.rs` (this
//! crate's engine cannot depend on it the other way round). Timings are criterion's; at the end
//! `main` reads each median back from criterion's `estimates.json` and prints the table. A
//! missed target is printed, never a failure: nothing here asserts on time.

#![allow(clippy::unwrap_used)]

#[path = "../../l2pop-engine/benches/support/deployment.rs"]
mod deployment;
#[path = "../../l2pop-engine/benches/support/report.rs"]
mod report;

use std::cell::RefCell;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BatchSize, Criterion};
use deployment::*;
use l2pop_bgpvpn::{Bgpvpn, BgpvpnOp};
use l2pop_engine::{
    Engine, EngineBuilder, ExtensionChanges, ExtensionEntries, FdbExtension, FullFdbRequest,
};
use l2pop_model::{Mac, Notification};
use report::{Row, cpu_stall_us, criterion_dir, fmt_ns, median, print_table, thousands};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Deployments, built through the public API only (as in the engine's bench).
// ---------------------------------------------------------------------------------------------

/// The only network of every engine (network 0 on `LARGE_SUBNET`).
const NET: u32 = 0;
/// The BGPVPN's VNI: the network's segmentation id (the association rule).
const SEGMENTATION_ID: u64 = segmentation_id(NET);

/// The `offset`-th host address of the large subnet.
fn address_in_network(offset: u32) -> IpAddr {
    address(&LARGE_SUBNET.parse().expect("valid cidr"), offset)
}

// ---------------------------------------------------------------------------------------------
// The BGPVPN: one l2 BGPVPN (vni 1001, RT 65000:1001) associated with the network, one BGP agent
// hosting a speaker bound to it, gateways and devices learned by that agent.
// ---------------------------------------------------------------------------------------------

const BGP_AGENT: &str = "bgp-agent-0";
const ROUTE_TARGET: &str = "65000:1001";
const BGPVPN_ID: &str = "66666666-6666-4666-8666-666666661001";
const SPEAKER_ID: &str = "55555555-5555-4555-8555-555555551001";
const GATEWAYS: u32 = 100;
const DEVICES_PER_GATEWAY: u32 = 1_000;
/// The devices of the 100-gateway BGPVPN, and the extension entries they add besides the 100
/// flooding entries.
const DEVICES: u32 = GATEWAYS * DEVICES_PER_GATEWAY;
/// Case 3: the op's devices (behind gateway 0), numbered after the loaded ones.
const LEARNED: std::ops::Range<u32> = DEVICES..DEVICES + 1_000;

fn op(value: Value) -> BgpvpnOp {
    serde_json::from_value(value).expect("valid BGPVPN op")
}

/// Device `d`: MAC 02:42:00 + d, the address the `d`-th extra native port of the 200,000-port
/// network has (so both full FDBs have nearly the same bytes).
fn device_route(d: u32, vtep: IpAddr, withdrawn: bool) -> Value {
    let [_, a, b, c] = d.to_be_bytes();
    json!({
        "mac": Mac::new([0x02, 0x42, 0x00, a, b, c]).to_string(),
        "ip": address_in_network(100_000 + d).to_string(),
        "vtep": vtep.to_string(),
        "route_targets": [ROUTE_TARGET],
        "vni": SEGMENTATION_ID,
        "withdrawn": withdrawn,
    })
}

/// One `bgp_devices` op: `devices` behind gateway `g`.
fn devices_op(devices: std::ops::Range<u32>, g: u32, withdrawn: bool) -> BgpvpnOp {
    let devices: Vec<Value> = devices
        .map(|d| device_route(d, gateway_vtep(g), withdrawn))
        .collect();
    op(json!({"op": "bgp_devices", "host": BGP_AGENT, "devices": devices}))
}

fn setup_ops(gateways: u32) -> Vec<BgpvpnOp> {
    let mut ops: Vec<BgpvpnOp> = [
        json!({"op": "bgp_agent", "host": BGP_AGENT}),
        json!({"op": "bgp_speaker", "id": SPEAKER_ID, "agents": [BGP_AGENT]}),
        json!({"op": "bgpvpn_create", "id": BGPVPN_ID, "type": "l2", "vni": SEGMENTATION_ID,
               "route_targets": [ROUTE_TARGET]}),
        json!({"op": "network_association_create", "bgpvpn_id": BGPVPN_ID,
               "network_id": network_id(NET).to_string()}),
        json!({"op": "bgp_speaker_add_vpn", "speaker_id": SPEAKER_ID, "bgpvpn_id": BGPVPN_ID}),
    ]
    .into_iter()
    .map(op)
    .collect();
    let routes: Vec<Value> = (0..gateways)
        .map(|g| {
            json!({"vtep": gateway_vtep(g).to_string(), "route_targets": [ROUTE_TARGET],
                   "vni": SEGMENTATION_ID})
        })
        .collect();
    ops.push(op(
        json!({"op": "bgp_gateways", "host": BGP_AGENT, "gateways": routes}),
    ));
    // Batches of 1,000 devices: one op per gateway.
    for g in 0..gateways {
        let first = g * DEVICES_PER_GATEWAY;
        ops.push(devices_op(first..first + DEVICES_PER_GATEWAY, g, false));
    }
    ops
}

/// Applies `op` through the engine, as a driver would.
fn bgpvpn(engine: &mut Engine, op: &BgpvpnOp) -> Vec<Notification> {
    engine
        .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, topology| {
            ext.apply(op, topology).map_err(Into::into)
        })
        .expect("BGPVPN op accepted")
}

fn with_bgpvpn() -> EngineBuilder {
    EngineBuilder::new()
        .extension(l2pop_bgpvpn::NAME, Bgpvpn::new())
        .expect("valid extension name")
}

/// Loads the BGPVPN of `gateways` gateways of 1,000 devices; checks that nothing was skipped.
fn learn(engine: &mut Engine, gateways: u32) -> Duration {
    let ops = setup_ops(gateways);
    let started = Instant::now();
    for op in &ops {
        bgpvpn(engine, op);
    }
    let elapsed = started.elapsed();
    let engine_reports = engine.take_reports();
    assert!(engine_reports.is_empty(), "engine: {engine_reports:?}");
    let mut reports = Vec::new();
    engine
        .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, _| {
            reports = ext.take_reports();
            Ok(ExtensionChanges::default())
        })
        .expect("registered extension");
    assert!(reports.is_empty(), "extension: {reports:?}");
    elapsed
}

/// The three 100,000-port engines, loaded in lockstep.
struct Trio {
    /// + the BGPVPN of 100 gateways x 1,000 devices (cases 1, 2 and 3).
    big_vpn: Engine,
    /// + the BGPVPN of 1 gateway x 1,000 devices (case 3's baseline).
    small_vpn: Engine,
    /// No extension registered (case 2's baseline).
    no_ext: Engine,
}

fn load_trio() -> Trio {
    let started = Instant::now();
    let [mut big_vpn, mut small_vpn, no_ext] =
        large_networks([with_bgpvpn(), with_bgpvpn(), EngineBuilder::new()], &[]);
    let native = started.elapsed();
    let big = learn(&mut big_vpn, GATEWAYS);
    learn(&mut small_vpn, 1);
    println!(
        "setup: 3 engines of 100,000 active ports on 1,000 hosts loaded in lockstep in {:.1} s; \
         the BGPVPN of 100 gateways learned 100,000 devices (101 bgp_gateways/bgp_devices ops) \
         in {:.2} s",
        native.as_secs_f64(),
        big.as_secs_f64()
    );
    print_full_fdb_size(
        "100,000 ports + BGPVPN (100 gateways x (flood + 1,000 devices))",
        &big_vpn,
    );
    print_full_fdb_size("100,000 ports, no extension", &no_ext);
    Trio {
        big_vpn,
        small_vpn,
        no_ext,
    }
}

/// Case 1's baseline: 100,000 more native ports on 100 more hosts of 1,000 (as many VTEPs and
/// entries as the gateways).
fn load_native_200k() -> Engine {
    let extra = HostGroup {
        first: 1_000,
        count: 100,
        ports: 1_000,
    };
    let [engine] = large_networks([EngineBuilder::new()], &[extra]);
    print_full_fdb_size(
        "200,000 native ports (1,000 hosts x 100 + 100 hosts x 1,000)",
        &engine,
    );
    engine
}

fn full_fdb_bytes(engine: &Engine) -> (usize, usize) {
    let fdb = engine
        .full_fdb(&host(NEWCOMER), network_id(NET), None)
        .expect("known network");
    let bytes = serde_json::to_vec(&fdb.fdb_entries).expect("serializable");
    (entry_count(&fdb.fdb_entries), bytes.len())
}

// ---------------------------------------------------------------------------------------------
// Case 1: BGPVPN devices vs native ports in the full FDB.
// ---------------------------------------------------------------------------------------------

fn case1(c: &mut Criterion, trio: &mut Option<Trio>, native: &mut Option<Engine>) {
    let newcomer = host(NEWCOMER);
    let net = network_id(NET);
    let mut group = c.benchmark_group("bgpvpn_case1_full_fdb");
    configure(&mut group, 15, 4);
    group.bench_function("bgpvpn_100k_build_serialize", |b| {
        let engine = &trio.get_or_insert_with(load_trio).big_vpn;
        b.iter(|| build_and_serialize(engine, black_box(&newcomer), net));
    });
    group.bench_function("native_200k_build_serialize", |b| {
        let engine = native.get_or_insert_with(load_native_200k);
        b.iter(|| build_and_serialize(engine, black_box(&newcomer), net));
    });
    group.bench_function("bgpvpn_100k_build_only", |b| {
        let engine = &trio.get_or_insert_with(load_trio).big_vpn;
        b.iter(|| engine.full_fdb(black_box(&newcomer), net, None));
    });
    group.bench_function("native_200k_build_only", |b| {
        let engine = native.get_or_insert_with(load_native_200k);
        b.iter(|| engine.full_fdb(black_box(&newcomer), net, None));
    });
    // The extension's own work, called as the engine calls it, on the engine's own instance
    // (`Bgpvpn` is not `Clone`): the timing loop runs inside `update_extension`, which then
    // receives no change.
    group.bench_function("bgpvpn_extend_full_fdb_only", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).big_vpn;
        let host_vtep = engine.vtep(&newcomer);
        engine
            .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, topology| {
                let request = FullFdbRequest {
                    network: topology.network(net).expect("known network"),
                    host: &newcomer,
                    host_vtep,
                };
                b.iter(|| {
                    let mut out = ExtensionEntries::default();
                    ext.extend_full_fdb(black_box(&request), &mut out)
                        .expect("BGPVPN extension never fails");
                    out.len()
                });
                Ok(ExtensionChanges::default())
            })
            .expect("registered extension");
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Case 2: the overhead of the extension's entries (RFE 1793653).
// ---------------------------------------------------------------------------------------------

fn case2(c: &mut Criterion, trio: &mut Option<Trio>) {
    let newcomer = host(NEWCOMER);
    let net = network_id(NET);
    let mut group = c.benchmark_group("bgpvpn_case2_overhead");
    configure(&mut group, 15, 4);
    group.bench_function("no_ext_100k_build_serialize", |b| {
        let engine = &trio.get_or_insert_with(load_trio).no_ext;
        b.iter(|| build_and_serialize(engine, black_box(&newcomer), net));
    });
    group.bench_function("bgpvpn_100k_build_serialize", |b| {
        let engine = &trio.get_or_insert_with(load_trio).big_vpn;
        b.iter(|| build_and_serialize(engine, black_box(&newcomer), net));
    });
    group.bench_function("no_ext_100k_build_only", |b| {
        let engine = &trio.get_or_insert_with(load_trio).no_ext;
        b.iter(|| engine.full_fdb(black_box(&newcomer), net, None));
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Case 3: learning 1,000 devices on a large vs a small BGPVPN.
// ---------------------------------------------------------------------------------------------

/// What one add of `LEARNED` and its withdraw send, and how many entries they carry.
#[derive(Debug, Default, Clone, Copy)]
struct OpTraffic {
    notifications: usize,
    bytes: usize,
}

fn traffic(notifications: &[Notification]) -> OpTraffic {
    OpTraffic {
        notifications: notifications.len(),
        bytes: notifications
            .iter()
            .map(|n| {
                serde_json::to_vec(&n.fdb_entries)
                    .expect("serializable")
                    .len()
            })
            .sum(),
    }
}

/// `add` timed through the engine, each run after an untimed `withdraw` of the same devices
/// (`iter_batched`, one input per batch: withdraw, add, withdraw, add...).
fn bench_learn(
    b: &mut criterion::Bencher<'_>,
    engine: &mut Engine,
    add: &BgpvpnOp,
    withdraw: &BgpvpnOp,
) {
    let engine = RefCell::new(engine);
    b.iter_batched(
        || {
            bgpvpn(&mut engine.borrow_mut(), withdraw);
        },
        |()| bgpvpn(&mut engine.borrow_mut(), black_box(add)),
        BatchSize::PerIteration,
    );
}

/// The same, timing only the extension's `apply` inside `update_extension` (the engine's
/// claims and notifications for the changes are left out).
fn bench_learn_extension_only(b: &mut criterion::Bencher<'_>, engine: &mut Engine, add: &BgpvpnOp) {
    let withdraw = withdraw_of_learned();
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            bgpvpn(engine, &withdraw);
            engine
                .update_extension::<Bgpvpn>(l2pop_bgpvpn::NAME, |ext, topology| {
                    let started = Instant::now();
                    let changes = ext.apply(black_box(add), topology);
                    total += started.elapsed();
                    changes.map_err(Into::into)
                })
                .expect("BGPVPN op accepted");
        }
        total
    });
}

fn withdraw_of_learned() -> BgpvpnOp {
    devices_op(LEARNED, 0, true)
}

fn case3(c: &mut Criterion, trio: &mut Option<Trio>) -> Option<(OpTraffic, OpTraffic)> {
    let add = devices_op(LEARNED, 0, false);
    let withdraw = withdraw_of_learned();
    let mut group = c.benchmark_group("bgpvpn_case3_learn");
    configure(&mut group, 20, 3);
    group.bench_function("add_1k_devices_to_100k", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).big_vpn;
        bench_learn(b, engine, &add, &withdraw);
    });
    group.bench_function("add_1k_devices_to_1k", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).small_vpn;
        bench_learn(b, engine, &add, &withdraw);
    });
    group.bench_function("extension_apply_1k_to_100k", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).big_vpn;
        bench_learn_extension_only(b, engine, &add);
    });
    group.bench_function("extension_apply_1k_to_1k", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).small_vpn;
        bench_learn_extension_only(b, engine, &add);
    });
    // One device per op, the usual size of a BGP update: what an op costs beyond its devices.
    let add_one = devices_op(LEARNED.start..LEARNED.start + 1, 0, false);
    let withdraw_one = devices_op(LEARNED.start..LEARNED.start + 1, 0, true);
    group.bench_function("add_1_device_to_100k", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).big_vpn;
        bench_learn(b, engine, &add_one, &withdraw_one);
    });
    group.bench_function("add_1_device_to_1k", |b| {
        let engine = &mut trio.get_or_insert_with(load_trio).small_vpn;
        bench_learn(b, engine, &add_one, &withdraw_one);
    });
    group.finish();

    // Put both BGPVPNs back as loaded, and record what one add and one withdraw send.
    let trio = trio.as_mut()?;
    let withdraw = withdraw_of_learned();
    let mut sent = None;
    for engine in [&mut trio.big_vpn, &mut trio.small_vpn] {
        bgpvpn(engine, &withdraw);
        let added = traffic(&bgpvpn(engine, &add));
        let withdrawn = traffic(&bgpvpn(engine, &withdraw));
        sent.get_or_insert((added, withdrawn));
    }
    sent
}

// ---------------------------------------------------------------------------------------------
// The ratio table, from criterion's own estimates (copied from the engine's bench).
// ---------------------------------------------------------------------------------------------

fn main() {
    let since = SystemTime::now();
    let started = Instant::now();
    let stall_before = cpu_stall_us();
    let mut c = Criterion::default().configure_from_args();

    let mut trio: Option<Trio> = None;
    let mut native: Option<Engine> = None;
    case1(&mut c, &mut trio, &mut native);
    case2(&mut c, &mut trio);
    let learned = case3(&mut c, &mut trio);
    // Bytes, measured once (not timed).
    let bytes = |engine: Option<&Engine>| engine.map(|e| full_fdb_bytes(e).1 as f64);
    let big_bytes = bytes(trio.as_ref().map(|t| &t.big_vpn));
    let no_ext_bytes = bytes(trio.as_ref().map(|t| &t.no_ext));
    let native_bytes = bytes(native.as_ref());
    drop(trio);
    drop(native);

    c.final_summary();
    let elapsed = started.elapsed();
    let stall = stall_before
        .zip(cpu_stall_us())
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e6 / elapsed.as_secs_f64());

    let dir = criterion_dir();
    let m = |group: &str, bench: &str| median(&dir, group, bench, since);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let per_entry = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (a - b) / 1e5);

    const C1: &str = "bgpvpn_case1_full_fdb";
    const C2: &str = "bgpvpn_case2_overhead";
    const C3: &str = "bgpvpn_case3_learn";
    let c1_vpn = m(C1, "bgpvpn_100k_build_serialize");
    let c1_native = m(C1, "native_200k_build_serialize");
    let c1_vpn_build = m(C1, "bgpvpn_100k_build_only");
    let c1_native_build = m(C1, "native_200k_build_only");
    let c1_extend = m(C1, "bgpvpn_extend_full_fdb_only");
    let c2_none = m(C2, "no_ext_100k_build_serialize");
    let c2_vpn = m(C2, "bgpvpn_100k_build_serialize");
    let c2_none_build = m(C2, "no_ext_100k_build_only");
    let c3_big = m(C3, "add_1k_devices_to_100k");
    let c3_small = m(C3, "add_1k_devices_to_1k");
    let c3_ext_big = m(C3, "extension_apply_1k_to_100k");
    let c3_ext_small = m(C3, "extension_apply_1k_to_1k");
    let c3_one_big = m(C3, "add_1_device_to_100k");
    let c3_one_small = m(C3, "add_1_device_to_1k");

    let ns = |v: Option<f64>| v.map(|v| format!("{v:.0} ns"));
    let rows = [
        Row {
            case: "1",
            what: "BGPVPN +100k devices / +100k native ports (build+serialize)",
            measured: ratio(c1_vpn, c1_native),
            target: Some(1.1),
            shown: None,
        },
        Row {
            case: "1",
            what: "  same, build only",
            measured: ratio(c1_vpn_build, c1_native_build),
            target: None,
            shown: None,
        },
        Row {
            case: "1",
            what: "  extension's extend_full_fdb / BGPVPN build only",
            measured: ratio(c1_extend, c1_vpn_build),
            target: None,
            shown: None,
        },
        Row {
            case: "2",
            what: "with BGPVPN 100k devices / no extension, 100k ports (b+s)",
            measured: ratio(c2_vpn, c2_none),
            target: None,
            shown: None,
        },
        Row {
            case: "2",
            what: "  ns per extension entry, (with - without) / 100,000 (b+s)",
            measured: per_entry(c2_vpn, c2_none),
            target: None,
            shown: ns(per_entry(c2_vpn, c2_none)),
        },
        Row {
            case: "2",
            what: "  ns per extension entry, build only",
            measured: per_entry(c1_vpn_build, c2_none_build),
            target: None,
            shown: ns(per_entry(c1_vpn_build, c2_none_build)),
        },
        Row {
            case: "2",
            what: "  ns per native entry, (200k - 100k native) / 100,000 (b+s)",
            measured: per_entry(c1_native, c2_none),
            target: None,
            shown: ns(per_entry(c1_native, c2_none)),
        },
        Row {
            case: "2",
            what: "  ns per native entry, build only",
            measured: per_entry(c1_native_build, c2_none_build),
            target: None,
            shown: ns(per_entry(c1_native_build, c2_none_build)),
        },
        Row {
            case: "2",
            what: "  bytes added by the extension (compact JSON)",
            measured: big_bytes.zip(no_ext_bytes).map(|(a, b)| a - b),
            target: None,
            shown: big_bytes
                .zip(no_ext_bytes)
                .map(|(a, b)| thousands((a - b) as u64)),
        },
        Row {
            case: "2",
            what: "  bytes added: BGPVPN / 100k native ports",
            measured: big_bytes
                .zip(no_ext_bytes)
                .zip(native_bytes)
                .map(|((vpn, none), native)| (vpn - none) / (native - none)),
            target: None,
            shown: None,
        },
        Row {
            case: "3",
            what: "bgp_devices +1,000: BGPVPN of 100k / of 1k devices",
            measured: ratio(c3_big, c3_small),
            target: Some(2.0),
            shown: None,
        },
        Row {
            case: "3",
            what: "  same, the extension's apply alone",
            measured: ratio(c3_ext_big, c3_ext_small),
            target: None,
            shown: None,
        },
        Row {
            case: "3",
            what: "  per learned device, BGPVPN of 100k (through the engine)",
            measured: c3_big,
            target: None,
            shown: c3_big.map(|v| format!("{:.0} ns", v / 1e3)),
        },
        Row {
            case: "3",
            what: "bgp_devices +1 device: BGPVPN of 100k / of 1k devices",
            measured: ratio(c3_one_big, c3_one_small),
            target: None,
            shown: None,
        },
    ];

    println!();
    println!("l2pop-bgpvpn benchmarks: ratios of medians measured in this run");
    println!("(criterion estimates under {})", dir.display());
    println!();
    print_table(&rows);
    println!();
    println!("medians:");
    let medians = [
        (C1, "bgpvpn_100k_build_serialize"),
        (C1, "native_200k_build_serialize"),
        (C1, "bgpvpn_100k_build_only"),
        (C1, "native_200k_build_only"),
        (C1, "bgpvpn_extend_full_fdb_only"),
        (C2, "no_ext_100k_build_serialize"),
        (C2, "bgpvpn_100k_build_serialize"),
        (C2, "no_ext_100k_build_only"),
        (C3, "add_1k_devices_to_100k"),
        (C3, "add_1k_devices_to_1k"),
        (C3, "extension_apply_1k_to_100k"),
        (C3, "extension_apply_1k_to_1k"),
        (C3, "add_1_device_to_100k"),
        (C3, "add_1_device_to_1k"),
    ];
    for (group, bench) in medians {
        let value = m(group, bench).map_or_else(|| "not run".to_owned(), fmt_ns);
        println!("  {:<50} {:>14}", format!("{group}/{bench}"), value);
    }
    if let Some((added, withdrawn)) = learned {
        println!(
            "case 3: one add of 1,000 devices sends {} notification(s), {} bytes of fdb_entries; \
             its withdraw {} notification(s), {} bytes",
            added.notifications,
            thousands(added.bytes as u64),
            withdrawn.notifications,
            thousands(withdrawn.bytes as u64)
        );
    }
    if let Some(stall) = stall {
        println!(
            "machine: some task waited for a CPU during {:.1}% of the run (Linux PSI); other \
             processes competing with this one make the ratios noisier",
            stall * 100.0
        );
    }
}

//! Root-only bench (`cargo bench -p l2pop-dataplane --features netlink --bench executor`):
//!
//! 1. 100,000 unicast FDB entries and 100,000 neighbour entries programmed through the netlink
//!    executor vs `bridge -batch` / `ip -batch` files of the same entries, each into a fresh
//!    namespace, in the same run;
//!    and vs one `bridge fdb` process per entry (Neutron's Linux bridge agent), on a sample;
//! 2. one changed entry on a host holding 100,000 entries vs an empty host: the reconcile cost
//!    (`plan_networks` + `Observed::apply`) divided by the cost of one netlink write.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use l2pop_dataplane::{Desired, DesiredNetwork, Netlink, Observed, Op, plan, plan_networks};
use l2pop_model::Mac;

const N: u32 = 100_000;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("l2pdp-{}-{tag}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        run(&all);
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mac(i: u32) -> Mac {
    let [_, a, b, c] = i.to_be_bytes();
    Mac::new([0xfa, 0x16, 0x3e, a, b, c])
}

fn vtep(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, (i % 200) as u8, 1))
}

fn neigh_ip(i: u32) -> IpAddr {
    let [_, a, b, c] = i.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, a, b, c))
}

fn network(vni: u32) -> DesiredNetwork {
    DesiredNetwork::new(
        vni,
        format!("brqnet{vni}"),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    )
}

fn rate(n: u32, d: Duration) -> f64 {
    f64::from(n) / d.as_secs_f64()
}

async fn executor_vs_batch() {
    let dev = "vxlan-1";
    let fdb_ops: Vec<Op> = (1..=N)
        .map(|i| Op::FdbReplace {
            dev: dev.into(),
            mac: mac(i),
            dst: vtep(i),
        })
        .collect();
    let neigh_ops: Vec<Op> = (1..=N)
        .map(|i| Op::NeighReplace {
            dev: dev.into(),
            ip: neigh_ip(i),
            mac: mac(i),
        })
        .collect();

    // Ours.
    let ns = Netns::create("exec");
    let netlink = Netlink::connect(Some(&ns.0)).await.unwrap();
    let mut d = Desired::default();
    d.insert(network(1));
    let setup = plan(&d, &netlink.observe().await.unwrap());
    assert!(netlink.execute(&setup).await.iter().all(Result::is_ok));
    let start = Instant::now();
    let results = netlink.execute(&fdb_ops).await;
    let ours_fdb = start.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let start = Instant::now();
    let results = netlink.execute(&neigh_ops).await;
    let ours_neigh = start.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let start = Instant::now();
    let observed = netlink.observe().await.unwrap();
    let dump = start.elapsed();
    assert_eq!(observed.entry_count(), 2 * N as usize);

    // iproute2 batch files of the same entries.
    let ns2 = Netns::create("batch");
    ns2.exec(&["ip", "link", "add", "brqnet1", "type", "bridge"]);
    ns2.exec(&[
        "ip",
        "link",
        "add",
        dev,
        "type",
        "vxlan",
        "id",
        "1",
        "local",
        "192.0.2.1",
        "dstport",
        "4789",
        "nolearning",
        "proxy",
    ]);
    ns2.exec(&["ip", "link", "set", dev, "master", "brqnet1"]);
    ns2.exec(&["ip", "link", "set", dev, "up"]);
    let dir = std::env::temp_dir().join(format!("l2pdp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut fdb_file, mut neigh_file) = (String::new(), String::new());
    for i in 1..=N {
        writeln!(
            fdb_file,
            "fdb replace {} dev {dev} dst {} self permanent",
            mac(i),
            vtep(i)
        )
        .unwrap();
        writeln!(
            neigh_file,
            "neigh replace {} lladdr {} dev {dev} nud permanent",
            neigh_ip(i),
            mac(i)
        )
        .unwrap();
    }
    let fdb_path = dir.join("fdb.batch");
    let neigh_path = dir.join("neigh.batch");
    std::fs::write(&fdb_path, fdb_file).unwrap();
    std::fs::write(&neigh_path, neigh_file).unwrap();
    let start = Instant::now();
    ns2.exec(&["bridge", "-batch", fdb_path.to_str().unwrap()]);
    let batch_fdb = start.elapsed();
    let start = Instant::now();
    ns2.exec(&["ip", "-batch", neigh_path.to_str().unwrap()]);
    let batch_neigh = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    // Neutron's Linux bridge agent's way: one `bridge fdb` process per entry (its shell
    // era; 100,000 processes would take minutes, so a sample gives the rate).
    const SAMPLE: u32 = 2_000;
    let start = Instant::now();
    for i in N + 1..=N + SAMPLE {
        run(&[
            "bridge",
            "-n",
            &ns2.0,
            "fdb",
            "replace",
            &mac(i).to_string(),
            "dev",
            dev,
            "dst",
            &vtep(i).to_string(),
            "self",
            "permanent",
        ]);
    }
    let per_process = start.elapsed();

    println!(
        "unicast FDB entries, one `bridge fdb` process each (sample of {SAMPLE}): {:>9.0}/s   executor ÷ per-process ratio {:.1}x",
        rate(SAMPLE, per_process),
        rate(N, ours_fdb) / rate(SAMPLE, per_process)
    );
    println!(
        "100,000 unicast FDB entries:   executor {:>9.0}/s ({:?})   bridge -batch {:>9.0}/s ({:?})   ratio {:.2}x",
        rate(N, ours_fdb),
        ours_fdb,
        rate(N, batch_fdb),
        batch_fdb,
        batch_fdb.as_secs_f64() / ours_fdb.as_secs_f64()
    );
    println!(
        "100,000 neighbour entries:     executor {:>9.0}/s ({:?})   ip -batch     {:>9.0}/s ({:?})   ratio {:.2}x",
        rate(N, ours_neigh),
        ours_neigh,
        rate(N, batch_neigh),
        batch_neigh,
        batch_neigh.as_secs_f64() / ours_neigh.as_secs_f64()
    );
    println!("observe (dump) of 200,000 entries: {dump:?}");

    // One netlink write, on the loaded host and in a fresh one.
    let loaded = one_write(&netlink, dev).await;
    drop(netlink);
    drop(ns);
    let empty_ns = Netns::create("one");
    let netlink = Netlink::connect(Some(&empty_ns.0)).await.unwrap();
    assert!(netlink.execute(&setup).await.iter().all(Result::is_ok));
    let empty = one_write(&netlink, dev).await;
    println!(
        "one netlink write (FdbReplace, ack awaited): {empty:?} on an empty host, {loaded:?} with 200,000 entries"
    );
    reconcile_cost(empty);
}

async fn one_write(netlink: &Netlink, dev: &str) -> Duration {
    let rounds = 2000u32;
    let start = Instant::now();
    for i in 0..rounds {
        let op = Op::FdbReplace {
            dev: dev.into(),
            mac: mac(N + 1),
            dst: vtep(i),
        };
        assert!(netlink.execute(std::slice::from_ref(&op)).await[0].is_ok());
    }
    start.elapsed() / rounds
}

/// plan_networks + apply for one changed entry, with `others` networks of `per` entries around.
fn reconcile_time(others: u32, per: u32, own: u32) -> Duration {
    let mut desired = Desired::default();
    let mut observed = Observed::default();
    let fill = |vni: u32, count: u32, d: &mut Desired, o: &mut Observed| {
        let mut net = network(vni);
        for i in 0..count {
            net.unicast.insert(mac(vni * 1000 + i), vtep(i));
        }
        for op in plan_networks(
            &{
                let mut one = Desired::default();
                one.insert(net.clone());
                one
            },
            o,
            &BTreeSet::from([vni]),
        ) {
            o.apply(&op);
        }
        d.insert(net);
    };
    for vni in 2..2 + others {
        fill(vni, per, &mut desired, &mut observed);
    }
    fill(1, own, &mut desired, &mut observed);
    let changed = BTreeSet::from([1]);
    let rounds = 10_000u32;
    let start = Instant::now();
    for i in 0..rounds {
        let net = desired.networks.get_mut(&1).unwrap();
        net.unicast.insert(mac(1), vtep(i % 7 + 1));
        let ops = plan_networks(&desired, &observed, &changed);
        assert_eq!(ops.len(), usize::from(i % 7 != vtep_index_of_previous(i)));
        for op in &ops {
            observed.apply(op);
        }
    }
    start.elapsed() / rounds
}

/// The vtep index used in the previous round (the first round replaces the fill's value).
fn vtep_index_of_previous(i: u32) -> u32 {
    if i == 0 { u32::MAX } else { (i - 1) % 7 }
}

fn reconcile_cost(write: Duration) {
    let empty = reconcile_time(0, 0, 1);
    let loaded = reconcile_time(100, 1000, 1);
    let loaded_big = reconcile_time(100, 1000, 1000);
    let ratio = |d: Duration| d.as_secs_f64() / write.as_secs_f64();
    println!("reconcile of one changed entry (plan_networks + apply), / one netlink write:");
    println!(
        "  empty host:                                   {empty:?} = {:.4} writes",
        ratio(empty)
    );
    println!(
        "  100 other networks x 1,000 entries (100,000): {loaded:?} = {:.4} writes",
        ratio(loaded)
    );
    println!(
        "  same, the changed network itself holds 1,000: {loaded_big:?} = {:.4} writes",
        ratio(loaded_big)
    );
}

fn main() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("executor bench skipped: needs root (network namespaces)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(executor_vs_batch());
}

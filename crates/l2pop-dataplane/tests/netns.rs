//! Root-only: programs a real kernel in a private network namespace through the netlink backend
//! and checks the result with iproute2 (`bridge -j fdb show`, `ip -j neigh show`), which is
//! independent of this crate's parsing. `L2POP_SKIP_NETNS=1` skips it when not root.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use l2pop_dataplane::error::{EEXIST, ENOENT};
use l2pop_dataplane::{Desired, DesiredNetwork, DeviceChanged, Netlink, Observed, Op, plan};
use l2pop_model::Mac;
use serde_json::Value;

/// Deletes the namespace when dropped, also on panic.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("l2pdp-{}-{tag}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) -> String {
        run(Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args))
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.exec(args);
        if out.trim().is_empty() {
            return Vec::new();
        }
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    }

    /// `bridge -j fdb show dev DEV`: the `self` entries with a dst, as (mac, dst).
    fn fdb(&self, dev: &str) -> BTreeSet<(String, String)> {
        self.json(&["bridge", "-j", "fdb", "show", "dev", dev])
            .iter()
            .filter(|e| {
                e["dst"].is_string()
                    && e["flags"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x == "self"))
            })
            .map(|e| {
                (
                    e["mac"].as_str().unwrap().to_owned(),
                    e["dst"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// `ip -j neigh show dev DEV nud permanent`, as (ip, lladdr).
    fn neigh(&self, dev: &str) -> BTreeSet<(String, String)> {
        self.json(&["ip", "-j", "neigh", "show", "dev", dev, "nud", "permanent"])
            .iter()
            .map(|e| {
                (
                    e["dst"].as_str().unwrap().to_owned(),
                    e["lladdr"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn link(&self, dev: &str) -> Option<Value> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.0, "ip", "-j", "-d", "link", "show", dev,
            ])
            .output()
            .unwrap();
        out.status.success().then(|| {
            serde_json::from_slice::<Vec<Value>>(&out.stdout)
                .unwrap()
                .remove(0)
        })
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().nth(1) == Some("0"))
}

/// Whether to run: root, or fail clearly unless `L2POP_SKIP_NETNS=1`.
fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("L2POP_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("skipped: the netns test needs root (L2POP_SKIP_NETNS=1)");
        return false;
    }
    panic!(
        "the netns test needs root (network namespaces, netlink writes); run it as root or set L2POP_SKIP_NETNS=1"
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

fn desired() -> Desired {
    let mut d = Desired::default();
    let mut net = DesiredNetwork::new(100, "brqnet100", ip("192.0.2.1"));
    net.ports.insert("tapport0001".into());
    net.ports.insert("tapabsent0002".into());
    net.flood.extend([ip("192.0.2.2"), ip("192.0.2.3")]);
    net.unicast
        .insert(mac("fa:16:3e:00:00:01"), ip("192.0.2.2"));
    net.unicast
        .insert(mac("fa:16:3e:00:00:02"), ip("192.0.2.3"));
    net.neighbours
        .insert(ip("10.0.0.1"), mac("fa:16:3e:00:00:01"));
    net.neighbours
        .insert(ip("fd10::2"), mac("fa:16:3e:00:00:02"));
    d.insert(net);
    let mut net6 = DesiredNetwork::new(200, "brqnet200", ip("fd00::1"));
    net6.flood.insert(ip("fd00::2"));
    net6.unicast.insert(mac("fa:16:3e:00:02:01"), ip("fd00::3"));
    net6.neighbours
        .insert(ip("10.2.0.1"), mac("fa:16:3e:00:02:01"));
    d.insert(net6);
    d
}

/// The (mac, dst) / (ip, lladdr) sets iproute2 must show for a network.
type Pairs = BTreeSet<(String, String)>;

fn expected(net: &DesiredNetwork) -> (Pairs, Pairs) {
    let fdb = net
        .flood
        .iter()
        .map(|dst| (Mac::ZERO.to_string(), dst.to_string()))
        .chain(
            net.unicast
                .iter()
                .map(|(m, dst)| (m.to_string(), dst.to_string())),
        )
        .collect();
    let neigh = net
        .neighbours
        .iter()
        .map(|(ip, m)| (ip.to_string(), m.to_string()))
        .collect();
    (fdb, neigh)
}

fn assert_kernel_matches(ns: &Netns, desired: &Desired) {
    for net in desired.networks.values() {
        let (fdb, neigh) = expected(net);
        assert_eq!(ns.fdb(&net.vxlan), fdb, "fdb of {}", net.vxlan);
        assert_eq!(ns.neigh(&net.vxlan), neigh, "neighbours of {}", net.vxlan);
        let vxlan = ns.link(&net.vxlan).unwrap();
        assert_eq!(vxlan["master"], net.bridge.as_str());
        let data = &vxlan["linkinfo"]["info_data"];
        assert_eq!(data["id"], net.vni);
        assert_eq!(data["port"], net.dst_port);
        assert_eq!(data["learning"], false);
        assert_eq!(data["proxy"], true);
        assert!(vxlan["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    }
}

async fn reconcile(netlink: &Netlink, desired: &Desired) -> (Vec<Op>, Observed) {
    let mut observed = netlink.observe().await.unwrap();
    let ops = plan(desired, &observed);
    for (op, result) in ops.iter().zip(netlink.execute(&ops).await) {
        result.unwrap_or_else(|e| panic!("{e}"));
        observed.apply(op);
    }
    (ops, observed)
}

fn same_entries(a: &Observed, b: &Observed) -> bool {
    a.fdb == b.fdb && a.neighbours == b.neighbours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_a_namespace_and_repairs_it() {
    if !root_or_skip() {
        return;
    }
    let ns = Netns::create("main");
    // Foreign state: a bridge with a port and its own static entry, and a tap-like veth.
    ns.exec(&["ip", "link", "add", "br-foreign", "type", "bridge"]);
    ns.exec(&[
        "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b",
    ]);
    ns.exec(&["ip", "link", "set", "veth-a", "master", "br-foreign"]);
    ns.exec(&[
        "bridge",
        "fdb",
        "add",
        "02:00:00:00:00:99",
        "dev",
        "veth-a",
        "master",
        "static",
    ]);
    ns.exec(&[
        "ip",
        "link",
        "add",
        "tapport0001",
        "type",
        "veth",
        "peer",
        "name",
        "tapport0001p",
    ]);
    let foreign_before = (
        ns.link("br-foreign").unwrap(),
        ns.link("veth-a").unwrap(),
        ns.link("veth-b").unwrap(),
    );

    let netlink = Netlink::connect(Some(&ns.0)).await.unwrap();
    let mut events = netlink.events().await.unwrap();
    let mut d = desired();

    let (ops, applied) = reconcile(&netlink, &d).await;
    assert!(ops.len() > 15, "{ops:?}");
    assert_kernel_matches(&ns, &d);
    let tap = ns.link("tapport0001").unwrap();
    assert_eq!(tap["master"], "brqnet100");
    assert!(ns.link("tapabsent0002").is_none());

    // A second reconcile plans nothing, and the applied observation equals a fresh dump.
    let fresh = netlink.observe().await.unwrap();
    assert_eq!(plan(&d, &fresh), []);
    assert!(
        same_entries(&applied, &fresh),
        "applied {applied:?}\nfresh {fresh:?}"
    );

    // Foreign links and entries are untouched.
    assert_eq!(
        (
            ns.link("br-foreign").unwrap(),
            ns.link("veth-a").unwrap(),
            ns.link("veth-b").unwrap()
        ),
        foreign_before
    );
    let foreign_fdb = ns.exec(&["bridge", "fdb", "show", "dev", "veth-a"]);
    assert!(foreign_fdb.contains("02:00:00:00:00:99"), "{foreign_fdb}");

    // A moved MAC is one replace, and the kernel keeps no entry for the old VTEP.
    d.networks
        .get_mut(&100)
        .unwrap()
        .unicast
        .insert(mac("fa:16:3e:00:00:01"), ip("192.0.2.9"));
    let (ops, _) = reconcile(&netlink, &d).await;
    assert_eq!(
        ops,
        [Op::FdbReplace {
            dev: "vxlan-100".into(),
            mac: mac("fa:16:3e:00:00:01"),
            dst: ip("192.0.2.9")
        }]
    );
    assert_kernel_matches(&ns, &d);

    // Repairs: an entry deleted by hand, a VXLAN device deleted by hand.
    while tokio::time::timeout(Duration::from_millis(50), events.next())
        .await
        .is_ok()
    {}
    ns.exec(&[
        "bridge",
        "fdb",
        "del",
        "00:00:00:00:00:00",
        "dev",
        "vxlan-100",
        "dst",
        "192.0.2.3",
        "self",
    ]);
    ns.exec(&["ip", "link", "del", "vxlan-200"]);
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, DeviceChanged::Device { .. }), "{event:?}");
    let (ops, _) = reconcile(&netlink, &d).await;
    assert!(ops.contains(&Op::FdbAppend {
        dev: "vxlan-100".into(),
        mac: Mac::ZERO,
        dst: ip("192.0.2.3")
    }));
    assert!(
        ops.iter()
            .any(|op| matches!(op, Op::CreateVxlan { vni: 200, .. }))
    );
    assert_kernel_matches(&ns, &d);
    assert_eq!(plan(&d, &netlink.observe().await.unwrap()), []);

    // Kernel errors come back per op, with the errno, and do not stop the batch.
    let bad = [
        Op::CreateBridge {
            name: "brqnet100".into(),
        },
        Op::FdbDel {
            dev: "vxlan-100".into(),
            mac: mac("fa:16:3e:00:00:77"),
            dst: ip("192.0.2.2"),
        },
        Op::NeighReplace {
            dev: "vxlan-100".into(),
            ip: ip("10.0.0.77"),
            mac: mac("fa:16:3e:00:00:77"),
        },
        Op::SetUp {
            link: "nosuchdev".into(),
        },
    ];
    let results = netlink.execute(&bad).await;
    assert_eq!(results[0].as_ref().unwrap_err().errno, EEXIST);
    assert_eq!(results[1].as_ref().unwrap_err().errno, ENOENT);
    assert!(results[2].is_ok());
    assert!(results[3].as_ref().unwrap_err().is_not_found());
    let (ops, _) = reconcile(&netlink, &d).await;
    assert_eq!(
        ops,
        [Op::NeighDel {
            dev: "vxlan-100".into(),
            ip: ip("10.0.0.77")
        }]
    );

    // A wrong attribute (learning on) makes the device be recreated with its entries.
    ns.exec(&[
        "ip",
        "link",
        "set",
        "vxlan-100",
        "type",
        "vxlan",
        "learning",
    ]);
    let (ops, _) = reconcile(&netlink, &d).await;
    assert_eq!(
        ops[0],
        Op::DeleteLink {
            name: "vxlan-100".into()
        }
    );
    assert_kernel_matches(&ns, &d);

    // Removing a network deletes its owned links only.
    d.networks.remove(&200);
    let (ops, _) = reconcile(&netlink, &d).await;
    assert_eq!(
        ops,
        [
            Op::DeleteLink {
                name: "brqnet200".into()
            },
            Op::DeleteLink {
                name: "vxlan-200".into()
            }
        ]
    );
    assert!(ns.link("vxlan-200").is_none() && ns.link("brqnet200").is_none());
    assert!(ns.link("br-foreign").is_some() && ns.link("veth-a").is_some());
    assert_kernel_matches(&ns, &d);
}

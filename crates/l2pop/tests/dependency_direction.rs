//! The dependency graph is the architecture (STYLE habit 2): the pure crates — vocabulary,
//! engine, extensions — must not reach a runtime, a socket or netlink, even transitively.
//! Read from `cargo metadata`, following normal (not dev or build) dependencies.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Crates that hold decision logic only.
const PURE: &[&str] = &[
    "l2pop-model",
    "l2pop-engine",
    "l2pop-bgpvpn",
    "l2pop-neutron",
];

/// Crates that mean I/O: async runtimes, sockets, netlink, brokers, databases, HTTP.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "async-std",
    "smol",
    "async-io",
    "netlink-sys",
    "netlink-proto",
    "netlink-packet-core",
    "netlink-packet-route",
    "rtnetlink",
    "neli",
    "lapin",
    "amq-protocol",
    "sqlx",
    "rusqlite",
    "libsqlite3-sys",
    "hyper",
    "axum",
    "reqwest",
    "tonic",
];

fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata JSON")
}

/// Package id → (name, normal dependency ids).
fn graph(meta: &Value) -> HashMap<String, (String, Vec<String>)> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|node| {
            let id = node["id"].as_str().unwrap_or_default().to_owned();
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap_or_default().to_owned())
                .collect();
            let name = names
                .get(id.as_str())
                .copied()
                .unwrap_or_default()
                .to_owned();
            (id, (name, deps))
        })
        .collect()
}

/// Every crate `root` reaches through normal dependencies, with the path to it.
fn reachable(
    graph: &HashMap<String, (String, Vec<String>)>,
    root: &str,
) -> HashMap<String, Vec<String>> {
    let mut found = HashMap::new();
    let Some(root_id) = graph
        .iter()
        .find(|(_, (name, _))| name == root)
        .map(|(id, _)| id.clone())
    else {
        return found;
    };
    let mut seen = BTreeSet::new();
    let mut stack = vec![(root_id, vec![root.to_owned()])];
    while let Some((id, path)) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some((name, deps)) = graph.get(&id) else {
            continue;
        };
        found.entry(name.clone()).or_insert_with(|| path.clone());
        for dep in deps {
            let mut next = path.clone();
            next.push(graph.get(dep).map(|(n, _)| n.clone()).unwrap_or_default());
            stack.push((dep.clone(), next));
        }
    }
    found
}

#[test]
fn pure_crates_reach_no_runtime_socket_or_netlink() {
    let graph = graph(&metadata());
    let present: Vec<&str> = PURE
        .iter()
        .copied()
        .filter(|p| graph.values().any(|(n, _)| n == p))
        .collect();
    assert!(
        present.len() >= 2,
        "found only {present:?} of the pure crates in cargo metadata"
    );
    for root in present {
        for (name, path) in reachable(&graph, root) {
            assert!(
                !FORBIDDEN.contains(&name.as_str()),
                "pure crate {root} depends on {name}: {}",
                path.join(" -> ")
            );
        }
    }
}

#[test]
fn the_walk_follows_normal_dependencies_only() {
    let graph = graph(&metadata());
    let engine = reachable(&graph, "l2pop-engine");
    // Transitive normal dependencies are seen...
    assert!(
        engine.contains_key("l2pop-model") && engine.contains_key("serde"),
        "{:?}",
        engine.keys()
    );
    // ...dev-dependencies (proptest, criterion) are not: they never ship in the engine.
    assert!(!engine.contains_key("proptest") && !engine.contains_key("criterion"));
}

/// The normal dependencies of `package` alone with `features` (`cargo tree -p` resolves the
/// features of the named package only, unlike `cargo metadata`'s workspace-wide resolve).
fn tree(package: &str, features: &[&str]) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The dataplane's planner and in-memory kernel are pure too: without its `netlink` feature
/// (which the binary turns on) the crate reaches no runtime, socket or netlink crate.
#[test]
fn the_dataplane_without_its_netlink_feature_is_pure() {
    let pure = tree("l2pop-dataplane", &[]);
    let reached: Vec<&&str> = FORBIDDEN.iter().filter(|c| pure.contains(**c)).collect();
    assert!(reached.is_empty(), "l2pop-dataplane reaches {reached:?}");
    // The check can see them: with the feature, netlink and tokio are there.
    let io = tree("l2pop-dataplane", &["--features", "netlink"]);
    assert!(io.contains("rtnetlink") && io.contains("tokio"), "{io:?}");
}

/// The BGP EVPN codec, session FSM and import are pure: without its `driver` feature (which
/// the binary turns on) l2pop-evpn reaches no runtime or socket crate.
#[test]
fn evpn_without_its_driver_feature_is_pure() {
    let pure = tree("l2pop-evpn", &[]);
    let reached: Vec<&&str> = FORBIDDEN.iter().filter(|c| pure.contains(**c)).collect();
    assert!(reached.is_empty(), "l2pop-evpn reaches {reached:?}");
    assert!(pure.contains("rustbgpd-wire"), "{pure:?}");
    let io = tree("l2pop-evpn", &["--features", "driver"]);
    assert!(io.contains("tokio"), "{io:?}");
}

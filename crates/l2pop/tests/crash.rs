//! `kill -9` at any moment loses nothing acknowledged, and a restarted server rebuilds exactly
//! the engine state.
//!
//! The real binary runs on a SQLite file while four clients drive their own deterministic
//! sequences of port operations (create with a fixed name, MAC and address, bound to a host →
//! device up → now and then device down of an earlier port → now and then delete of an older
//! one). The server is killed with SIGKILL after a seeded random delay, restarted on the same
//! file, and checked:
//!
//! (a) every acknowledged operation's effect is there, exactly: each client's ports on the
//!     restarted server are those its acknowledged prefix (plus the one operation that was in
//!     flight at the kill, if the restarted server shows it) leaves, with their status;
//! (b) an in-process server that was never killed, given exactly the applied operations (and
//!     the same agents, networks and subnets), has the same ports and the same desired FDB
//!     table on every host (ids that differ between the runs replaced by names).
//!
//! Three kill/restart cycles, the workload continuing after each restart.
//! `L2POP_CRASH_SEED=<n>` repeats a run.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ChildServer, TestServer, admin_call, http_client};

const CLIENTS: usize = 4;
const CYCLES: usize = 3;
/// Steps generated per client: far more than a client gets through before the kills.
const STEPS: usize = 3000;
const HOSTS: [(&str, &str); 4] = [
    ("compute-1", "192.0.2.1"),
    ("compute-2", "192.0.2.2"),
    ("compute-3", "192.0.2.3"),
    ("compute-4", "192.0.2.4"),
];
/// (name, VNI, subnet)
const NETWORKS: [(&str, u32, &str); 2] = [
    ("net-a", 1001, "10.0.0.0/16"),
    ("net-b", 1002, "10.1.0.0/16"),
];

// ---- the workload ----

#[derive(Clone, Debug)]
enum Op {
    Create {
        name: String,
        network: usize,
        host: usize,
        mac: String,
        ip: String,
    },
    Up {
        name: String,
        host: usize,
    },
    Down {
        name: String,
        host: usize,
    },
    Delete {
        name: String,
    },
}

impl Op {
    fn port(&self) -> &str {
        match self {
            Op::Create { name, .. }
            | Op::Up { name, .. }
            | Op::Down { name, .. }
            | Op::Delete { name } => name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Down,
    Active,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Down => "DOWN",
            Status::Active => "ACTIVE",
        }
    }
}

/// What a client's ports should look like: name → (status, the create that made it).
type Model = BTreeMap<String, (Status, Op)>;

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Create { name, .. } => {
            model.insert(name.clone(), (Status::Down, op.clone()));
        }
        Op::Up { name, .. } => model.get_mut(name).unwrap().0 = Status::Active,
        Op::Down { name, .. } => model.get_mut(name).unwrap().0 = Status::Down,
        Op::Delete { name } => {
            model.remove(name);
        }
    }
}

fn model_of(ops: &[Op]) -> Model {
    let mut model = Model::new();
    for op in ops {
        apply(&mut model, op);
    }
    model
}

/// Client `c`'s operations: every one of them changes what the API shows of its port (a down
/// only of an active port, a delete only of an existing one), so whether an operation in
/// flight at the kill was applied can be read back from the restarted server.
fn ops_for(c: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut model = Model::new();
    let name = |i: usize| format!("c{c}-p{i:04}");
    for i in 0..STEPS {
        let network = (c + i) % NETWORKS.len();
        // Not tied to the network (every network spans every host).
        let host = (c + i + i / 2) % HOSTS.len();
        let mut step = vec![
            Op::Create {
                name: name(i),
                network,
                host,
                mac: format!("fa:16:3e:{c:02x}:{:02x}:{:02x}", i >> 8, i & 0xff),
                ip: format!("10.{network}.{}.{}", c * 16 + i / 250, i % 250 + 2),
            },
            Op::Up {
                name: name(i),
                host,
            },
        ];
        if i % 3 == 2
            && let Some((Status::Active, Op::Create { host, .. })) = model.get(&name(i - 1))
        {
            step.push(Op::Down {
                name: name(i - 1),
                host: *host,
            });
        }
        if i % 5 == 4 && model.contains_key(&name(i - 4)) {
            step.push(Op::Delete { name: name(i - 4) });
        }
        for op in step {
            apply(&mut model, &op);
            ops.push(op);
        }
    }
    ops
}

/// Where a client sends its operations, and the ids there (they differ between servers).
#[derive(Clone)]
struct Target {
    base: String,
    http: reqwest::Client,
    /// network index → id
    networks: Vec<String>,
}

/// How far a client got.
#[derive(Debug)]
struct ClientRun {
    client: usize,
    /// Operations acknowledged (2xx), from the start index.
    acked: usize,
    /// The operation that got no answer (in flight at the kill, or refused after it).
    in_flight: Option<(usize, String)>,
    /// A non-2xx answer: never expected from this workload.
    refused: Option<String>,
    /// port name → id, for the ports this client created.
    ids: HashMap<String, String>,
}

async fn send(
    target: &Target,
    ids: &HashMap<String, String>,
    op: &Op,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let id = |name: &str| {
        ids.get(name)
            .cloned()
            .unwrap_or_else(|| format!("unknown-{name}"))
    };
    match op {
        Op::Create {
            name,
            network,
            host,
            mac,
            ip,
        } => {
            let body = json!({"port": {
                "name": name, "network_id": target.networks[*network], "project_id": "alice",
                "mac_address": mac, "fixed_ips": [{"ip_address": ip}],
                "binding:host_id": HOSTS[*host].0, "device_owner": "compute:nova",
                "device_id": format!("vm-{name}"),
            }});
            admin_call(
                &target.http,
                &target.base,
                Method::POST,
                "/v2.0/ports",
                Some(&body),
            )
            .await
        }
        Op::Up { name, host } | Op::Down { name, host } => {
            let verb = if matches!(op, Op::Up { .. }) {
                "up"
            } else {
                "down"
            };
            let body = json!({"device": {"host": HOSTS[*host].0}});
            let path = format!("/v2.0/l2pop/devices/{}/{verb}", id(name));
            admin_call(&target.http, &target.base, Method::POST, &path, Some(&body)).await
        }
        Op::Delete { name } => {
            let path = format!("/v2.0/ports/{}", id(name));
            admin_call(&target.http, &target.base, Method::DELETE, &path, None).await
        }
    }
}

/// Runs `ops[start..end]` in order, stopping at the first operation without a 2xx answer.
async fn run_client(
    client: usize,
    target: Target,
    ops: Arc<Vec<Op>>,
    start: usize,
    end: usize,
    mut ids: HashMap<String, String>,
) -> ClientRun {
    let mut run = ClientRun {
        client,
        acked: 0,
        in_flight: None,
        refused: None,
        ids: HashMap::new(),
    };
    for (index, op) in ops.iter().enumerate().take(end).skip(start) {
        match send(&target, &ids, op).await {
            Ok((status, value)) if status.is_success() => {
                if let Op::Create { name, .. } = op {
                    if value["port"]["status"] != "DOWN" {
                        run.refused = Some(format!("op {index} {op:?}: created as {value}"));
                        break;
                    }
                    ids.insert(
                        name.clone(),
                        value["port"]["id"].as_str().unwrap().to_owned(),
                    );
                }
                run.acked += 1;
            }
            Ok((status, value)) => {
                run.refused = Some(format!("op {index} {op:?}: {status} {value}"));
                break;
            }
            Err(error) => {
                run.in_flight = Some((index, error.to_string()));
                break;
            }
        }
    }
    run.ids = ids;
    run
}

// ---- setup, observation, normalisation ----

async fn must(target: &Target, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, value) = admin_call(
        &target.http,
        &target.base,
        method.clone(),
        path,
        body.as_ref(),
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// The four agents and the two networks with their subnets; returns the network ids.
async fn setup(base: &str) -> Vec<String> {
    let mut target = Target {
        base: base.to_owned(),
        http: http_client(),
        networks: Vec::new(),
    };
    for (host, ip) in HOSTS {
        must(
            &target,
            Method::POST,
            "/v2.0/l2pop/agents",
            Some(json!({"agent": {"host": host, "tunneling_ip": ip, "tunnel_types": ["vxlan"], "start_flag": true}})),
        )
        .await;
    }
    for (name, vni, cidr) in NETWORKS {
        let network = must(
            &target,
            Method::POST,
            "/v2.0/networks",
            Some(json!({"network": {"name": name, "project_id": "alice",
                                    "provider:network_type": "vxlan", "provider:segmentation_id": vni}})),
        )
        .await;
        let id = network["network"]["id"].as_str().unwrap().to_owned();
        must(
            &target,
            Method::POST,
            "/v2.0/subnets",
            Some(json!({"subnet": {"network_id": id, "cidr": cidr, "project_id": "alice", "name": name}})),
        )
        .await;
        target.networks.push(id);
    }
    target.networks
}

/// What a server shows, with run-specific ids replaced by names.
#[derive(Debug, PartialEq)]
struct Observed {
    /// port name → normalised port view
    ports: BTreeMap<String, Value>,
    /// host → normalised desired table
    fdb: BTreeMap<String, Value>,
}

async fn observe(base: &str) -> Observed {
    let target = Target {
        base: base.to_owned(),
        http: http_client(),
        networks: Vec::new(),
    };
    let networks = must(&target, Method::GET, "/v2.0/networks", None).await;
    let subnets = must(&target, Method::GET, "/v2.0/subnets", None).await;
    let ports = must(&target, Method::GET, "/v2.0/ports", None).await;
    let names = |list: &Value, key: &str, field: &str| -> HashMap<String, String> {
        list[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["id"].as_str().unwrap().to_owned(),
                    item[field].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let network_names = names(&networks, "networks", "name");
    let subnet_cidrs = names(&subnets, "subnets", "cidr");
    let port_names = names(&ports, "ports", "name");
    let rename = |map: &HashMap<String, String>, id: &Value| -> Value {
        let id = id.as_str().unwrap_or_default();
        json!(
            map.get(id)
                .cloned()
                .unwrap_or_else(|| format!("unknown id {id}"))
        )
    };

    let mut normalised_ports = BTreeMap::new();
    for port in ports["ports"].as_array().unwrap() {
        let fixed_ips: Vec<Value> = port["fixed_ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| json!({"subnet": rename(&subnet_cidrs, &f["subnet_id"]), "ip_address": f["ip_address"]}))
            .collect();
        let name = port["name"].as_str().unwrap().to_owned();
        let view = json!({
            "name": name,
            "network": rename(&network_names, &port["network_id"]),
            "mac_address": port["mac_address"],
            "fixed_ips": fixed_ips,
            "status": port["status"],
            "binding:host_id": port["binding:host_id"],
            "binding:vif_type": port["binding:vif_type"],
            "device_owner": port["device_owner"],
            "device_id": port["device_id"],
            "admin_state_up": port["admin_state_up"],
            "project_id": port["project_id"],
        });
        assert!(
            normalised_ports.insert(name.clone(), view).is_none(),
            "two ports named {name}"
        );
    }

    let mut fdb = BTreeMap::new();
    for (host, _) in HOSTS {
        let mut table = must(
            &target,
            Method::GET,
            &format!("/v2.0/l2pop/hosts/{host}/fdb"),
            None,
        )
        .await;
        let table = table["fdb"].take();
        let mut networks: Vec<Value> = table["networks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|network| {
                let vteps: Vec<Value> = network["vteps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|vtep| {
                        let mut entries: Vec<Value> = vtep["entries"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|entry| {
                                let mut entry = entry.clone();
                                if let Some(port) = entry["source"].get("port").cloned() {
                                    entry["source"]["port"] = rename(&port_names, &port);
                                }
                                entry
                            })
                            .collect();
                        entries.sort_by_key(Value::to_string);
                        json!({"vtep": vtep["vtep"], "entries": entries})
                    })
                    .collect();
                json!({
                    "network": rename(&network_names, &network["network_id"]),
                    "network_type": network["network_type"],
                    "segment_id": network["segment_id"],
                    "vteps": vteps,
                })
            })
            .collect();
        networks.sort_by_key(|n| n["network"].to_string());
        fdb.insert(
            host.to_owned(),
            json!({"host": table["host"], "networks": networks}),
        );
    }
    Observed {
        ports: normalised_ports,
        fdb,
    }
}

/// First difference between two maps, for a readable failure.
fn first_difference(live: &BTreeMap<String, Value>, reference: &BTreeMap<String, Value>) -> String {
    for (key, value) in live {
        match reference.get(key) {
            None => return format!("{key}: only after the crash: {value}"),
            Some(other) if other != value => {
                return format!("{key}:\n  after the crash: {value}\n  never killed:    {other}");
            }
            Some(_) => {}
        }
    }
    for (key, value) in reference {
        if !live.contains_key(key) {
            return format!("{key}: missing after the crash (never killed: {value})");
        }
    }
    "none".to_owned()
}

// ---- randomness ----

/// SplitMix64: small, seedable, good enough for delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("L2POP_CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .expect("L2POP_CRASH_SEED is not a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

// ---- the test ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_and_restart_rebuilds_the_engine_state() {
    let seed = seed();
    println!("crash test seed: {seed} (L2POP_CRASH_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let test_started = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    let mut server = ChildServer::start(dir.path(), "crash", &store_url, 100).await;
    server.wait_role("active", Duration::from_secs(30)).await;
    let live_networks = setup(&server.url).await;

    // The run that is never killed, in this process on its own store.
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = TestServer::start(&format!(
        "sqlite:{}",
        reference_dir.path().join("l2pop.db").display()
    ))
    .await;
    let reference_target = Target {
        base: reference.url.clone(),
        http: http_client(),
        networks: setup(&reference.url).await,
    };

    let ops: Vec<Arc<Vec<Op>>> = (0..CLIENTS).map(|c| Arc::new(ops_for(c))).collect();
    // Per client: operations applied on the live server (a prefix of its sequence) and on the
    // reference; port name → id on each.
    let mut applied = [0usize; CLIENTS];
    let mut replayed = [0usize; CLIENTS];
    let mut live_ids: Vec<HashMap<String, String>> = vec![HashMap::new(); CLIENTS];
    let mut reference_ids: Vec<HashMap<String, String>> = vec![HashMap::new(); CLIENTS];

    for cycle in 1..=CYCLES {
        let delay = rng.between(300, 1500);
        println!("cycle {cycle}: SIGKILL after {delay} ms (seed {seed})");
        let target = Target {
            base: server.url.clone(),
            http: http_client(),
            networks: live_networks.clone(),
        };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(run_client(
                    c,
                    target.clone(),
                    ops[c].clone(),
                    applied[c],
                    STEPS * 4,
                    live_ids[c].clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9().await;
        let old_tail = server.tail();
        let mut runs = Vec::new();
        for client in clients {
            runs.push(client.await.unwrap());
        }
        for run in &runs {
            assert!(
                run.refused.is_none(),
                "seed {seed}, cycle {cycle}, client {}: refused {}\n{old_tail}",
                run.client,
                run.refused.as_deref().unwrap_or_default()
            );
            assert!(
                run.in_flight.is_some(),
                "seed {seed}, cycle {cycle}: client {} ran out of operations before the kill",
                run.client
            );
        }

        server = ChildServer::start(dir.path(), "crash", &store_url, 100).await;
        server.wait_role("active", Duration::from_secs(30)).await;
        let context = |server: &ChildServer| {
            format!(
                "seed {seed}, cycle {cycle}, delay {delay} ms\n{old_tail}\n{}",
                server.tail()
            )
        };

        // (a) Every acknowledged operation is there; the one in flight decides by what shows.
        let listed = must(
            &Target {
                base: server.url.clone(),
                http: http_client(),
                networks: Vec::new(),
            },
            Method::GET,
            "/v2.0/ports",
            None,
        )
        .await;
        let live: HashMap<String, &Value> = listed["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p))
            .collect();
        for run in &runs {
            let c = run.client;
            let acked_end = applied[c] + run.acked;
            let (index, error) = run.in_flight.clone().unwrap();
            assert_eq!(index, acked_end);
            let op = &ops[c][index];
            let shown = live.get(op.port());
            let in_flight_applied = match op {
                Op::Create { .. } => shown.is_some(),
                Op::Up { .. } => shown.is_some_and(|p| p["status"] == "ACTIVE"),
                Op::Down { .. } => shown.is_some_and(|p| p["status"] == "DOWN"),
                Op::Delete { .. } => shown.is_none(),
            };
            println!(
                "  client {c}: {} acknowledged this cycle ({} in all); in flight: op {index} {op:?} ({error}) → {}",
                run.acked,
                acked_end,
                if in_flight_applied {
                    "applied"
                } else {
                    "not applied"
                }
            );
            applied[c] = acked_end + usize::from(in_flight_applied);
            let expected = model_of(&ops[c][..applied[c]]);
            let prefix = format!("c{c}-");
            let actual: BTreeMap<&str, &Value> = live
                .iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(name, port)| (name.as_str(), *port))
                .collect();
            let expected_names: Vec<&str> = expected.keys().map(String::as_str).collect();
            let actual_names: Vec<&str> = actual.keys().copied().collect();
            assert_eq!(
                actual_names,
                expected_names,
                "client {c}: the restarted server's ports differ from the acknowledged operations\n{}",
                context(&server)
            );
            for (name, (status, create)) in &expected {
                let port = actual[name.as_str()];
                let Op::Create {
                    network,
                    host,
                    mac,
                    ip,
                    ..
                } = create
                else {
                    unreachable!()
                };
                let want = (
                    status.text(),
                    live_networks[*network].as_str(),
                    HOSTS[*host].0,
                    mac.as_str(),
                    ip.as_str(),
                );
                let got = (
                    port["status"].as_str().unwrap_or_default(),
                    port["network_id"].as_str().unwrap_or_default(),
                    port["binding:host_id"].as_str().unwrap_or_default(),
                    port["mac_address"].as_str().unwrap_or_default(),
                    port["fixed_ips"][0]["ip_address"]
                        .as_str()
                        .unwrap_or_default(),
                );
                assert_eq!(got, want, "client {c}, port {name}\n{}", context(&server));
            }
            live_ids[c] = run.ids.clone();
            live_ids[c].retain(|name, _| live.contains_key(name));
            for name in expected.keys() {
                live_ids[c].insert(name.clone(), live[name]["id"].as_str().unwrap().to_owned());
            }
        }

        // (b) The reference run gets exactly the applied operations; both must agree.
        let replays: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(run_client(
                    c,
                    reference_target.clone(),
                    ops[c].clone(),
                    replayed[c],
                    applied[c],
                    reference_ids[c].clone(),
                ))
            })
            .collect();
        for (c, replay) in replays.into_iter().enumerate() {
            let run = replay.await.unwrap();
            assert!(
                run.refused.is_none() && run.in_flight.is_none(),
                "seed {seed}: the reference refused a replayed operation: {run:?}"
            );
            assert_eq!(run.acked, applied[c] - replayed[c]);
            replayed[c] = applied[c];
            reference_ids[c] = run.ids;
        }
        let after_crash = observe(&server.url).await;
        let never_killed = observe(&reference.url).await;
        for (host, table) in &after_crash.fdb {
            assert_eq!(
                table["networks"].as_array().map(Vec::len),
                Some(NETWORKS.len()),
                "{host}'s desired table should cover both networks (a test bug): {table}"
            );
        }
        assert!(
            after_crash.ports == never_killed.ports,
            "cycle {cycle}: ports differ from the run that was not killed: {}\n{}",
            first_difference(&after_crash.ports, &never_killed.ports),
            context(&server)
        );
        assert!(
            after_crash.fdb == never_killed.fdb,
            "cycle {cycle}: desired FDB differs from the run that was not killed: {}\n{}",
            first_difference(&after_crash.fdb, &never_killed.fdb),
            context(&server)
        );
        println!(
            "cycle {cycle}: {} ports, FDB of {} hosts identical to the run that was not killed ({:.1} s so far)",
            after_crash.ports.len(),
            after_crash.fdb.len(),
            test_started.elapsed().as_secs_f64()
        );
    }
    server.kill9().await;
    reference.stop().await;
}

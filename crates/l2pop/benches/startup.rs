//! Start-up and takeover time against history: the same live state (agents, networks, ports up)
//! reached through histories of growing length (ports created, brought up and deleted again),
//! written to a real SQLite command log through the resource layer, exactly as the server logs
//! them. For each history the server's own start-up path (`LogReplay::open`, then the log after
//! the snapshot) runs twice: on the whole log, and with a snapshot of the end state as the
//! server schedules them (then compacted). Takeover: a standby that followed the log while
//! waiting catches up the last poll's commands, against one that replays from nothing.
//!
//! Prints times and ratios against the shortest history measured in the same run: without
//! snapshots start-up grows with the history; with them it stays with the live state.
//!
//! `cargo bench -p l2pop --bench startup` (`L2POP_BENCH_LIVE_PORTS`, default 2,000;
//! `L2POP_BENCH_CHURN`, default "0,10,40": churn cycles per live port).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use l2pop::server::outbox::LogReplay;
use l2pop_model::Uuid;
use l2pop_neutron::request::{
    DeviceName, DeviceReply, Fresh, ReportReply, Request, TenantNetworks, body,
};
use l2pop_neutron::{Caller, NeutronState, Time};
use l2pop_store::{LogRecord, Store};
use serde_json::json;

const HOSTS: usize = 20;
const NETWORKS: usize = 50;
/// Commands a standby has not followed yet at a takeover (one poll's worth under load).
const TAKEOVER_DELTA: usize = 500;

struct Counter(u128);

impl Fresh for Counter {
    fn uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0xbe00_0000_0000 + self.0)
    }
    fn mac_suffix(&mut self) -> [u8; 3] {
        self.0 += 1;
        let [.., a, b, c] = self.0.to_be_bytes();
        [a, b, c]
    }
    fn now(&mut self) -> Time {
        Time(1_800_000_000)
    }
}

/// Writes requests through the resource layer and their commands into the store's log.
struct Writer {
    state: NeutronState,
    fresh: Counter,
    store: Store,
    leadership: l2pop_store::Leadership,
    pending: Vec<LogRecord>,
}

impl Writer {
    async fn request(&mut self, request: Request) -> serde_json::Value {
        let outcome = self
            .state
            .handle(
                &Caller::Admin,
                request,
                &TenantNetworks::default(),
                &mut self.fresh,
            )
            .unwrap();
        if let Some(command) = outcome.command {
            self.pending.push(LogRecord {
                seq: self.state.executed(),
                command: serde_json::to_string(&command).unwrap(),
            });
            if self.pending.len() >= 2_000 {
                self.flush().await;
            }
        }
        outcome.answer.unwrap()
    }

    async fn flush(&mut self) {
        let records = std::mem::take(&mut self.pending);
        self.store.append(&self.leadership, &records).await.unwrap();
    }

    async fn port(&mut self, network: &str, host: usize, up: bool) -> String {
        let port = self
            .request(Request::PortCreate(
                body(
                    json!({"port": {"network_id": network, "binding:host_id": format!("compute-{host}"),
                        "device_owner": "compute:nova"}}),
                    "port",
                )
                .unwrap(),
            ))
            .await;
        let id = port["port"]["id"].as_str().unwrap().to_owned();
        if up {
            self.request(Request::Device {
                device: DeviceName::Port(id.parse().unwrap()),
                up: true,
                body: body(
                    json!({"device": {"host": format!("compute-{host}")}}),
                    "device",
                )
                .unwrap(),
                reply: DeviceReply::Rpc,
            })
            .await;
        }
        id
    }
}

/// A store holding the live state reached after `churn` create/up/delete cycles per live port.
async fn history(path: &std::path::Path, live_ports: usize, churn: usize) -> (Store, u64) {
    let url = format!("sqlite:{}", path.display());
    let store = Store::open(&url).await.unwrap();
    let leadership = store
        .acquire_leadership(Duration::from_millis(100))
        .await
        .unwrap();
    let mut w = Writer {
        state: NeutronState::new(),
        fresh: Counter(0),
        store: store.clone(),
        leadership,
        pending: Vec::new(),
    };
    for h in 0..HOSTS {
        w.request(Request::AgentReport {
            body: body(
                json!({"agent": {"host": format!("compute-{h}"), "tunneling_ip": format!("192.0.2.{}", h + 1),
                    "tunnel_types": ["vxlan"], "start_flag": true}}),
                "agent",
            )
            .unwrap(),
            reply: ReportReply::NewOrAlive,
        })
        .await;
    }
    let mut networks = Vec::new();
    for n in 0..NETWORKS {
        let network = w
            .request(Request::NetworkCreate(
                body(
                    json!({"network": {"name": format!("n{n}"), "provider:network_type": "vxlan",
                        "provider:segmentation_id": 1000 + n}}),
                    "network",
                )
                .unwrap(),
            ))
            .await;
        let id = network["network"]["id"].as_str().unwrap().to_owned();
        w.request(Request::SubnetCreate(
            body(
                json!({"subnet": {"network_id": id, "cidr": format!("10.{}.{}.0/22", n / 64, (n % 64) * 4)}}),
                "subnet",
            )
            .unwrap(),
        ))
        .await;
        networks.push(id);
    }
    for p in 0..live_ports {
        let network = networks[p % NETWORKS].clone();
        w.port(&network, p % HOSTS, true).await;
    }
    for c in 0..churn * live_ports {
        let network = networks[c % NETWORKS].clone();
        let id = w.port(&network, (c * 7) % HOSTS, true).await;
        w.request(Request::PortDelete(id.parse().unwrap())).await;
    }
    w.flush().await;
    let last = w.state.executed();
    drop(w);
    (store, last)
}

/// The server's start-up path: the newest snapshot, then the log after it, every notification
/// regenerated (as for the republish).
async fn start_up(store: &Store) -> (Duration, u64) {
    let started = Instant::now();
    let mut replay = LogReplay::open(store).await.unwrap();
    while replay.next().await.unwrap().is_some() {}
    let state = replay.into_state();
    (started.elapsed(), state.executed())
}

async fn snapshot_and_compact(store: &Store, last: u64) -> (usize, Duration) {
    let (state, _) = {
        let mut replay = LogReplay::open(store).await.unwrap();
        while replay.next().await.unwrap().is_some() {}
        (replay.into_state(), ())
    };
    assert_eq!(state.executed(), last);
    let started = Instant::now();
    let bytes = state.save().unwrap();
    let encode = started.elapsed();
    let leadership = store
        .acquire_leadership(Duration::from_millis(100))
        .await
        .unwrap();
    store
        .save_snapshot(&leadership, last, &bytes)
        .await
        .unwrap();
    store.compact(&leadership).await.unwrap();
    (bytes.len(), encode)
}

/// Takeover after `TAKEOVER_DELTA` commands the standby has not followed: `(followed, cold)`.
async fn takeover(store: &Store) -> (Duration, Duration) {
    let mut standby = LogReplay::open(store).await.unwrap();
    standby.catch_up().await.unwrap();
    // The active server writes one poll's worth more.
    {
        let leadership = store
            .acquire_leadership(Duration::from_millis(100))
            .await
            .unwrap();
        let mut replay = LogReplay::open(store).await.unwrap();
        while replay.next().await.unwrap().is_some() {}
        let mut w = Writer {
            state: replay.into_state(),
            fresh: Counter(1 << 40),
            store: store.clone(),
            leadership,
            pending: Vec::new(),
        };
        let network = w
            .state
            .catalog()
            .networks
            .keys()
            .next()
            .unwrap()
            .to_string();
        for i in 0..TAKEOVER_DELTA / 2 {
            w.port(&network, i % HOSTS, true).await;
        }
        w.flush().await;
    }
    let started = Instant::now();
    while standby.next().await.unwrap().is_some() {}
    let followed = started.elapsed();
    let (cold, _) = start_up(store).await;
    (followed, cold)
}

fn main() {
    let live_ports: usize = std::env::var("L2POP_BENCH_LIVE_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let churns: Vec<usize> = std::env::var("L2POP_BENCH_CHURN")
        .unwrap_or_else(|_| "0,10,40".to_owned())
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "live state: {HOSTS} hosts, {NETWORKS} networks, {live_ports} ports up; \
             history: churn cycles (create, up, delete) per live port"
        );
        println!(
            "{:>6} {:>10} {:>12} {:>8} {:>14} {:>8} {:>10} {:>10} {:>12} {:>12}",
            "churn",
            "commands",
            "log only",
            "ratio",
            "snapshot+log",
            "ratio",
            "snapshot",
            "encode",
            "takeover",
            "cold start"
        );
        let mut base: Option<(Duration, Duration)> = None;
        for churn in churns {
            let dir = tempfile::tempdir().unwrap();
            let (store, last) = history(&dir.path().join("l2pop.db"), live_ports, churn).await;
            let (log_only, replayed) = start_up(&store).await;
            assert_eq!(replayed, last);
            let (bytes, encode) = snapshot_and_compact(&store, last).await;
            let (with_snapshot, restored) = start_up(&store).await;
            assert_eq!(restored, last);
            let (followed, cold) = takeover(&store).await;
            let (b_log, b_snap) = *base.get_or_insert((log_only, with_snapshot));
            println!(
                "{churn:>6} {last:>10} {:>10.0}ms {:>7.2}x {:>12.0}ms {:>7.2}x {:>8.1}MB {:>8.0}ms {:>10.1}ms {:>10.0}ms",
                log_only.as_secs_f64() * 1e3,
                log_only.as_secs_f64() / b_log.as_secs_f64(),
                with_snapshot.as_secs_f64() * 1e3,
                with_snapshot.as_secs_f64() / b_snap.as_secs_f64(),
                bytes as f64 / 1e6,
                encode.as_secs_f64() * 1e3,
                followed.as_secs_f64() * 1e3,
                cold.as_secs_f64() * 1e3,
            );
            store.close().await;
        }
        println!(
            "ratios: each history's time ÷ the first history's, measured in this run; takeover = \
             a standby that followed the log catching up {TAKEOVER_DELTA} commands, cold start = \
             snapshot + log from nothing"
        );
    });
}

//! Graceful restart (RFC 4724) end to end: no learned entry leaves a compute host's FDB while a
//! restarted BGP speaker, or a restarted PE, sends its routes again, and what did not come back
//! leaves after End-of-RIB.
//!
//! - Through the REST API (no root): a BGP agent's graceful start keeps its routes stale across
//!   a server restart (the command log replays the marks), End-of-RIB purges the rest, and bad
//!   End-of-RIB requests are refused.
//! - Against a real FRR (`support/frr.rs`, root and FRR needed, skipped otherwise as in
//!   `bgp_frr.rs`): FRR's bgpd killed and restarted with graceful restart on both sides, and our
//!   speaker (the `l2pop bgp` process) killed and restarted; each time the PE has dropped
//!   device 2 meanwhile. A poller reads compute-1's FDB every 50 ms throughout.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use l2pop::demo::frr::{
    Site, SiteOptions, TEST_DEVICE_1 as DEVICE_1, TEST_DEVICE_2 as DEVICE_2, TEST_VTEP as VTEP,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{ADMIN, TestServer};
use tokio_util::sync::CancellationToken;

/// compute-1's entries under the site's VTEP, as `mac ip` strings, sorted.
async fn site_entries(server: &TestServer) -> Vec<String> {
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    let mut entries: Vec<String> = fdb["fdb"]["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|n| n["vteps"].as_array().cloned().unwrap_or_default())
        .filter(|v| v["vtep"] == VTEP)
        .flat_map(|v| v["entries"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            format!(
                "{} {}",
                e["mac_address"].as_str().unwrap_or_default(),
                e["ip_address"].as_str().unwrap_or_default()
            )
        })
        .collect();
    entries.sort();
    entries
}

/// How long FRR and the server get to reach a state.
const WAIT: Duration = Duration::from_secs(90);
const FLOOD: &str = "00:00:00:00:00:00 0.0.0.0";

fn device_1() -> String {
    format!("{} {}", DEVICE_1.0, DEVICE_1.1)
}

fn device_2() -> String {
    format!("{DEVICE_2} 0.0.0.0")
}

fn all_three() -> Vec<String> {
    let mut all = vec![FLOOD.to_owned(), device_1(), device_2()];
    all.sort();
    all
}

fn kept_two() -> Vec<String> {
    let mut kept = vec![FLOOD.to_owned(), device_1()];
    kept.sort();
    kept
}

#[tokio::test]
async fn a_graceful_start_keeps_the_routes_across_a_server_restart_until_end_of_rib() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", store.path().join("l2pop.db").display());
    let server = TestServer::start(&url).await;
    server.vpn_site_of_compute_1().await;
    let gateway =
        json!({"gateways": [{"vtep": VTEP, "route_targets": ["65001:1001"], "vni": 1001}]});
    let device = json!({"devices": [{"mac": DEVICE_1.0, "ip": DEVICE_1.1, "vtep": VTEP, "route_targets": ["65001:1001"], "vni": 1001}]});
    let learn = |path: &'static str, body: serde_json::Value| {
        let server = &server;
        async move {
            server
                .admin(
                    Method::POST,
                    &format!("/v2.0/l2pop/bgp-agents/bgp-1/{path}"),
                    Some(body),
                )
                .await;
        }
    };
    learn("gateways", gateway.clone()).await;
    learn("devices", device.clone()).await;
    learn("devices", json!({"devices": [{"mac": DEVICE_2, "vtep": VTEP, "route_targets": ["65001:1001"], "vni": 1001}]})).await;
    assert_eq!(site_entries(&server).await, all_three());

    // The speaker restarts gracefully: every entry stays; it re-learns two routes of three.
    server
        .admin(
            Method::PUT,
            "/v2.0/l2pop/bgp-agents/bgp-1",
            Some(json!({"bgp_agent": {"start_flag": true, "graceful_restart": true}})),
        )
        .await;
    assert_eq!(site_entries(&server).await, all_three());
    learn("gateways", gateway).await;
    learn("devices", device).await;
    assert_eq!(site_entries(&server).await, all_three());

    // The server restarts: the marks come back from the command log.
    server.stop().await;
    let server = TestServer::start(&url).await;
    assert_eq!(site_entries(&server).await, all_three());

    // Bad End-of-RIB requests name what is wrong and change nothing.
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/end-of-rib",
            Some(json!({"stale": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error.to_string().contains("stale"), "{error}");
    let (status, error) = server
        .call(
            Some(ADMIN),
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-9/end-of-rib",
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status} {error}");
    assert!(error.to_string().contains("bgp-9"), "{error}");
    let (status, error) = server
        .call(
            None,
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/end-of-rib",
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status} {error}");
    assert_eq!(site_entries(&server).await, all_three());

    // End-of-RIB: the route not re-learned goes, and only it; this too survives a restart.
    let answer = server
        .admin(
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/end-of-rib",
            None,
        )
        .await;
    assert_eq!(answer, json!({"end_of_rib": true}));
    assert_eq!(site_entries(&server).await, kept_two());
    server.stop().await;
    let server = TestServer::start(&url).await;
    assert_eq!(site_entries(&server).await, kept_two());
    server.stop().await;
}

// ---- against FRR ----

/// Graceful restart on FRR's side: restart time 30 s, forwarding state kept (F bit).
const FRR_GRACEFUL: &str = " bgp graceful-restart
 bgp graceful-restart preserve-fw-state
 bgp graceful-restart restart-time 30
";

/// Polls compute-1's FDB every 50 ms until stopped; records every reading that lacks one of
/// the entries that must stay.
struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<Vec<String>>)>,
}

impl Watch {
    fn start(server: &Arc<TestServer>, must_stay: Vec<String>) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let (server, flag) = (server.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let (mut readings, mut bad) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                let entries = site_entries(&server).await;
                readings += 1;
                if !must_stay.iter().all(|e| entries.contains(e)) {
                    bad.push(entries);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (readings, bad)
        });
        Watch { stop, task }
    }

    /// How many readings were taken; fails if one lacked an entry that must stay.
    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (readings, bad) = self.task.await.unwrap();
        assert!(
            bad.is_empty(),
            "entries were removed during the restart: {bad:?}"
        );
        readings
    }
}

/// Waits until compute-1 holds every entry of `present` and none of `absent` under the site's
/// VTEP (FRR also advertises the MACs its bridge learns on the device ports: those may come and
/// go).
async fn wait_for(
    server: &TestServer,
    site: &Site,
    what: &str,
    present: &[String],
    absent: &[String],
) {
    let started = Instant::now();
    loop {
        let entries = site_entries(server).await;
        if present.iter().all(|e| entries.contains(e))
            && !absent.iter().any(|e| entries.contains(e))
        {
            return;
        }
        if started.elapsed() > WAIT {
            panic!(
                "{what}: compute-1 holds {entries:?} for {VTEP}, wanted {present:?} without {absent:?}\n{}",
                site.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until FRR's EVPN table satisfies `done`.
async fn frr_rib(site: &Site, what: &str, done: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let rib = site.show("show bgp l2vpn evpn");
        if done(&rib) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what}: not reached\n{}",
            site.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PE loses device 2: its bridge port goes, and with it the MAC's FDB entry.
fn drop_device_2(site: &Site) {
    site.exec(&["ip", "link", "del", "dev2"]).unwrap();
}

fn speaker_config(site: &Site, server: &TestServer) -> String {
    format!(
        r#"
[bgp]
host = "bgp-1"
local_as = 65000
router_id = "{ours}"
connect_retry_s = 1
graceful_restart_time_s = 20
import_route_targets = ["65001:1001"]
[server]
url = "{url}"
token = "{ADMIN}"
[[neighbors]]
address = "{pe}"
remote_as = 65001
local_address = "{ours}"
"#,
        ours = site.ours(),
        pe = site.pe(),
        url = server.url,
    )
}

fn tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("l2pop=info")),
        )
        .try_init();
}

async fn server_with_site(store: &tempfile::TempDir) -> Arc<TestServer> {
    let server = TestServer::start(&format!(
        "sqlite:{}",
        store.path().join("l2pop.db").display()
    ))
    .await;
    server.vpn_site_of_compute_1().await;
    Arc::new(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frr_restarting_gracefully_removes_no_entry_and_end_of_rib_removes_what_it_lost() {
    if !support::frr_can_run() {
        return;
    }
    tracing();
    let site = Site::create(SiteOptions {
        extra_bgp: FRR_GRACEFUL.to_owned(),
        ..SiteOptions::test("e", 0)
    })
    .unwrap();
    site.start("zebra").unwrap();
    site.start("bgpd").unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = server_with_site(&store).await;
    let settings = l2pop::bgp::config::RawConfig::parse(&speaker_config(&site, &server), "test")
        .unwrap()
        .validate()
        .unwrap();
    let shutdown = CancellationToken::new();
    let speaker = tokio::spawn(l2pop::bgp::run(settings, shutdown.clone()));
    wait_for(&server, &site, "the site learned", &all_three(), &[]).await;

    // bgpd dies (its TCP connection closes, no NOTIFICATION) and comes back without device 2:
    // the link stays down until the new bgpd has its local routes from zebra and has seen
    // device 2 go (zebra keeps its MACs for a bgpd that restarts gracefully, so device 2 goes
    // once the new bgpd is there), so that the session comes back to a PE without it.
    let watch = Watch::start(&server, kept_two());
    let restarted = Instant::now();
    site.kill("bgpd");
    site.link(false).unwrap();
    site.start("bgpd").unwrap();
    frr_rib(&site, "the new bgpd has the site's routes", |rib| {
        rib.contains(&format!("[{}]:[32]:[{}]", DEVICE_1.0, DEVICE_1.1)) && rib.contains(DEVICE_2)
    })
    .await;
    drop_device_2(&site);
    frr_rib(&site, "the new bgpd lost device 2", |rib| {
        !rib.contains(DEVICE_2)
    })
    .await;
    site.link(true).unwrap();
    wait_for(
        &server,
        &site,
        "device 2 removed at End-of-RIB",
        &kept_two(),
        &[device_2()],
    )
    .await;
    let readings = watch.finish().await;
    eprintln!(
        "FRR restart: device 2 gone after {:?}, {readings} FDB readings, none without the kept entries",
        restarted.elapsed()
    );
    assert!(readings > 0);

    shutdown.cancel();
    speaker.await.unwrap().unwrap();
    wait_for(&server, &site, "entries removed at stop", &[], &kept_two()).await;
}

/// `l2pop bgp` as its own process, killed with SIGKILL on drop.
struct Speaker(std::process::Child);

impl Speaker {
    fn start(config: &std::path::Path) -> Speaker {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_l2pop"))
            .args(["bgp", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "l2pop=info")
            .spawn()
            .unwrap();
        Speaker(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_speaker_restarting_gracefully_removes_no_entry_and_end_of_rib_removes_what_it_lost() {
    if !support::frr_can_run() {
        return;
    }
    tracing();
    let site = Site::create(SiteOptions {
        extra_bgp: FRR_GRACEFUL.to_owned(),
        ..SiteOptions::test("e", 1)
    })
    .unwrap();
    site.start("zebra").unwrap();
    site.start("bgpd").unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = server_with_site(&store).await;
    let config = store.path().join("bgp.toml");
    std::fs::write(&config, speaker_config(&site, &server)).unwrap();
    let mut speaker = Speaker::start(&config);
    wait_for(&server, &site, "the site learned", &all_three(), &[]).await;

    // The speaker is killed (no stop report: the server still counts it up) and started again
    // while the PE has dropped device 2: its start is graceful, so nothing leaves the FDB until
    // FRR's End-of-RIB, and then only device 2.
    let watch = Watch::start(&server, kept_two());
    let restarted = Instant::now();
    speaker.kill();
    drop_device_2(&site);
    let speaker = Speaker::start(&config);
    wait_for(
        &server,
        &site,
        "device 2 removed at End-of-RIB",
        &kept_two(),
        &[device_2()],
    )
    .await;
    let readings = watch.finish().await;
    eprintln!(
        "speaker restart: device 2 gone after {:?}, {readings} FDB readings, none without the kept entries",
        restarted.elapsed()
    );
    drop(speaker);
}

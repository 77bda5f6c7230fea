//! `l2pop bgp` against a real FRR (zebra + bgpd, Debian package `frr`) in a network namespace:
//! FRR is the VPN site's PE/VTEP (`advertise-all-vni`, VNI 1001, two devices behind its
//! bridge); our speaker, in-process, peers with it over a veth pair and reports to an
//! in-process l2pop server. The site's gateway VTEP and both device MACs must appear in a
//! compute host's full FDB for the network associated with the BGPVPN whose route target FRR
//! uses; killing bgpd must take them out again (case 6b), and a new bgpd bring them back;
//! stopping the speaker takes them out for good. Twice: our speaker connecting, and our speaker
//! passive with FRR connecting to its listener.
//!
//! Needs root: skipped with a message otherwise. Needs FRR (`apt-get install -y frr`,
//! scripts/services installs it): skipped when absent, except under CI=true, where it fails.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, TestServer};
use tokio_util::sync::CancellationToken;

use l2pop::demo::frr::{
    Site, SiteOptions, TEST_DEVICE_1 as DEVICE_1, TEST_DEVICE_2 as DEVICE_2, TEST_VTEP as VTEP,
};

const WAIT: Duration = Duration::from_secs(90);

/// compute-1's entries under the site's VTEP, as `[mac, ip]` pairs (empty if none).
async fn site_entries(server: &TestServer) -> Vec<(String, String)> {
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    fdb["fdb"]["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["segment_id"] == 1001)
        .flat_map(|n| n["vteps"].as_array().cloned().unwrap_or_default())
        .filter(|v| v["vtep"] == VTEP)
        .flat_map(|v| v["entries"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["mac_address"].as_str().unwrap_or_default().to_owned(),
                e["ip_address"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn bgp_agent_alive(server: &TestServer) -> Option<bool> {
    let agents = server.admin(Method::GET, "/v2.0/agents", None).await;
    agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["host"] == "bgp-1")
        .and_then(|a| a["alive"].as_bool())
}

fn has_site(entries: &[(String, String)]) -> bool {
    let has = |mac: &str, ip: &str| entries.iter().any(|(m, i)| m == mac && i == ip);
    has("00:00:00:00:00:00", "0.0.0.0") && has(DEVICE_1.0, DEVICE_1.1) && has(DEVICE_2, "0.0.0.0")
}

/// Polls until `done(entries, alive)`; on timeout fails with what the server and FRR hold.
async fn wait_for(
    server: &TestServer,
    site: &Site,
    what: &str,
    done: impl Fn(&[(String, String)], Option<bool>) -> bool,
) {
    let started = Instant::now();
    loop {
        let entries = site_entries(server).await;
        let alive = bgp_agent_alive(server).await;
        if done(&entries, alive) {
            return;
        }
        if started.elapsed() > WAIT {
            panic!(
                "{what}: not reached; compute-1 holds {entries:?} for {VTEP}, bgp-1 alive {alive:?}\n{}",
                site.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frr_site_gateway_and_devices_reach_the_fdb_and_leave_with_the_session() {
    scenario(0, false).await;
}

/// The same with our speaker passive: FRR connects to our listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_when_frr_connects_to_a_passive_speaker() {
    scenario(1, true).await;
}

async fn scenario(variant: u8, passive: bool) {
    if !support::frr_can_run() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("l2pop=info")),
        )
        .try_init();
    // A port on our side of the veth (198.18.N.1), free a moment ago.
    let listen_port = passive.then(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    });
    let site = Site::create(SiteOptions {
        listen_port,
        ..SiteOptions::test("e", variant)
    })
    .unwrap();
    site.start("zebra").unwrap();
    site.start("bgpd").unwrap();

    let store = tempfile::tempdir().unwrap();
    let server = TestServer::start(&format!(
        "sqlite:{}",
        store.path().join("l2pop.db").display()
    ))
    .await;
    server.vpn_site_of_compute_1().await;

    let config = format!(
        r#"
[bgp]
host = "bgp-1"
local_as = 65000
router_id = "{ours}"
connect_retry_s = 1
import_route_targets = ["65001:1001"]
{listen}
[server]
url = "{url}"
token = "{ADMIN}"
[[neighbors]]
address = "{pe}"
remote_as = 65001
local_address = "{ours}"
passive = {passive}
"#,
        listen = listen_port
            .map(|p| format!("listen = \"{}:{p}\"", site.ours()))
            .unwrap_or_default(),
        ours = site.ours(),
        pe = site.pe(),
        url = server.url,
    );
    let settings = l2pop::bgp::config::RawConfig::parse(&config, "test")
        .unwrap()
        .validate()
        .unwrap();
    let shutdown = CancellationToken::new();
    let speaker = tokio::spawn(l2pop::bgp::run(settings, shutdown.clone()));

    wait_for(&server, &site, "gateway and devices learned", |e, alive| {
        has_site(e) && alive == Some(true)
    })
    .await;
    // Nothing but the site's own entries under its VTEP, from the bgpvpn extension.
    let fdb = server
        .admin(Method::GET, "/v2.0/l2pop/hosts/compute-1/fdb", None)
        .await;
    let sources: Vec<&Value> = fdb["fdb"]["networks"][0]["vteps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["vtep"] == VTEP)
        .flat_map(|v| v["entries"].as_array().unwrap())
        .map(|e| &e["source"])
        .collect();
    assert!(
        sources
            .iter()
            .all(|s| **s == json!({"extension": "bgpvpn"})),
        "{sources:?}"
    );

    // Session flap: bgpd dies, the session drops, the agent goes down (case 6b) and the
    // site's entries leave compute-1's FDB.
    site.kill("bgpd");
    wait_for(
        &server,
        &site,
        "entries removed after bgpd died",
        |e, alive| e.is_empty() && alive == Some(false),
    )
    .await;
    // A new bgpd: the session comes back and so do the entries.
    site.start("bgpd").unwrap();
    wait_for(
        &server,
        &site,
        "entries back with the new bgpd",
        |e, alive| has_site(e) && alive == Some(true),
    )
    .await;

    // Stop: the agent reports itself down and its entries go (case 6b).
    shutdown.cancel();
    speaker.await.unwrap().unwrap();
    wait_for(&server, &site, "entries removed at stop", |e, alive| {
        e.is_empty() && alive == Some(false)
    })
    .await;
    server.stop().await;
}

//! Shared by the server's integration tests: an in-process server on 127.0.0.1:0 with a store
//! in a temporary directory (or a given URL) and the in-memory bus, and a small JSON client.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use l2pop::server::config::RawConfig;
use l2pop::server::{RunningServer, start};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";

/// The RabbitMQ the bus tests use (`L2POP_AMQP_URL`, else loopback guest/guest).
pub fn amqp_url() -> String {
    std::env::var("L2POP_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A JSON object literal as RPC keyword arguments.
pub fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// `listing` without the agents' `heartbeat_timestamp`s: heartbeats are not logged, and a server
/// that takes over counts every agent as heard from at its takeover (one down time of grace), so
/// across a restart or a takeover the timestamp is the one thing that moves.
#[allow(dead_code)]
pub fn without_heartbeats(mut listing: Value) -> Value {
    for agent in listing["agents"].as_array_mut().into_iter().flatten() {
        if let Some(agent) = agent.as_object_mut() {
            agent.remove("heartbeat_timestamp");
        }
    }
    listing
}

pub fn config(store_url: &str, bus: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
name = "test-server"
[store]
url = "{store_url}"
leader_poll_ms = 100
[bus]
{bus}
[auth]
admin_token = "{ADMIN}"
[[auth.projects]]
project_id = "alice"
token = "{ALICE}"
[[auth.projects]]
project_id = "bob"
token = "{BOB}"
"#
    )
}

pub struct TestServer {
    pub url: String,
    pub running: RunningServer,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a server on `store_url` with the in-memory bus and waits until it is active.
    pub async fn start(store_url: &str) -> TestServer {
        TestServer::start_with(&config(store_url, "backend = \"memory\"")).await
    }

    pub async fn start_with(toml: &str) -> TestServer {
        let settings = RawConfig::parse(toml, "test").unwrap().validate().unwrap();
        TestServer::start_with_settings(settings).await
    }

    /// Starts a server with validated `settings` (tests that share its in-memory bus).
    pub async fn start_with_settings(settings: l2pop::server::config::Settings) -> TestServer {
        let running = start(settings, CancellationToken::new()).await.unwrap();
        let server = TestServer {
            url: format!("http://{}", running.addr),
            running,
            http: reqwest::Client::new(),
        };
        server.wait_active(Duration::from_secs(30)).await;
        server
    }

    pub async fn wait_active(&self, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            if let Ok(response) = self.http.get(format!("{}/healthz", self.url)).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["role"] == "active"
            {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "server did not become active in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(Some(ADMIN), method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    /// The FRR suites' server side: compute-1 (VTEP 192.0.2.1) with an active port on the vxlan
    /// network 1001, the l2 BGPVPN with the test site's route target 65001:1001 associated with
    /// it, and BGP agent bgp-1 hosting a speaker bound to it.
    pub async fn vpn_site_of_compute_1(&self) {
        self
            .admin(
                Method::POST,
                "/v2.0/l2pop/agents",
                Some(serde_json::json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": true}})),
            )
            .await;
        let network = self
            .admin(
                Method::POST,
                "/v2.0/networks",
                Some(serde_json::json!({"network": {"name": "net1", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}})),
            )
            .await;
        let network_id = network["network"]["id"].as_str().unwrap().to_owned();
        self.admin(
            Method::POST,
            "/v2.0/subnets",
            Some(serde_json::json!({"subnet": {"network_id": network_id, "cidr": "10.1.0.0/24"}})),
        )
        .await;
        let port = self
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(serde_json::json!({"port": {"network_id": network_id, "name": "vm1", "mac_address": "fa:16:3e:00:00:01",
                                      "binding:host_id": "compute-1", "device_owner": "compute:nova"}})),
            )
            .await;
        let port_id = port["port"]["id"].as_str().unwrap().to_owned();
        self.admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{port_id}/up"),
            Some(serde_json::json!({"device": {"host": "compute-1"}})),
        )
        .await;
        self
            .bgpvpn_site(
                &network_id,
                "bgp-1",
                serde_json::json!({"bgpvpn": {"name": "site", "type": "l2", "route_targets": ["65001:1001"], "vni": 1001}}),
            )
            .await;
    }

    /// A VPN site for `network`: the BGPVPN `bgpvpn` (a `{"bgpvpn": {...}}` body) associated
    /// with it, and the BGP agent `bgp_host` (reported with `start_flag`) hosting a speaker
    /// bound to it. Returns the BGP agent's id.
    #[allow(dead_code)]
    pub async fn bgpvpn_site(&self, network: &str, bgp_host: &str, bgpvpn: Value) -> String {
        let vpn = self
            .admin(Method::POST, "/v2.0/bgpvpn/bgpvpns", Some(bgpvpn))
            .await;
        let vpn_id = vpn["bgpvpn"]["id"].as_str().unwrap().to_owned();
        self.admin(
            Method::POST,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}/network_associations"),
            Some(serde_json::json!({"network_association": {"network_id": network}})),
        )
        .await;
        let agent = self
            .admin(
                Method::PUT,
                &format!("/v2.0/l2pop/bgp-agents/{bgp_host}"),
                Some(serde_json::json!({"bgp_agent": {"start_flag": true}})),
            )
            .await;
        let agent_id = agent["agent"]["id"].as_str().unwrap().to_owned();
        let speaker = self
            .admin(
                Method::POST,
                "/v2.0/bgp-speakers",
                Some(serde_json::json!({"bgp_speaker": {"name": "speaker", "local_as": 65000}})),
            )
            .await;
        let speaker_id = speaker["bgp_speaker"]["id"].as_str().unwrap().to_owned();
        self.admin(
            Method::POST,
            &format!("/v2.0/agents/{agent_id}/bgp-drinstances"),
            Some(serde_json::json!({"bgp_speaker_id": speaker_id})),
        )
        .await;
        self.admin(
            Method::PUT,
            &format!("/v2.0/bgp-speakers/{speaker_id}/add_bgp_vpn"),
            Some(serde_json::json!({"bgpvpn_id": vpn_id})),
        )
        .await;
        agent_id
    }

    /// Creates a network named `name` with one subnet `cidr` (tenant defaults); its id.
    pub async fn network_with_subnet(&self, name: &str, cidr: &str) -> String {
        let network = self
            .admin(
                Method::POST,
                "/v2.0/networks",
                Some(serde_json::json!({"network": {"name": name}})),
            )
            .await;
        let id = network["network"]["id"].as_str().unwrap().to_owned();
        self.admin(
            Method::POST,
            "/v2.0/subnets",
            Some(serde_json::json!({"subnet": {"network_id": id, "cidr": cidr}})),
        )
        .await;
        id
    }

    pub async fn stop(self) {
        self.running.shutdown.cancel();
        self.running.task.await.unwrap().unwrap();
    }
}

// ---- the real binary as a child process, and throw-away PostgreSQL databases ----
// (crash.rs, failover.rs)

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The configuration of a child server: in-memory bus, the test tokens, `name` in the leader
/// record, a snapshot every [`CHILD_SNAPSHOT_EVERY`] commands (so that takeovers and restarts
/// read snapshots and compacted logs). `--listen` and `--store-url` are passed on the command
/// line as well.
pub fn child_config(store_url: &str, name: &str, leader_poll_ms: u64) -> String {
    config(store_url, "backend = \"memory\"")
        .replace("name = \"test-server\"", &format!("name = \"{name}\""))
        .replace(
            "leader_poll_ms = 100",
            &format!("leader_poll_ms = {leader_poll_ms}\nsnapshot_every = {CHILD_SNAPSHOT_EVERY}"),
        )
}

/// `store.snapshot_every` of child servers.
pub const CHILD_SNAPSHOT_EVERY: u64 = 5;

/// Waits until the store at `url` holds a snapshot and its log was compacted below it; returns
/// the snapshot's command.
#[allow(dead_code)]
pub async fn wait_compacted(url: &str, limit: Duration) -> u64 {
    let store = l2pop_store::Store::open(url).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(snapshot) = store.latest_snapshot().await.unwrap()
            && matches!(
                store.read_log(0).next_chunk().await,
                Err(l2pop_store::StoreError::LogCompacted { .. })
            )
        {
            store.close().await;
            return snapshot.seq;
        }
        assert!(
            started.elapsed() < limit,
            "no snapshot and compaction in {url} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A JSON client for servers that may die under it: transport errors are returned, not unwrapped.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Sends an admin request to `base`; `Err` only for transport errors (refused, reset, timeout).
pub async fn admin_call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let mut request = http
        .request(method, format!("{base}{path}"))
        .header("X-Auth-Token", ADMIN);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

/// The last `lines` lines of a file (for assertion messages).
pub fn file_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    format!(
        "---- {} (last {} lines) ----\n{}",
        path.display(),
        all.len() - from,
        all[from..].join("\n")
    )
}

/// `l2pop server` (the real binary) as a child of the test, killed when dropped; its stderr
/// goes to `<dir>/<name>.<n>.stderr` (one file per start).
pub struct ChildServer {
    pub name: String,
    pub url: String,
    pub child: tokio::process::Child,
    pub stderr_path: std::path::PathBuf,
    pub http: reqwest::Client,
}

impl ChildServer {
    /// Starts the binary on a free port and waits until it answers `/healthz` (either role).
    /// A lost race for the port (another test took it) is retried on a new one.
    pub async fn start(
        dir: &std::path::Path,
        name: &str,
        store_url: &str,
        leader_poll_ms: u64,
    ) -> ChildServer {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, child_config(store_url, name, leader_poll_ms)).unwrap();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let stderr_path = (0..)
                .map(|n| dir.join(format!("{name}.{n}.stderr")))
                .find(|p| !p.exists())
                .unwrap();
            let stderr = std::fs::File::create(&stderr_path).unwrap();
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_l2pop"));
            command
                .arg("server")
                .arg("--config")
                .arg(&config_path)
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--store-url")
                .arg(store_url)
                .env("RUST_LOG", "info")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::from(stderr))
                .kill_on_drop(true);
            for key in [
                "L2POP_LISTEN",
                "L2POP_STORE_URL",
                "L2POP_BUS_BACKEND",
                "L2POP_BUS_URL",
                "L2POP_BUS_TOPIC",
                "L2POP_ADMIN_TOKEN",
            ] {
                command.env_remove(key);
            }
            let child = command.spawn().unwrap();
            let mut server = ChildServer {
                name: name.to_owned(),
                url: format!("http://127.0.0.1:{port}"),
                child,
                stderr_path,
                http: http_client(),
            };
            match server.wait_reachable(Duration::from_secs(30)).await {
                Ok(()) => return server,
                Err(tail) if attempt < 3 && tail.contains("cannot bind") => continue,
                Err(tail) => panic!("{name} did not start:\n{tail}"),
            }
        }
    }

    /// The last lines of this process's stderr.
    pub fn tail(&self) -> String {
        file_tail(&self.stderr_path, 40)
    }

    /// `Some(role)` from `/healthz`, `None` while it cannot be reached.
    pub async fn role(&self) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/healthz", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["role"].as_str().map(str::to_owned)
    }

    /// Panics (with stderr) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited unexpectedly: {status}\n{}",
                self.name,
                self.tail()
            );
        }
    }

    /// Retries only while the connection is refused and the process lives; `Err(stderr tail)`
    /// if it exited first or the limit passed.
    async fn wait_reachable(&mut self, limit: Duration) -> Result<(), String> {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited: {status}\n{}", self.tail()));
            }
            match self
                .http
                .get(format!("{}/healthz", self.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    return Err(format!(
                        "/healthz answered {}\n{}",
                        response.status(),
                        self.tail()
                    ));
                }
                Err(error) if error.is_connect() => {}
                Err(error) => return Err(format!("/healthz: {error}\n{}", self.tail())),
            }
            if started.elapsed() > limit {
                return Err(format!("not reachable within {limit:?}\n{}", self.tail()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `/healthz` reports `role`; panics (with stderr) after `limit` or if the
    /// process exits.
    pub async fn wait_role(&mut self, role: &str, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            self.assert_running();
            let seen = self.role().await;
            if seen.as_deref() == Some(role) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{} did not become {role} within {limit:?} (last seen {seen:?})\n{}",
                self.name,
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// An admin request that must succeed (2xx); the message carries stderr otherwise.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        match admin_call(&self.http, &self.url, method.clone(), path, body.as_ref()).await {
            Ok((status, value)) if status.is_success() => value,
            Ok((status, value)) => panic!(
                "{} {method} {path}: {status} {value}\n{}",
                self.name,
                self.tail()
            ),
            Err(error) => panic!("{} {method} {path}: {error}\n{}", self.name, self.tail()),
        }
    }

    /// SIGKILL, then reaps the process; panics (with stderr) if it had already exited.
    pub async fn kill9(&mut self) {
        self.assert_running();
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(
                status.signal(),
                Some(9),
                "{} ended with {status}, not by SIGKILL\n{}",
                self.name,
                self.tail()
            );
        }
        #[cfg(not(unix))]
        let _ = status;
    }
}

/// A fresh PostgreSQL database `l2pop_test_<random>` on the server at `$L2POP_TEST_PG` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), created and dropped with `psql`. Creating
/// panics when the server cannot be reached: these tests fail, they never skip.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let admin_url = std::env::var("L2POP_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("l2pop_test_{}", uuid::Uuid::new_v4().simple());
        let output = tokio::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &admin_url, "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run psql (needed for the PostgreSQL tests): {e}"));
        assert!(
            output.status.success(),
            "PostgreSQL at {admin_url} (L2POP_TEST_PG) is not usable: CREATE DATABASE {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = pg_url_with_database(&admin_url, &name);
        PgDatabase {
            url,
            admin_url,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let output = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.admin_url,
                "-c",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "could not drop {}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => eprintln!("could not drop {}: {error}", self.name),
        }
    }
}

/// `postgres://user@host:port/db?query` with `db` replaced by `database`.
pub fn pg_url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Whether an FRR interop test can run: false (skipped, with a message) when not root, or
/// when FRR is absent outside CI; under CI=true a missing FRR fails.
pub fn frr_can_run() -> bool {
    if !l2pop::demo::is_root() {
        eprintln!("skipped: the FRR interop test needs root (network namespaces, FRR daemons)");
        return false;
    }
    if !l2pop::demo::frr::installed() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "FRR is not installed ({}/bgpd): scripts/services installs it (apt-get install -y frr)",
            l2pop::demo::frr::FRR_DIR
        );
        eprintln!("skipped: FRR is not installed (apt-get install -y frr)");
        return false;
    }
    true
}

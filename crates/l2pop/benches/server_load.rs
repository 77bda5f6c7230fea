//! `cargo bench -p l2pop --bench server_load`: the server under sustained load (issue 4).
//!
//! Clients loop over `POST /v2.0/ports` (bound to one of 50 hosts, explicit unique MAC) then
//! `POST /v2.0/l2pop/devices/{id}/up`; one op is that pair. Each configuration runs for
//! `L2POP_BENCH_SECS` seconds (default 60): SQLite (a file in a temporary directory) and
//! PostgreSQL (a fresh database per configuration, created and dropped with `psql`) × 1, 8 and
//! 64 clients, all publishing to RabbitMQ on a topic of their own, plus SQLite with the
//! in-memory bus at 64 clients (what the broker costs).
//!
//! The server runs in a child process (this binary again, selected by an environment variable)
//! with a fresh store per configuration: its Prometheus counters then start at zero (the
//! publisher's `l2pop_bus_messages_published_total` is set with `absolute`, a `fetch_max`, so
//! successive servers in one process would hide each other), and its CPU time can be told
//! apart from the clients'. The clients run in this process, on the same two cores.
//!
//! Measured per configuration: ops/s, per-request latency (both requests) p50/p99/p99.9/max,
//! notifications handed to the bus and messages published to the broker per second (from
//! `GET /metrics` before and after the window), the mean group-commit batch
//! (`l2pop_commit_batch_commands`), CPU used by the server, the clients and everything else.
//! After each configuration, with the server stopped, two in-process baselines apply the same
//! number of ops to the same topology with no I/O: the engine alone (`Engine::apply` of
//! `port_create` + `device_up`), and the owner's whole per-request work (parse the body, plan,
//! `NeutronState::handle`: plan, execute, render the answer; then serialize the command). The table prints the
//! server's ops/s divided by each, and 64 clients ÷ 1 client per store (the group-commit
//! claim). Nothing asserts on time.
//!
//! Environment: `L2POP_BENCH_SECS` (default 60), `L2POP_BENCH_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`), `L2POP_BENCH_PG_URL` (an admin connection for
//! `psql`, default `postgres://postgres@127.0.0.1:5432/postgres`), `L2POP_BENCH_ONLY`
//! (`;`-separated substrings of the labels of the configurations to run, e.g.
//! `sqlite + rabbit, 64;memory`).
//! An unreachable RabbitMQ or PostgreSQL fails the run with a message saying so.

#[path = "../../l2pop-engine/benches/support/report.rs"]
mod report;

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use l2pop::server::config::RawConfig;
use l2pop::server::owner::SystemFresh;
use l2pop_engine::{
    AgentReport, DeviceUp, Engine, EngineBuilder, Event, NetworkCreate, PortCreate, SubnetCreate,
};
use l2pop_model::{Host, Mac, NetworkId, NetworkType, PortId, Uuid};
use l2pop_neutron::command::{Command, NetworkRecord, SubnetRecord};
use l2pop_neutron::request::{self as requests, DeviceName, DeviceReply, ReportReply};
use l2pop_neutron::{Caller, NeutronState, Request, TenantNetworks};
use report::{cpu_stall_us, fmt_ratio, thousands};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Set in the child's environment: the path of the server's TOML configuration.
const CHILD_ENV: &str = "L2POP_BENCH_SERVER_CONFIG";
const ADMIN: &str = "bench-admin-token";
const HOSTS: u64 = 50;
const SEGMENTATION_ID: u32 = 1001;
/// 1,048,576 addresses: room for every port of a minute at any rate this machine reaches.
const CIDR: &str = "10.0.0.0/12";
const CONCURRENCY: [usize; 3] = [1, 8, 64];
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Linux's USER_HZ on every architecture this runs on (`/proc/<pid>/stat` counts in it).
const TICKS_PER_SECOND: f64 = 100.0;

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        return child(&path);
    }
    match parent() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server_load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The child: one server until its standard input closes.
// ---------------------------------------------------------------------------------------------

fn child(path: &str) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    match serve(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let settings = RawConfig::parse(&text, path)?.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = l2pop::server::start(settings, shutdown.clone()).await?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening {}", running.addr)?;
        stdout.flush()?;
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            shutdown.cancel();
        });
        running.task.await.context("the server task panicked")?
    })
}

/// The parent's handle on a child server.
struct ServerProcess {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl ServerProcess {
    fn spawn(toml: &str, dir: &Path, label: &str) -> anyhow::Result<ServerProcess> {
        let config = dir.join(format!("{label}.toml"));
        std::fs::write(&config, toml)?;
        let stderr = dir.join(format!("{label}.stderr"));
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, &config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .context("cannot start the server process")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.wait();
            bail!(
                "the server process did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default().trim()
            );
        };
        let addr: SocketAddr = addr.parse()?;
        Ok(ServerProcess {
            child,
            url: format!("http://{addr}"),
            stderr,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Closes the child's standard input (its shutdown signal) and waits for it to exit.
    fn stop(&mut self) -> anyhow::Result<(Duration, std::process::ExitStatus)> {
        drop(self.child.stdin.take());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((started.elapsed(), status));
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                bail!("the server process did not stop within 60 s; killed it");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn server_toml(store_url: &str, bus: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
name = "bench-server"
[store]
url = "{store_url}"
leader_poll_ms = 100
[bus]
{bus}
[auth]
admin_token = "{ADMIN}"
"#
    )
}

// ---------------------------------------------------------------------------------------------
// Stores and the broker.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Configuration {
    store: StoreKind,
    rabbit: bool,
    clients: usize,
}

impl Configuration {
    fn label(&self) -> String {
        format!(
            "{} + {}, {} client{}",
            self.store.name(),
            if self.rabbit { "rabbit" } else { "memory bus" },
            self.clients,
            if self.clients == 1 { "" } else { "s" }
        )
    }
}

/// The PostgreSQL databases this run created; dropped at the end, whatever happens.
struct Databases {
    admin_url: String,
    created: Vec<String>,
}

impl Databases {
    fn psql(&self, sql: &str) -> anyhow::Result<()> {
        let output = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                &self.admin_url,
                "-c",
                sql,
            ])
            .output()
            .context("cannot run psql (is the PostgreSQL client installed?)")?;
        if !output.status.success() {
            bail!(
                "psql {:?} on {}: {}\n(is PostgreSQL running? `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)",
                sql,
                self.admin_url,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// A fresh database; returns its URL.
    fn create(&mut self, name: &str) -> anyhow::Result<String> {
        self.psql(&format!("CREATE DATABASE {name}"))?;
        self.created.push(name.to_owned());
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(base, _)| base);
        Ok(format!("{base}/{name}"))
    }

    fn drop_one(&mut self, name: &str) {
        if let Err(error) = self.psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
            eprintln!("server_load: could not drop database {name}: {error:#}");
        }
        self.created.retain(|n| n != name);
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.created) {
            self.drop_one(&name);
        }
    }
}

/// `host:port` of an `amqp://user:pass@host:port/vhost` URL.
fn amqp_endpoint(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5672")
    }
}

fn check_rabbit(url: &str) -> anyhow::Result<()> {
    let endpoint = amqp_endpoint(url);
    let reachable = endpoint.to_socket_addrs().ok().and_then(|mut addrs| {
        addrs.find(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(3)).is_ok())
    });
    if reachable.is_none() {
        bail!(
            "RabbitMQ is unreachable at {endpoint} ({url}); start it (`rabbitmq-server -detached`) or set L2POP_BENCH_AMQP_URL"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CPU accounting and metrics.
// ---------------------------------------------------------------------------------------------

/// utime + stime of a process, in seconds.
fn process_cpu(pid: u32) -> f64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command name: field 3 (state) is index 0, utime (14) index 11, stime (15) 12.
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND
}

/// Busy CPU seconds of the whole machine (everything but idle and iowait).
fn machine_busy() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = values
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy as f64 / TICKS_PER_SECOND
}

#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    server: f64,
    client: f64,
    machine: f64,
}

fn cpu_now(server_pid: u32) -> Cpu {
    Cpu {
        server: process_cpu(server_pid),
        client: process_cpu(std::process::id()),
        machine: machine_busy(),
    }
}

/// `GET /metrics`: every sample, by series name (labels summed over).
#[derive(Debug, Default)]
struct Metrics(std::collections::HashMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut sums = std::collections::HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(split) => split,
                None => continue,
            };
            if series.contains("quantile=") {
                continue;
            }
            let name = series.split('{').next().unwrap_or(series).trim();
            if let Ok(value) = value.trim().parse::<f64>() {
                *sums.entry(name.to_owned()).or_insert(0.0) += value;
            }
        }
        Metrics(sums)
    }

    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }

    fn delta(&self, before: &Metrics, name: &str) -> f64 {
        self.get(name) - before.get(name)
    }
}

// ---------------------------------------------------------------------------------------------
// The load.
// ---------------------------------------------------------------------------------------------

struct Load {
    http: reqwest::Client,
    url: String,
    network: String,
    started: Instant,
    deadline: Instant,
    next: AtomicU64,
    /// Ops completed in each second of the window.
    per_second: Vec<AtomicU32>,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
}

#[derive(Debug, Default)]
struct ClientResult {
    ops: u64,
    /// Per request, µs.
    latencies: Vec<u32>,
    /// (latency µs, seconds into the window) of the slowest request.
    slowest: (u32, f64),
}

#[derive(Deserialize)]
struct Created {
    port: CreatedPort,
}

#[derive(Deserialize)]
struct CreatedPort {
    id: String,
}

fn host_name(h: u64) -> String {
    format!("compute-{h:02}")
}

fn vtep(h: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(172, 16, 0, 1)) + h as u32,
    ))
}

fn mac(k: u64) -> Mac {
    let [.., a, b, c] = k.to_be_bytes();
    Mac::new([0xfa, 0x16, 0x3e, a, b, c])
}

fn port_body(network: &str, k: u64) -> String {
    format!(
        r#"{{"port": {{"network_id": "{network}", "project_id": "bench", "mac_address": "{}", "binding:host_id": "{}", "device_owner": "compute:nova", "device_id": "vm-{k}"}}}}"#,
        mac(k),
        host_name(k % HOSTS)
    )
}

fn device_body(k: u64) -> String {
    format!(r#"{{"device": {{"host": "{}"}}}}"#, host_name(k % HOSTS))
}

impl Load {
    async fn post(&self, path: &str, body: String) -> Result<(u16, axum::body::Bytes), String> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("X-Auth-Token", ADMIN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("POST {path}: reading the answer: {e}"))?;
        Ok((status, bytes))
    }

    fn refused(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = self.samples.lock()
            && samples.len() < 5
        {
            samples.push(what);
        }
    }

    /// One timed request; `None` if it failed (counted and sampled).
    async fn timed(
        &self,
        path: &str,
        body: String,
        expect: u16,
        result: &mut ClientResult,
    ) -> Option<axum::body::Bytes> {
        let sent = Instant::now();
        let answer = self.post(path, body).await;
        let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        result.latencies.push(micros);
        if micros > result.slowest.0 {
            result.slowest = (micros, (sent - self.started).as_secs_f64());
        }
        match answer {
            Ok((status, bytes)) if status == expect => Some(bytes),
            Ok((status, bytes)) => {
                self.refused(format!(
                    "POST {path}: {status} {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                ));
                None
            }
            Err(error) => {
                self.refused(error);
                None
            }
        }
    }

    async fn client(self: Arc<Self>) -> ClientResult {
        let mut result = ClientResult::default();
        let mut failures_in_a_row = 0u32;
        while Instant::now() < self.deadline {
            if failures_in_a_row >= 100 {
                self.refused("client gave up after 100 failures in a row".to_owned());
                break;
            }
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(created) = self
                .timed("/v2.0/ports", port_body(&self.network, k), 201, &mut result)
                .await
            else {
                failures_in_a_row += 1;
                continue;
            };
            let id = match serde_json::from_slice::<Created>(&created) {
                Ok(created) => created.port.id,
                Err(error) => {
                    self.refused(format!("POST /v2.0/ports: answer without port.id: {error}"));
                    failures_in_a_row += 1;
                    continue;
                }
            };
            let path = format!("/v2.0/l2pop/devices/{id}/up");
            if self
                .timed(&path, device_body(k), 200, &mut result)
                .await
                .is_none()
            {
                failures_in_a_row += 1;
                continue;
            }
            failures_in_a_row = 0;
            result.ops += 1;
            let second = self.started.elapsed().as_secs() as usize;
            if let Some(slot) = self.per_second.get(second) {
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

async fn admin_post(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = http
        .post(format!("{url}{path}"))
        .header("X-Auth-Token", ADMIN)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status} {value}");
    }
    Ok(value)
}

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Metrics> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .context("GET /metrics")?
        .text()
        .await?;
    Ok(Metrics::parse(&text))
}

/// Waits until the server answers `/healthz` as active; fails with the server's own error if
/// it exits first.
async fn wait_active(
    http: &reqwest::Client,
    server: &mut ServerProcess,
    what: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = server.exited() {
            let log = server.log();
            let hint = if log.contains("bus") {
                "\n(is RabbitMQ running? `rabbitmq-server -detached`)"
            } else if log.contains("store") {
                "\n(is the store reachable?)"
            } else {
                ""
            };
            bail!("{what}: the server exited ({status}): {}{hint}", log.trim());
        }
        if let Ok(response) = http.get(format!("{}/healthz", server.url)).send().await
            && let Ok(body) = response.json::<Value>().await
            && body["role"] == "active"
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "{what}: the server did not become active in 60 s: {}",
                server.log().trim()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 50 agents, one vxlan network with one /12 subnet, through the API. Returns the network id.
async fn topology(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    for h in 0..HOSTS {
        admin_post(
            http,
            url,
            "/v2.0/l2pop/agents",
            json!({"agent": {"host": host_name(h), "tunneling_ip": vtep(h), "tunnel_types": ["vxlan"], "start_flag": true}}),
        )
        .await?;
    }
    let network = admin_post(
        http,
        url,
        "/v2.0/networks",
        json!({"network": {"name": "bench", "project_id": "bench", "provider:network_type": "vxlan", "provider:segmentation_id": SEGMENTATION_ID}}),
    )
    .await?;
    let id = network["network"]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("network create answered without an id: {network}"))?
        .to_owned();
    admin_post(
        http,
        url,
        "/v2.0/subnets",
        json!({"subnet": {"network_id": id, "cidr": CIDR, "project_id": "bench"}}),
    )
    .await?;
    Ok(id)
}

/// One second of the server's own counters, scraped during the window.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Seconds into the window at the end of this sample.
    at: f64,
    commits: f64,
    commit_seconds: f64,
    notifications: f64,
    published: f64,
    unconfirmed: f64,
}

/// Scrapes `/metrics` every second until `stop`: what the owner and the publisher did in each
/// second (a stall shows whether commits stopped, or were slow, or the broker fell behind).
async fn sample_every_second(
    http: reqwest::Client,
    url: String,
    started: Instant,
    stop: CancellationToken,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut previous = match scrape(&http, &url).await {
        Ok(metrics) => metrics,
        Err(_) => return samples,
    };
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(started + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return samples,
        }
        let Ok(now) = scrape(&http, &url).await else {
            continue;
        };
        samples.push(Sample {
            at: started.elapsed().as_secs_f64(),
            commits: now.delta(&previous, "l2pop_commit_batch_commands_count"),
            commit_seconds: now.delta(&previous, "l2pop_commit_seconds_sum"),
            notifications: now.delta(&previous, "l2pop_notifications_total"),
            published: now.delta(&previous, "l2pop_bus_messages_published_total"),
            unconfirmed: now.get("l2pop_bus_unconfirmed"),
        });
        previous = now;
    }
}

/// What one configuration measured.
#[derive(Debug, Default)]
struct Outcome {
    label: String,
    store: Option<StoreKind>,
    rabbit: bool,
    clients: usize,
    ops: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    slowest_at: f64,
    notifications: f64,
    published: f64,
    unconfirmed_after: f64,
    commits: f64,
    batch_commands: f64,
    commit_seconds: f64,
    cpu: Cpu,
    errors: u64,
    samples: Vec<String>,
    per_second: Vec<u32>,
    timeline: Vec<Sample>,
    shutdown: Duration,
    log_lines: Vec<String>,
    engine_ops: f64,
    engine_notifications: u64,
    owner_ops: f64,
}

impl Outcome {
    fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

async fn run_load(
    http: &reqwest::Client,
    server: &ServerProcess,
    network: String,
    clients: usize,
    seconds: u64,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let before = scrape(http, &server.url).await?;
    let cpu_before = cpu_now(server.pid());
    let started = Instant::now();
    let load = Arc::new(Load {
        http: http.clone(),
        url: server.url.clone(),
        network,
        started,
        deadline: started + Duration::from_secs(seconds),
        next: AtomicU64::new(1),
        per_second: (0..seconds + 30).map(|_| AtomicU32::new(0)).collect(),
        errors: AtomicU64::new(0),
        samples: Mutex::new(Vec::new()),
    });
    let stop_sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample_every_second(
        http.clone(),
        server.url.clone(),
        started,
        stop_sampling.clone(),
    ));
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(load.clone().client()))
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        let result = task.await.context("a client panicked")?;
        outcome.ops += result.ops;
        latencies.extend_from_slice(&result.latencies);
        if result.slowest.0 as f64 / 1000.0 > outcome.max_ms {
            outcome.max_ms = f64::from(result.slowest.0) / 1000.0;
            outcome.slowest_at = result.slowest.1;
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    let cpu_after = cpu_now(server.pid());
    stop_sampling.cancel();
    outcome.timeline = sampler.await.unwrap_or_default();
    let after = scrape(http, &server.url).await?;
    latencies.sort_unstable();
    outcome.p50_ms = percentile(&latencies, 50.0);
    outcome.p99_ms = percentile(&latencies, 99.0);
    outcome.p999_ms = percentile(&latencies, 99.9);
    outcome.notifications = after.delta(&before, "l2pop_notifications_total");
    outcome.published = after.delta(&before, "l2pop_bus_messages_published_total");
    outcome.unconfirmed_after = after.get("l2pop_bus_unconfirmed");
    outcome.commits = after.delta(&before, "l2pop_commit_batch_commands_count");
    outcome.batch_commands = after.delta(&before, "l2pop_commit_batch_commands_sum");
    outcome.commit_seconds = after.delta(&before, "l2pop_commit_seconds_sum");
    outcome.cpu = Cpu {
        server: cpu_after.server - cpu_before.server,
        client: cpu_after.client - cpu_before.client,
        machine: cpu_after.machine - cpu_before.machine,
    };
    outcome.errors = load.errors.load(Ordering::Relaxed);
    outcome.samples = load.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let full_seconds = (outcome.seconds.floor() as usize).min(load.per_second.len());
    outcome.per_second = load.per_second[..full_seconds]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// In-process baselines, no I/O.
// ---------------------------------------------------------------------------------------------

fn network_id() -> NetworkId {
    NetworkId(Uuid::from_u128(0x6e65_7477_0000_0000_0000_0000_0000_0001))
}

fn host(h: u64) -> Host {
    Host::new(&host_name(h)).expect("valid host name")
}

fn address(offset: u64) -> IpAddr {
    // 10.0.0.1 is the gateway; the server allocates from 10.0.0.2.
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(10, 0, 0, 2)) + offset as u32,
    ))
}

/// `Engine::apply` of `port_create` + `device_up` for `n` ports on the benchmark's topology
/// (the engine built as the server builds it, with the BGPVPN extension). Returns ops/s and
/// the notifications emitted.
fn engine_rate(n: u64) -> anyhow::Result<(f64, u64)> {
    let mut engine: Engine = EngineBuilder::new()
        .extension(l2pop_bgpvpn::NAME, l2pop_bgpvpn::Bgpvpn::new())
        .map(EngineBuilder::build)?;
    for h in 0..HOSTS {
        engine.apply(&Event::Agent(AgentReport {
            host: host(h),
            tunneling_ip: Some(vtep(h)),
            tunnel_types: vec![NetworkType::Vxlan],
            l2pop_network_types: None,
            start_flag: true,
        }))?;
    }
    engine.apply(&Event::Network(NetworkCreate {
        id: network_id(),
        network_type: NetworkType::Vxlan,
        segmentation_id: Some(u64::from(SEGMENTATION_ID)),
        physical_network: None,
    }))?;
    engine.apply(&Event::Subnet(SubnetCreate {
        network_id: network_id(),
        cidr: CIDR.parse()?,
    }))?;
    let events: Vec<(Event, Event)> = (1..=n)
        .map(|k| {
            let id = PortId(Uuid::from_u128((0x706f_7274u128 << 96) | u128::from(k)));
            (
                Event::PortCreate(PortCreate {
                    id,
                    network_id: network_id(),
                    mac: mac(k),
                    fixed_ips: vec![address(k - 1)],
                    device_owner: "compute:nova".to_owned(),
                    device_id: format!("vm-{k}"),
                    host: Some(host(k % HOSTS)),
                }),
                Event::DeviceUp(DeviceUp {
                    id,
                    host: host(k % HOSTS),
                    refresh_tunnels: false,
                }),
            )
        })
        .collect();
    let mut notifications = 0u64;
    let started = Instant::now();
    for (create, up) in &events {
        notifications += engine.apply(create)?.len() as u64;
        notifications += engine.apply(up)?.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    black_box(&engine);
    Ok((n as f64 / elapsed, notifications))
}

/// The owner's work for `n` ops, as the owner does it for `POST /v2.0/ports` and
/// `POST /v2.0/l2pop/devices/{id}/up` once the handler parsed the body into a request:
/// `NeutronState::handle` (plan with `SystemFresh` ids and timestamps and the IP allocation,
/// execute, render the answer) and the command serialized for the log. No parsing (done on the
/// handler's task), no store, no bus, no HTTP. Returns ops/s.
fn owner_rate(n: u64) -> anyhow::Result<f64> {
    let api = |e: l2pop_neutron::NeutronError| anyhow!("{e}");
    let mut state = NeutronState::new();
    let mut fresh = SystemFresh;
    let tenant = TenantNetworks::default();
    let caller = Caller::Admin;
    for h in 0..HOSTS {
        let body = requests::body(
            json!({"agent": {"host": host_name(h), "tunneling_ip": vtep(h), "tunnel_types": ["vxlan"], "start_flag": true}}),
            "agent",
        )
        .map_err(api)?;
        let reply = ReportReply::Agent;
        let request = Request::AgentReport { body, reply };
        state
            .handle(&caller, request, &tenant, &mut fresh)
            .map_err(api)?;
    }
    let created_at = "2026-11-21T00:00:00Z".to_owned();
    state
        .execute(&Command::NetworkCreate {
            network: NetworkRecord {
                id: network_id(),
                name: "bench".to_owned(),
                description: String::new(),
                mtu: None,
                port_security_enabled: true,
                project_id: "bench".to_owned(),
                admin_state_up: true,
                network_type: NetworkType::Vxlan,
                segmentation_id: Some(SEGMENTATION_ID),
                physical_network: None,
                created_at: created_at.clone(),
                segment_id: None,
            },
        })
        .map_err(api)?;
    state
        .execute(&Command::SubnetCreate {
            subnet: SubnetRecord {
                id: Uuid::from_u128(0x5375_626e),
                name: String::new(),
                project_id: "bench".to_owned(),
                network_id: network_id(),
                cidr: CIDR.parse()?,
                gateway_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                enable_dhcp: true,
                created_at,
                description: String::new(),
                allocation_pools: None,
                dns_nameservers: Vec::new(),
                host_routes: Vec::new(),
                ipv6_address_mode: None,
                ipv6_ra_mode: None,
            },
        })
        .map_err(api)?;
    let network = network_id().to_string();
    // Parsed up front: the handlers parse on their own tasks.
    let mut ops: Vec<(Request, Value)> = Vec::new();
    for k in 1..=n {
        let port: Value = serde_json::from_str(&port_body(&network, k))?;
        let up: Value = serde_json::from_str(&device_body(k))?;
        ops.push((
            Request::PortCreate(requests::body(port, "port").map_err(api)?),
            up,
        ));
    }
    let started = Instant::now();
    for (create, up) in ops {
        let outcome = state
            .handle(&caller, create, &tenant, &mut fresh)
            .map_err(api)?;
        let logged = serde_json::to_string(&outcome.command)?;
        let answer = outcome.answer.map_err(api)?;
        let id: PortId = answer["port"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| anyhow!("port_create answered {answer}"))?;
        black_box((outcome.notifications, logged));
        let request = Request::Device {
            device: DeviceName::Port(id),
            up: true,
            body: requests::body(up, "device").map_err(api)?,
            reply: DeviceReply::Port,
        };
        let outcome = state
            .handle(&caller, request, &tenant, &mut fresh)
            .map_err(api)?;
        let logged = serde_json::to_string(&outcome.command)?;
        black_box((outcome.notifications, logged, outcome.answer.map_err(api)?));
    }
    let elapsed = started.elapsed().as_secs_f64();
    black_box(&state);
    Ok(n as f64 / elapsed)
}

fn median3(mut measure: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut runs = [measure()?, measure()?, measure()?];
    runs.sort_by(f64::total_cmp);
    Ok(runs[1])
}

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

fn parent() -> anyhow::Result<()> {
    let seconds: u64 = match std::env::var("L2POP_BENCH_SECS") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("L2POP_BENCH_SECS={text:?} is not a number of seconds"))?,
        Err(_) => 60,
    };
    let amqp = std::env::var("L2POP_BENCH_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP.to_owned());
    let pg = std::env::var("L2POP_BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_PG.to_owned());
    check_rabbit(&amqp)?;
    let mut databases = Databases {
        admin_url: pg.clone(),
        created: Vec::new(),
    };
    databases.psql("SELECT 1")?;

    let mut configurations = Vec::new();
    for store in [StoreKind::Sqlite, StoreKind::Postgres] {
        for clients in CONCURRENCY {
            configurations.push(Configuration {
                store,
                rabbit: true,
                clients,
            });
        }
    }
    configurations.push(Configuration {
        store: StoreKind::Sqlite,
        rabbit: false,
        clients: CONCURRENCY[CONCURRENCY.len() - 1],
    });

    if let Ok(only) = std::env::var("L2POP_BENCH_ONLY") {
        configurations.retain(|c| only.split(';').any(|part| c.label().contains(part.trim())));
        if configurations.is_empty() {
            bail!("L2POP_BENCH_ONLY={only:?} matches no configuration");
        }
    }
    let run = format!("{}_{}", std::process::id(), unix_seconds());
    println!(
        "l2pop server under load: POST /v2.0/ports + POST /v2.0/l2pop/devices/{{id}}/up, {seconds} s per configuration"
    );
    println!(
        "{} hosts, one vxlan network ({CIDR}); RabbitMQ at {}; PostgreSQL at {}; server in a child process, clients in this one",
        HOSTS,
        amqp_endpoint(&amqp),
        pg
    );
    let stall_before = cpu_stall_us();
    let bench_started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()?;
    let dir = tempfile::tempdir()?;
    let mut outcomes = Vec::new();
    for (index, configuration) in configurations.iter().enumerate() {
        let label = configuration.label();
        println!();
        println!("== {label}");
        let (store_url, database) = match configuration.store {
            StoreKind::Sqlite => (
                format!(
                    "sqlite:{}",
                    dir.path().join(format!("l2pop-{index}.db")).display()
                ),
                None,
            ),
            StoreKind::Postgres => {
                let name = format!("l2pop_bench_{run}_{index}");
                (databases.create(&name)?, Some(name))
            }
        };
        let bus = if configuration.rabbit {
            format!(
                "backend = \"rabbit\"\nurl = \"{amqp}\"\ntopic = \"l2pop-bench-{run}-{index}\"\nrpc_topic = \"l2pop-bench-rpc-{run}-{index}\""
            )
        } else {
            "backend = \"memory\"".to_owned()
        };
        let mut server = ServerProcess::spawn(
            &server_toml(&store_url, &bus),
            dir.path(),
            &format!("server-{index}"),
        )?;
        let mut outcome = Outcome {
            label: label.clone(),
            store: Some(configuration.store),
            rabbit: configuration.rabbit,
            clients: configuration.clients,
            ..Outcome::default()
        };
        runtime.block_on(async {
            wait_active(&http, &mut server, &label).await?;
            let network = topology(&http, &server.url).await?;
            run_load(
                &http,
                &server,
                network,
                configuration.clients,
                seconds,
                &mut outcome,
            )
            .await
        })?;
        let (shutdown, status) = server.stop()?;
        outcome.shutdown = shutdown;
        outcome.log_lines = server.log().lines().map(str::to_owned).collect();
        if !status.success() {
            outcome
                .log_lines
                .push(format!("the server process exited with {status}"));
        }
        drop(server);
        if let Some(name) = database {
            databases.drop_one(&name);
        }
        let n = outcome.ops.max(1);
        let (engine_ops, engine_notifications) = {
            let mut notes = 0;
            let rate = median3(|| {
                let (rate, emitted) = engine_rate(n)?;
                notes = emitted;
                Ok(rate)
            })?;
            (rate, notes)
        };
        outcome.engine_ops = engine_ops;
        outcome.engine_notifications = engine_notifications;
        outcome.owner_ops = median3(|| owner_rate(n))?;
        print_details(&outcome);
        outcomes.push(outcome);
    }
    drop(dir);

    println!();
    print_table(&outcomes, seconds);
    println!(
        "whole run: {:.0} s{}",
        bench_started.elapsed().as_secs_f64(),
        match (stall_before, cpu_stall_us()) {
            (Some(before), Some(after)) => format!(
                "; some task waited for a CPU during {:.1}% of it (Linux PSI)",
                (after - before) as f64 / 1e4 / bench_started.elapsed().as_secs_f64()
            ),
            _ => String::new(),
        }
    );
    Ok(())
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn print_details(o: &Outcome) {
    let secs = o.seconds;
    println!(
        "   {} ops in {:.1} s = {:.0} ops/s; latency per request p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms (at {:.1} s)",
        thousands(o.ops),
        secs,
        o.ops_per_second(),
        o.p50_ms,
        o.p99_ms,
        o.p999_ms,
        o.max_ms,
        o.slowest_at
    );
    let mean_batch = if o.commits > 0.0 {
        o.batch_commands / o.commits
    } else {
        0.0
    };
    println!(
        "   commits: {:.0}/s, mean batch {:.2} commands, mean commit {:.2} ms; notifications {:.0}/s ({:.2} per op), published to the broker {:.0}/s, unconfirmed at the end {:.0}",
        o.commits / secs,
        mean_batch,
        if o.commits > 0.0 {
            o.commit_seconds / o.commits * 1000.0
        } else {
            0.0
        },
        o.notifications / secs,
        o.notifications / o.ops.max(1) as f64,
        o.published / secs,
        o.unconfirmed_after
    );
    println!(
        "   CPU (cores): server {:.2}, clients {:.2}, everything else {:.2} (database, broker, other); server CPU per op {:.0} µs = {:.1}× the owner's own work per op ({:.1} µs)",
        o.cpu.server / secs,
        o.cpu.client / secs,
        (o.cpu.machine - o.cpu.server - o.cpu.client).max(0.0) / secs,
        o.cpu.server / o.ops.max(1) as f64 * 1e6,
        o.cpu.server / o.ops.max(1) as f64 * o.owner_ops.max(1e-9),
        1e6 / o.owner_ops.max(1e-9)
    );
    let seconds = &o.per_second;
    if !seconds.is_empty() {
        let tenth = (seconds.len() / 10).max(1);
        let first: u32 = seconds[..tenth].iter().sum();
        let last: u32 = seconds[seconds.len() - tenth..].iter().sum();
        let (worst_at, worst) = seconds
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| **v)
            .map_or((0, 0), |(i, v)| (i, *v));
        let best = seconds.iter().max().copied().unwrap_or(0);
        println!(
            "   ops per 1-s window: min {worst} (second {worst_at}), max {best}; last tenth / first tenth of the window {:.2}",
            f64::from(last) / f64::from(first.max(1))
        );
        let mut slowest: Vec<(usize, u32)> = seconds.iter().copied().enumerate().collect();
        slowest.sort_by_key(|(_, ops)| *ops);
        let median = {
            let mut sorted: Vec<u32> = seconds.clone();
            sorted.sort_unstable();
            sorted[sorted.len() / 2]
        };
        for (second, ops) in slowest.iter().take(3) {
            if f64::from(*ops) >= 0.5 * f64::from(median) {
                break;
            }
            let sample = o
                .timeline
                .iter()
                .find(|s| s.at >= *second as f64 + 1.0)
                .copied()
                .unwrap_or_default();
            println!(
                "   slow second {second}: {ops} ops (median second {median}); that second the server committed {:.0} batches taking {:.2} s in all, notified {:.0}, published {:.0}, {:.0} unconfirmed",
                sample.commits,
                sample.commit_seconds,
                sample.notifications,
                sample.published,
                sample.unconfirmed
            );
        }
    }
    println!(
        "   in-process for the same {} ops: engine {:.0} ops/s ({:.2} notifications per op), owner's work without I/O {:.0} ops/s",
        thousands(o.ops),
        o.engine_ops,
        o.engine_notifications as f64 / o.ops.max(1) as f64,
        o.owner_ops
    );
    if o.errors > 0 {
        println!("   ERRORS: {} failed requests; first ones:", o.errors);
        for sample in &o.samples {
            println!("     {sample}");
        }
    }
    let noteworthy: Vec<&String> = o
        .log_lines
        .iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("exited"))
        .collect();
    if !noteworthy.is_empty() {
        println!(
            "   server log: {} warning/error lines, first ones:",
            noteworthy.len()
        );
        for line in noteworthy.iter().take(5) {
            println!("     {}", line.chars().take(300).collect::<String>());
        }
    }
    println!(
        "   server shutdown (flush the bus, record the watermark): {:.2} s",
        o.shutdown.as_secs_f64()
    );
}

fn print_table(outcomes: &[Outcome], seconds: u64) {
    println!(
        "l2pop server under load: ratios and rates measured in this run ({seconds} s per configuration)"
    );
    println!();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>9} {:>9}",
        "configuration",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "notif/s",
        "publ/s",
        "batch",
        "÷ engine",
        "÷ owner"
    );
    let _ = writeln!(out, "{}", "-".repeat(106));
    for o in outcomes {
        let batch = if o.commits > 0.0 {
            o.batch_commands / o.commits
        } else {
            0.0
        };
        let published = if o.rabbit {
            format!("{:.0}", o.published / o.seconds)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "{:<34} {:>8.0} {:>7.2} {:>7.2} {:>8.0} {:>8} {:>7.2} {:>9} {:>9}",
            o.label,
            o.ops_per_second(),
            o.p50_ms,
            o.p99_ms,
            o.notifications / o.seconds,
            published,
            batch,
            fmt_ratio(o.ops_per_second() / o.engine_ops),
            fmt_ratio(o.ops_per_second() / o.owner_ops),
        );
    }
    print!("{out}");
    println!();
    let find = |store: StoreKind, rabbit: bool, clients: usize| {
        outcomes
            .iter()
            .find(|o| o.store == Some(store) && o.rabbit == rabbit && o.clients == clients)
    };
    let top = CONCURRENCY[CONCURRENCY.len() - 1];
    for store in [StoreKind::Sqlite, StoreKind::Postgres] {
        if let (Some(one), Some(many)) = (find(store, true, 1), find(store, true, top)) {
            println!(
                "group commit, {}: ops/s at {top} clients / at 1 client = {}; mean batch {:.1} -> {:.1} commands",
                store.name(),
                fmt_ratio(many.ops_per_second() / one.ops_per_second()),
                one.batch_commands / one.commits.max(1.0),
                many.batch_commands / many.commits.max(1.0)
            );
        }
    }
    if let (Some(rabbit), Some(memory)) = (
        find(StoreKind::Sqlite, true, top),
        find(StoreKind::Sqlite, false, top),
    ) {
        println!(
            "bus cost, sqlite at {top} clients: ops/s with RabbitMQ / with the memory bus = {}",
            fmt_ratio(rabbit.ops_per_second() / memory.ops_per_second())
        );
    }
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    println!("failed requests in all configurations: {errors}");
}

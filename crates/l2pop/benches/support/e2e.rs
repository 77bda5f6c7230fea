//! What the end-to-end benches share (agent_e2e, bgp_routes): the phase that owns namespaces,
//! child processes (`l2pop server`, `l2pop agent --netns`, ...) and a folder; the admin REST
//! client; the kernel monitors; fake hosts' ports in bulk. Included with `#[path]`.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use l2pop::demo::topology::{self, HostSpec, VmSpec};
use l2pop_bus::BusSettings;
use l2pop_model::{Mac, NetworkId};
use serde_json::{Value, json};

pub const ADMIN: &str = "bench-admin-token";
pub const DEFAULT_AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{name}={text:?} is not a number")),
        Err(_) => Ok(default),
    }
}

pub fn check_rabbit(url: &str) -> anyhow::Result<()> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5672")
    };
    use std::net::ToSocketAddrs as _;
    let addr = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| anyhow!("cannot resolve RabbitMQ at {hostport}"))?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| {
        format!("RabbitMQ does not answer at {addr}: start it with ./scripts/services")
    })?;
    Ok(())
}

/// The pids of the children not yet reaped: what an interrupt kills.
pub static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// On Ctrl-C or SIGTERM: kill the children, remove this run's namespaces and exit 130.
pub fn interrupt_cleanup(prefixes: Vec<String>) {
    l2pop::demo::on_interrupt(move || {
        let pids = RUNNING.lock().map(|p| p.clone()).unwrap_or_default();
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        for prefix in &prefixes {
            topology::cleanup(prefix);
            let _ =
                std::fs::remove_dir_all(std::env::temp_dir().join(format!("l2pop-bench-{prefix}")));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// What one phase owns: its namespaces, its processes, its folder. Dropping it removes all three.
// ---------------------------------------------------------------------------------------------

pub struct Setup {
    pub exe: PathBuf,
    pub amqp: String,
    pub prefix: String,
    /// Notifier and RPC topics of this phase alone: other runs on the broker never cross it.
    pub topic: String,
    pub rpc_topic: String,
    pub dir: PathBuf,
    pub children: std::cell::RefCell<Vec<(String, Child)>>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let mut children = self.children.borrow_mut();
        for (_, child) in children.iter() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in children.iter_mut() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|pid| !children.iter().any(|(_, c)| c.id() == *pid));
        }
        children.clear();
        topology::cleanup(&self.prefix);
        if std::thread::panicking() || std::env::var_os("L2POP_BENCH_KEEP_LOGS").is_some() {
            eprintln!("bench: logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Setup {
    pub fn new(exe: &Path, amqp: &str, prefix: &str) -> anyhow::Result<Setup> {
        // A namespace of the same prefix can only be left by an earlier run with our pid.
        topology::cleanup(prefix);
        let dir = std::env::temp_dir().join(format!("l2pop-bench-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Setup {
            exe: exe.to_owned(),
            amqp: amqp.to_owned(),
            prefix: prefix.to_owned(),
            topic: format!("{prefix}-notify"),
            rpc_topic: format!("{prefix}-rpc"),
            dir,
            children: std::cell::RefCell::new(Vec::new()),
        })
    }

    pub fn bus(&self) -> BusSettings {
        let mut settings = BusSettings::rabbit(self.amqp.clone());
        settings.topic.clone_from(&self.topic);
        settings.rpc_topic.clone_from(&self.rpc_topic);
        settings
    }

    pub fn spawn(&self, role: &str, command: &mut Command) -> anyhow::Result<u32> {
        let log = std::fs::File::create(self.dir.join(format!("{role}.log")))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {role}"))?;
        let pid = child.id();
        self.adopt(role, child);
        Ok(pid)
    }

    /// Keeps `child` until this phase ends (and lets an interrupt kill it).
    pub fn adopt(&self, role: &str, child: Child) {
        if let Ok(mut running) = RUNNING.lock() {
            running.push(child.id());
        }
        self.children.borrow_mut().push((role.to_owned(), child));
    }

    /// The last lines of a child's log, for an error message.
    pub fn log_tail(&self, role: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{role}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// Starts `l2pop server` (SQLite in the phase's folder) and waits until it is active.
    pub fn start_server(&self) -> anyhow::Result<Api> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = self.dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nname = \"bench-server\"\n\
                 [store]\nurl = \"sqlite:{}\"\n\
                 [bus]\nbackend = \"rabbit\"\nurl = \"{}\"\ntopic = \"{}\"\nrpc_topic = \"{}\"\n\
                 [auth]\nadmin_token = \"{ADMIN}\"\n\
                 # The memory phase's fake hosts never heartbeat.\n[agents]\ndown_time_s = 86400\n",
                self.dir.join("l2pop.db").display(),
                self.amqp,
                self.topic,
                self.rpc_topic,
            ),
        )?;
        self.spawn(
            "server",
            Command::new(&self.exe).args(["server", "--config", &config.display().to_string()]),
        )?;
        let api = Api::new(format!("http://127.0.0.1:{port}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = api.http.get(format!("{}/healthz", api.base)).send()
                && let Ok(body) = response.json::<Value>()
                && body["role"] == "active"
            {
                return Ok(api);
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not become active within 30 s:\n{}",
                    self.log_tail("server")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `l2pop agent --netns` for `host` with the shipped defaults (heartbeat 30 s,
    /// reconcile 60 s, tap retry 2 s) on this phase's topics; returns its pid.
    pub fn start_agent(&self, host: &HostSpec) -> anyhow::Result<u32> {
        let config = self.dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[agent]\nlocal_ip = \"192.0.2.1\"\nstatus_listen = \"\"\n\
                 [bus]\nbackend = \"rabbit\"\nurl = \"{}\"\ntopic = \"{}\"\nrpc_topic = \"{}\"\n",
                self.amqp, self.topic, self.rpc_topic
            ),
        )?;
        self.spawn(
            &host.name,
            Command::new(&self.exe).args([
                "agent",
                "--config",
                &config.display().to_string(),
                "--host",
                &host.name,
                "--local-ip",
                &host.vtep.to_string(),
                "--netns",
                &host.ns,
            ]),
        )
    }

    /// `count` compute hosts on a fresh underlay, named `PREFIX-h1..`, VTEPs 192.0.2.11...
    pub fn build_hosts(&self, count: usize) -> anyhow::Result<Vec<HostSpec>> {
        topology::build_underlay(&self.prefix)?;
        let hosts: Vec<HostSpec> = (1..=count)
            .map(|n| HostSpec {
                name: format!("{}-h{n}", self.prefix),
                ns: format!("{}-h{n}", self.prefix),
                vtep: Ipv4Addr::new(192, 0, 2, 10 + n as u8),
            })
            .collect();
        for (index, host) in hosts.iter().enumerate() {
            topology::build_host(&self.prefix, host, index + 1)?;
        }
        Ok(hosts)
    }
}

/// The admin REST client.
pub struct Api {
    pub http: reqwest::blocking::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: String) -> anyhow::Result<Api> {
        Ok(Api {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            base,
        })
    }

    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        l2pop::demo::admin_call(&self.http, &self.base, ADMIN, method, path, body)
    }

    pub fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    /// A vxlan network with one subnet; its id.
    pub fn network(&self, vni: u32, cidr: &str) -> anyhow::Result<NetworkId> {
        let network = self.post(
            "/v2.0/networks",
            json!({"network": {"name": "bench", "provider:network_type": "vxlan", "provider:segmentation_id": vni}}),
        )?;
        let id = network["network"]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("network create answered without an id: {network}"))?
            .to_owned();
        self.post(
            "/v2.0/subnets",
            json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": cidr}}),
        )?;
        id.parse().map_err(|e| anyhow!("network id {id}: {e}"))
    }

    /// A port for VM `number` bound to `host`, as the demo creates one.
    pub fn port(
        &self,
        prefix: &str,
        network: NetworkId,
        host: usize,
        hosts: &[HostSpec],
        number: usize,
        vni: u32,
    ) -> anyhow::Result<VmSpec> {
        let port = self.post(
            "/v2.0/ports",
            json!({"port": {
                "network_id": network.to_string(),
                "name": format!("vm{number}"),
                "device_owner": "compute:nova",
                "binding:host_id": hosts[host].name,
            }}),
        )?;
        VmSpec::of_port(prefix, number, host, &port["port"], 16, vni)
    }

    /// Waits until every host in `hosts` has registered an agent.
    pub fn wait_agents(&self, hosts: &[&str], setup: &Setup) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let agents = self.call(reqwest::Method::GET, "/v2.0/agents", None)?;
            let registered: Vec<&str> = agents["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["host"].as_str())
                .collect();
            if hosts.iter().all(|h| registered.contains(h)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let missing: Vec<&&str> =
                    hosts.iter().filter(|h| !registered.contains(h)).collect();
                bail!(
                    "agents did not register within 60 s: {missing:?}; logs in {}",
                    setup.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watching the hosts' kernels: `ip -n NS monitor link neigh`, one line at a time, timestamped.
// ---------------------------------------------------------------------------------------------

/// One line a host's monitor printed, and when it was read.
pub struct Seen {
    pub host: usize,
    pub at: Instant,
    pub line: String,
}

pub fn start_monitors(setup: &Setup, hosts: &[HostSpec]) -> anyhow::Result<mpsc::Receiver<Seen>> {
    let (tx, rx) = mpsc::channel();
    for (index, host) in hosts.iter().enumerate() {
        let mut child = Command::new("ip")
            // The largest receive buffer the kernel grants (net.core.rmem_max): a burst of
            // entries overflows the default one and `ip monitor` loses lines.
            .args([
                "-rcvbuf", "67108864", "-n", &host.ns, "monitor", "link", "neigh",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start `ip monitor`")?;
        let stdout = child.stdout.take().context("ip monitor: no stdout")?;
        setup.adopt(&format!("monitor-{}", host.name), child);
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let seen = Seen {
                    host: index,
                    at: Instant::now(),
                    line,
                };
                if tx.send(seen).is_err() {
                    break;
                }
            }
        });
    }
    // `ip monitor` subscribes right after it starts; give all ten that moment.
    std::thread::sleep(Duration::from_millis(500));
    Ok(rx)
}

pub fn fake_host(h: u64) -> String {
    format!("fake-{h:04}")
}

pub fn fake_mac(k: u64) -> String {
    let [.., a, b, c] = k.to_be_bytes();
    format!("fa:16:3e:{a:02x}:{b:02x}:{c:02x}")
}

/// Creates `count` ports on the fake hosts and makes each active (port create, then device
/// up), 32 requests in flight.
pub async fn create_remote_ports(
    base: &str,
    network: NetworkId,
    count: u64,
    fake_hosts: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (http, next, base) = (http.clone(), next.clone(), base.to_owned());
        workers.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    return anyhow::Ok(());
                }
                let host = fake_host(k % fake_hosts);
                let body = json!({"port": {"network_id": network.to_string(), "mac_address": fake_mac(k + 1), "binding:host_id": host, "device_owner": "compute:nova", "device_id": format!("vm-{k}")}});
                let response = http
                    .post(format!("{base}/v2.0/ports"))
                    .header("X-Auth-Token", ADMIN)
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let created: Value = response.json().await?;
                if !status.is_success() {
                    bail!("POST /v2.0/ports: {status} {created}");
                }
                let id = created["port"]["id"].as_str().unwrap_or_default();
                let response = http
                    .post(format!("{base}/v2.0/l2pop/devices/{id}/up"))
                    .header("X-Auth-Token", ADMIN)
                    .json(&json!({"device": {"host": host}}))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("device up {id}: {}", response.status());
                }
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// Waits until every host's kernel holds every other VM's FDB entry and neighbour.
pub fn wait_tables(
    runtime: &tokio::runtime::Runtime,
    hosts: &[HostSpec],
    vms: &[VmSpec],
    vni: u32,
    within: Duration,
) -> anyhow::Result<()> {
    let device = l2pop_dataplane::vxlan_name(vni);
    let deadline = Instant::now() + within;
    loop {
        let mut missing = Vec::new();
        for (index, host) in hosts.iter().enumerate() {
            let observed = runtime.block_on(async {
                let kernel = l2pop_dataplane::Netlink::connect(Some(&host.ns)).await?;
                anyhow::Ok(kernel.observe().await?)
            })?;
            let fdb = observed.fdb.get(&device);
            let neighbours = observed.neighbours.get(&device);
            for vm in vms.iter().filter(|vm| vm.host != index) {
                let mac: Mac = vm.mac.parse().map_err(|e| anyhow!("{}: {e:?}", vm.mac))?;
                let vtep = IpAddr::V4(hosts[vm.host].vtep);
                let has_fdb = fdb.is_some_and(|f| f.contains(&(mac, vtep)));
                let has_neigh = neighbours.is_some_and(|n| n.get(&IpAddr::V4(vm.ip)) == Some(&mac));
                if !(has_fdb && has_neigh) {
                    missing.push(format!("{} lacks {}", host.name, vm.name));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not converged within {within:?}: {}", missing.join(", "));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces): utime is the 12th, stime 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
}

//! `l2pop demo`: the whole system on one machine. Builds three compute hosts, four VMs on two
//! networks and an external BGP VPN site in network namespaces, starts `l2pop server` (SQLite,
//! RabbitMQ) and one `l2pop agent` per host as child processes, runs traffic, and checks what
//! the kernel tables hold and what crossed the underlay.
//!
//! ```text
//!   demo ── REST ──► l2pop server ── RabbitMQ ──► l2pop agent ×3 ── netlink ──► host netns ×3
//!    │                   ▲   └── RabbitMQ ──► l2pop bgp ── BGP EVPN ──► FRR (site netns)   │
//!    │                   └──── learned routes ───┘        (veth)                          │ veth
//!    ├── ip/bridge ──► underlay switch, VM netns ×4, site netns (gateway VTEP, 2 devices)
//!    └── dumpcap/tshark on each host's underlay link ──► ARP broadcasts, misdirected floods
//! ```
//!
//! With FRR installed (and root), FRR is the site's PE/VTEP and `l2pop bgp` learns its
//! gateway and devices and exports our hosts and VMs to it ([`frr`]); otherwise (or with
//! `--no-frr`) the demo posts the site's routes through the REST API as a BGP agent would,
//! and programs the site's tables with iproute2.
//!
//! Every name starts with the run's prefix; a run first removes what a killed run with the
//! same prefix left (namespaces, processes recorded in its state folder), and removes
//! everything it made on exit or Ctrl-C unless `--keep` is given.

pub mod capture;
pub mod checks;
pub mod frr;
mod site;
pub mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use self::checks::Check;
use self::site::frr_unavailable;
use self::topology::{HostSpec, SiteSpec, VmSpec};

/// `l2pop demo` options.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Leave the topology and the processes up, and print the commands to look inside.
    #[arg(long)]
    pub keep: bool,
    /// The prefix of every namespace and the state folder (at most 8 characters).
    #[arg(long, default_value = "l2demo")]
    pub prefix: String,
    /// The RabbitMQ URL the server and the agents use.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub bus_url: String,
    /// `rabbit`: the server and one agent per host as processes over RabbitMQ; `memory`: all
    /// of them inside the demo's process on the in-memory bus (no broker needed).
    #[arg(long, default_value = "rabbit", value_parser = ["rabbit", "memory"])]
    pub bus: String,
    /// Only remove what an earlier run with this prefix left, then exit.
    #[arg(long)]
    pub clean: bool,
    /// Post the VPN site's gateway and devices through the REST API instead of running FRR
    /// as the site's PE (what the demo does anyway when FRR is not installed or not root).
    #[arg(long)]
    pub no_frr: bool,
    /// The l2pop binary to run the server and agents with (default: this executable; tests
    /// name the built binary).
    #[arg(skip)]
    pub exe: Option<PathBuf>,
}

const ADMIN_TOKEN: &str = "demo-admin";

/// The site's BGPVPN route target: the BGPVPN's, FRR's (`route-target both`) and the ones
/// our speaker imports.
const SITE_RT: &str = "64512:1001";
/// Our speaker's AS and FRR's.
const OUR_AS: u32 = 64512;
const SITE_AS: u32 = 65001;

/// Set in the demo's re-run inside an unprivileged user namespace.
const USERNS_ENV: &str = "L2POP_DEMO_USERNS";

/// Whether this process runs as root (the network-namespace suites and the demo need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Without root: runs the demo again inside a new user namespace (where this user is root)
/// with its own network and mount namespaces, on the in-memory bus (the machine's RabbitMQ is
/// not reachable from a new network namespace). Says exactly what is missing when the kernel
/// does not allow it.
fn run_in_user_namespace(options: &Options) -> anyhow::Result<bool> {
    let exe = std::env::current_exe().context("cannot find the l2pop binary")?;
    println!("demo: not root: running inside an unprivileged user namespace, on the in-memory bus");
    if options.keep {
        println!("demo: --keep is ignored there (the namespaces end with the demo's process)");
    }
    let status = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "--mount",
            "--fork",
            "--",
        ])
        .arg(&exe)
        .args(["demo", "--bus", "memory", "--prefix", &options.prefix])
        .env(USERNS_ENV, "1")
        .status();
    match status {
        Ok(status) if status.code() == Some(0) => Ok(true),
        Ok(status) if status.code() == Some(1) => Ok(false),
        Ok(status) => bail!(
            "the demo needs root, or unprivileged user namespaces: `unshare --user \
             --map-root-user --net --mount` failed ({status}); allow them (sysctl \
             kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0) or run \
             `sudo ./scripts/demo`"
        ),
        Err(error) => bail!(
            "the demo needs root, or `unshare` (util-linux) for an unprivileged user namespace: \
             {error}; run `sudo ./scripts/demo`"
        ),
    }
}

/// Inside the user namespace: a private /run for `ip netns`, and loopback up for the API.
fn prepare_user_namespace() -> anyhow::Result<()> {
    topology::check_in(None, &["mount", "-t", "tmpfs", "l2pop-demo", "/run"])
        .context("cannot mount a private /run in the user namespace")?;
    topology::check_in(None, &["ip", "link", "set", "lo", "up"])?;
    Ok(())
}

/// Runs the demo; true only when every check passed.
pub fn run(options: &Options) -> anyhow::Result<bool> {
    let inside = std::env::var_os(USERNS_ENV).is_some();
    if !is_root() && !inside && !options.clean {
        return run_in_user_namespace(options);
    }
    if inside {
        prepare_user_namespace()?;
    }
    if options.clean {
        preflight(options)?;
        let removed = clean(&options.prefix);
        println!(
            "demo: removed {removed} namespaces and processes of prefix {}",
            options.prefix
        );
        return Ok(true);
    }
    ctrlc_cleanup(options.prefix.clone());
    let mut demo = Demo::start(options)?;
    if demo.frr.is_some() {
        let step = Progress::step("waiting for the site's routes from FRR over BGP");
        let learned = demo.wait_site_learned(Duration::from_secs(60));
        step.done(if learned.is_ok() {
            "learned"
        } else {
            "not learned"
        });
        demo.checks.push(Check::from_result(
            "the site's gateway 192.0.2.100 and its 2 devices learned from FRR over BGP \
             (compute-1's FDB at the server, source bgpvpn)",
            learned,
        ));
    }
    let step = Progress::step("waiting for every host's kernel to match the server");
    let converged = demo.wait_converged(Duration::from_secs(60));
    step.done(if converged.is_ok() {
        "converged"
    } else {
        "not converged"
    });
    demo.checks.push(Check::from_result(
        "every host's kernel table equals the server's desired table",
        converged,
    ));
    if demo.frr.is_some() {
        let step = Progress::step("waiting for FRR to install our hosts and VMs at the site");
        let installed = demo.wait_site_installed(Duration::from_secs(30));
        step.done(if installed.is_ok() {
            "installed"
        } else {
            "not installed"
        });
        demo.checks.push(Check::from_result(
            "FRR's kernel at the site holds our net1 VMs behind their hosts' VTEPs, floods to \
             exactly those hosts, and answers ARP for the VMs (bridge fdb, ip neigh)",
            installed,
        ));
    }
    let step = Progress::step("running traffic with a capture on the underlay");
    demo.traffic()?;
    step.done("traffic done");
    demo.print_report()?;
    let passed = demo.checks.iter().filter(|c| c.passed).count();
    println!("demo: {passed}/{} checks passed", demo.checks.len());
    if options.keep {
        demo.print_keep_help();
    }
    let all = passed == demo.checks.len();
    if all {
        demo.discard_logs();
    }
    Ok(all)
}

/// FRR's run folder for the site of a prefix (its daemons' `-N` pathspace).
fn frr_run_dir(prefix: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/frr/{prefix}-site"))
}

/// The state folder of a prefix: pid files and configs live there.
fn state_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("l2pop-demo-{prefix}"))
}

/// What the demo needs, said exactly when missing.
fn preflight(options: &Options) -> anyhow::Result<()> {
    if options.prefix.is_empty()
        || options.prefix.len() > 8
        || !options.prefix.chars().all(|c| c.is_ascii_alphanumeric())
    {
        bail!(
            "--prefix {:?}: use 1 to 8 letters or digits",
            options.prefix
        );
    }
    if !is_root() {
        bail!(
            "the demo creates network namespaces, veth pairs, bridges and VXLAN devices: it needs \
             root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns add`). Run it as root, e.g. \
             `sudo ./scripts/demo`"
        );
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("bridge", "iproute2"),
        ("ping", "iputils-ping"),
        ("dumpcap", "tshark"),
        ("tshark", "tshark"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            bail!("`{tool}` not found: apt-get install {package} (scripts/demo installs it)");
        }
    }
    if !options.clean && options.bus == "rabbit" {
        let addr = rabbit_addr(&options.bus_url);
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
            bail!(
                "RabbitMQ does not answer at {addr} ({}): run ./scripts/services",
                options.bus_url
            );
        }
    }
    Ok(())
}

fn rabbit_addr(url: &str) -> std::net::SocketAddr {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5672")
    };
    use std::net::ToSocketAddrs as _;
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 5672)))
}

/// Removes the namespaces and processes of a prefix; how many there were.
pub fn clean(prefix: &str) -> usize {
    let pids = state_dir(prefix).join("pids");
    let mut killed = 0;
    if let Ok(text) = std::fs::read_to_string(&pids) {
        for pid in text.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            // Only our own processes: the pid may have been reused since.
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("l2pop"));
            if ours {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                killed += 1;
            }
        }
        let _ = std::fs::remove_file(&pids);
    }
    let removed = topology::cleanup(prefix);
    // The peering veth goes with the site's namespace, once FRR's processes have left it.
    let _ = topology::run_in(None, &["ip", "link", "del", &format!("{prefix}-bgp")]);
    let _ = std::fs::remove_dir_all(frr_run_dir(prefix));
    killed + removed
}

/// On Ctrl-C or SIGTERM: remove everything and exit 130.
fn ctrlc_cleanup(prefix: String) {
    on_interrupt(move || {
        eprintln!("\ndemo: interrupted, removing everything it created");
        clean(&prefix);
    });
}

/// Runs `cleanup` on a thread of its own when Ctrl-C or SIGTERM arrives, then exits 130: the
/// demo and the benches that build namespaces leave nothing behind when interrupted.
pub fn on_interrupt(cleanup: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        });
        cleanup();
        std::process::exit(130);
    });
}

/// Progress: a spinner per step on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Progress {
    fn step(message: &str) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        if bar.is_none() {
            println!("demo: {message} ...");
        }
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn done(self, message: &str) {
        let line = format!(
            "demo: {message} ({:.1} s)",
            self.started.elapsed().as_secs_f64()
        );
        match self.bar {
            Some(bar) => bar.finish_with_message(line),
            None => println!("{line}"),
        }
    }
}

/// A running demo: its specs, its processes (by role: `server`, host names), its API
/// endpoint. Dropping it stops the processes and, unless `--keep`, removes everything.
/// The network-namespace fault tests drive it too.
#[derive(Debug)]
pub struct Demo {
    options: Options,
    state: PathBuf,
    pub hosts: Vec<HostSpec>,
    pub vms: Vec<VmSpec>,
    pub site: SiteSpec,
    children: BTreeMap<String, Child>,
    api: String,
    server_port: u16,
    status_ports: Vec<u16>,
    http: reqwest::blocking::Client,
    checks: Vec<Check>,
    /// (network id, VNI) of net1 and net2.
    pub networks: Vec<(String, u32)>,
    /// The highest VM number removed (names are never reused).
    removed_vms: usize,
    /// With `--bus memory`: the runtime the server and agents run on, in this process.
    inproc: Option<InProcess>,
    /// Keep the state folder (logs, configs, captures) when dropped: until declared good.
    keep_logs: bool,
    /// The site's PE when FRR runs it (its gateway and devices then come over BGP).
    frr: Option<frr::Site>,
}

/// The server and agents as tasks of this process, on the in-memory bus.
#[derive(Debug)]
struct InProcess {
    runtime: tokio::runtime::Runtime,
    bus: l2pop_bus::memory::MemoryBus,
    shutdown: tokio_util::sync::CancellationToken,
    /// Per role, the token that stops it.
    roles: BTreeMap<String, tokio_util::sync::CancellationToken>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.options.keep {
            if let Some(site) = &mut self.frr {
                site.leave_up();
            }
            return;
        }
        self.stop_children();
        if let Some(mut site) = self.frr.take() {
            if self.keep_logs || std::thread::panicking() {
                site.keep_files();
            }
            drop(site);
        }
        clean(&self.options.prefix);
        // Logs, configs and captures stay unless the run was declared good.
        if self.keep_logs || std::thread::panicking() {
            eprintln!("demo: logs kept in {}", self.state.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

impl Demo {
    /// Checks the machine, removes what an earlier run of the prefix left, and builds the
    /// whole system: server, hosts, agents, networks and ports, the site, the VMs. Does not
    /// wait for convergence.
    pub fn start(options: &Options) -> anyhow::Result<Demo> {
        preflight(options)?;
        let removed = clean(&options.prefix);
        if removed > 0 {
            println!("demo: removed what an earlier run left ({removed} namespaces and processes)");
        }
        let state = state_dir(&options.prefix);
        std::fs::create_dir_all(&state)
            .with_context(|| format!("cannot create the state folder {}", state.display()))?;
        let mut demo = Demo::new(options, state)?;
        demo.setup()?;
        Ok(demo)
    }

    fn new(options: &Options, state: PathBuf) -> anyhow::Result<Demo> {
        let p = &options.prefix;
        let hosts = (1..=3)
            .map(|n| HostSpec {
                name: format!("compute-{n}"),
                ns: format!("{p}-h{n}"),
                vtep: Ipv4Addr::new(192, 0, 2, 10 + n as u8),
            })
            .collect();
        let site = SiteSpec {
            ns: format!("{p}-site"),
            vtep: Ipv4Addr::new(192, 0, 2, 100),
            vni: 1001,
            devices: vec![
                (
                    format!("{p}-dev1"),
                    "52:54:00:00:10:01".to_owned(),
                    Ipv4Addr::new(10, 0, 1, 201),
                ),
                (
                    format!("{p}-dev2"),
                    "52:54:00:00:10:02".to_owned(),
                    Ipv4Addr::new(10, 0, 1, 202),
                ),
            ],
            prefix_len: 24,
        };
        Ok(Demo {
            options: options.clone(),
            state,
            hosts,
            vms: Vec::new(),
            site,
            children: BTreeMap::new(),
            api: String::new(),
            server_port: 0,
            status_ports: (0..3).map(|_| free_port()).collect::<Result<_, _>>()?,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            checks: Vec::new(),
            networks: Vec::new(),
            removed_vms: 0,
            inproc: None,
            keep_logs: true,
            frr: None,
        })
    }

    fn setup(&mut self) -> anyhow::Result<()> {
        let step = Progress::step("starting l2pop server (SQLite, RabbitMQ)");
        self.server_port = free_port()?;
        let _ = std::fs::remove_file(self.state.join("l2pop.db"));
        self.start_server()?;
        step.done(&format!("server up at {}", self.api));

        let step = Progress::step("building the underlay and three compute hosts");
        topology::build_underlay(&self.options.prefix)?;
        for (index, host) in self.hosts.iter().enumerate() {
            topology::build_host(&self.options.prefix, host, index + 1)?;
        }
        step.done("underlay 192.0.2.0/24 with compute-1..3");

        let step = Progress::step("starting one l2pop agent per host");
        for index in 0..self.hosts.len() {
            self.start_agent(index)?;
        }
        self.wait_agents()?;
        step.done("3 agents registered");

        let step = Progress::step("creating networks, subnets and ports through the API");
        self.create_resources()?;
        step.done("net1 (VNI 1001) and net2 (VNI 1002), 4 ports");

        match frr_unavailable(&self.options) {
            None => {
                let step = Progress::step(
                    "external site: BGPVPN, FRR as its PE/VTEP with two devices, l2pop bgp",
                );
                self.create_site()?;
                self.start_frr_site()?;
                step.done(&format!(
                    "FRR (zebra, bgpd, AS {SITE_AS}) runs site {} with 2 devices; l2pop bgp \
                     (AS {OUR_AS}) peers with it",
                    self.site.vtep
                ));
            }
            Some(reason) => {
                println!("demo: {reason}");
                let step = Progress::step("external site: BGPVPN, gateway VTEP and two devices");
                self.create_site()?;
                self.post_site()?;
                step.done("site 192.0.2.100 with 2 devices on net1, posted through the BGPVPN API");
            }
        }

        let step = Progress::step("plugging the VMs into their hosts");
        for vm in &self.vms {
            topology::build_vm(vm, &self.hosts[vm.host])?;
        }
        step.done("4 VMs plugged; the agents wire their taps");
        Ok(())
    }

    fn record_pid(&self, pid: u32) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.join("pids"))?;
        writeln!(file, "{pid}")?;
        Ok(())
    }

    fn spawn(&mut self, role: &str, args: &[String]) -> anyhow::Result<()> {
        let exe = match &self.options.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("cannot find the l2pop binary")?,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.join(format!("{role}.log")))?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start an l2pop process")?;
        self.record_pid(child.id())?;
        self.children.insert(role.to_owned(), child);
        Ok(())
    }

    /// Starts (or restarts) the server on the demo's port and database.
    pub fn start_server(&mut self) -> anyhow::Result<()> {
        let port = self.server_port;
        let db = self.state.join("l2pop.db");
        let config = self.state.join("server.toml");
        let bus = if self.options.bus == "memory" {
            "backend = \"memory\"".to_owned()
        } else {
            format!("backend = \"rabbit\"\n{}", self.bus_lines())
        };
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\nurl = \"sqlite:{}\"\n\
                 [bus]\n{bus}\n[auth]\nadmin_token = \"{ADMIN_TOKEN}\"\n",
                db.display(),
            ),
        )?;
        if self.options.bus == "memory" {
            self.start_server_in_process(&config)?;
        } else {
            self.spawn(
                "server",
                &[
                    "server".into(),
                    "--config".into(),
                    config.display().to_string(),
                ],
            )?;
        }
        self.api = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(format!("{}/healthz", self.api)).send()
                && let Ok(body) = response.json::<Value>()
                && body["role"] == "active"
                && body["bus"] != "down"
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not become active with its bus up within 30 s; see {}",
                    self.state.join("server.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server as a task of this process; its in-memory bus is the agents' bus.
    fn start_server_in_process(&mut self, config: &std::path::Path) -> anyhow::Result<()> {
        let settings = crate::server::config::RawConfig::load(config)?.validate()?;
        let l2pop_bus::Backend::Memory(bus) = settings.bus.backend.clone() else {
            bail!("the in-process server needs the memory bus");
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the tokio runtime")?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let token = shutdown.child_token();
        runtime.block_on(crate::server::start(settings, token.clone()))?;
        let mut roles = BTreeMap::new();
        roles.insert("server".to_owned(), token);
        self.inproc = Some(InProcess {
            runtime,
            bus,
            shutdown,
            roles,
        });
        Ok(())
    }

    /// The port host `index`'s agent answers `status` on (chosen free when the demo starts,
    /// kept across agent restarts).
    fn agent_status_port(&self, index: usize) -> u16 {
        self.status_ports[index]
    }

    /// The `[bus]` lines every process of this demo shares: the broker and, on RabbitMQ,
    /// topics of the demo's own, named after its prefix, so that two demos (or a demo and a
    /// test run) on one broker never consume each other's casts and calls. The in-memory bus
    /// is the process's own: its processes keep the default topics.
    fn bus_lines(&self) -> String {
        let p = &self.options.prefix;
        if self.options.bus == "memory" {
            return format!("url = \"{}\"\n", self.options.bus_url);
        }
        format!(
            "url = \"{}\"\ntopic = \"l2pop-{p}\"\nrpc_topic = \"l2pop-{p}-rpc\"\n",
            self.options.bus_url
        )
    }

    /// Starts (or restarts) the agent of host `index`.
    pub fn start_agent(&mut self, index: usize) -> anyhow::Result<()> {
        let host = self.hosts[index].clone();
        let status_listen = format!("127.0.0.1:{}", self.agent_status_port(index));
        // One file per host: an agent reads its file while the next one is being written.
        let config = self.state.join(format!("agent-{}.toml", host.name));
        std::fs::write(
            &config,
            format!(
                "[agent]\nlocal_ip = \"192.0.2.1\"\nreport_interval_s = 5\nscan_interval_ms = 1000\n\
                 reconcile_interval_s = 10\n[bus]\n{}",
                self.bus_lines()
            ),
        )?;
        if let Some(inproc) = &mut self.inproc {
            let mut settings = crate::agent::config::RawConfig::load(&config)?
                .with_flags(&crate::agent::config::Flags {
                    config: config.clone(),
                    host: Some(host.name.clone()),
                    local_ip: Some(host.vtep.to_string()),
                    netns: Some(host.ns.clone()),
                    status_listen: Some(status_listen),
                    bus_url: None,
                })
                .validate()?;
            settings.bus = l2pop_bus::BusSettings::memory(inproc.bus.clone());
            let token = inproc.shutdown.child_token();
            inproc.roles.insert(host.name.clone(), token.clone());
            let name = host.name.clone();
            inproc.runtime.spawn(async move {
                if let Err(error) = crate::agent::run(settings, token).await {
                    eprintln!("demo: agent {name} stopped: {error:#}");
                }
            });
            return Ok(());
        }
        self.spawn(
            &host.name,
            &[
                "agent".into(),
                "--config".into(),
                config.display().to_string(),
                "--host".into(),
                host.name.clone(),
                "--local-ip".into(),
                host.vtep.to_string(),
                "--netns".into(),
                host.ns.clone(),
                "--status-listen".into(),
                status_listen,
            ],
        )
    }

    /// One admin request to the server's API.
    pub fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        admin_call(&self.http, &self.api, ADMIN_TOKEN, method, path, body)
    }

    fn wait_agents(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let agents = self.api(reqwest::Method::GET, "/v2.0/agents", None)?;
            let hosts: BTreeSet<&str> = agents["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["host"].as_str())
                .collect();
            if self.hosts.iter().all(|h| hosts.contains(h.name.as_str())) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "agents did not register within 30 s (registered: {hosts:?}); see {}",
                    self.state.display()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn create_resources(&mut self) -> anyhow::Result<()> {
        use reqwest::Method;
        let placement = [
            ("net1", 1001, 0usize),
            ("net1", 1001, 1),
            ("net2", 1002, 0),
            ("net2", 1002, 2),
        ];
        for (name, vni) in [("net1", 1001u32), ("net2", 1002)] {
            let network = self.api(
                Method::POST,
                "/v2.0/networks",
                Some(json!({"network": {
                    "name": name,
                    "provider:network_type": "vxlan",
                    "provider:segmentation_id": vni,
                }})),
            )?;
            let id = network["network"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let third = vni - 1000;
            self.api(
                Method::POST,
                "/v2.0/subnets",
                Some(json!({"subnet": {
                    "network_id": id,
                    "ip_version": 4,
                    "cidr": format!("10.0.{third}.0/24"),
                    "name": format!("{name}-subnet"),
                }})),
            )?;
            self.networks.push((id, vni));
        }
        for (index, (network, _vni, host)) in placement.iter().enumerate() {
            let network = if *network == "net1" { 0 } else { 1 };
            let vm = self.create_port(network, *host, index + 1)?;
            self.vms.push(vm);
        }
        Ok(())
    }

    /// A port for VM number `number` on network `network` bound to host `host`.
    fn create_port(&self, network: usize, host: usize, number: usize) -> anyhow::Result<VmSpec> {
        let port = self.api(
            reqwest::Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {
                "network_id": self.networks[network].0,
                "name": format!("vm{number}"),
                "device_owner": "compute:nova",
                "binding:host_id": self.hosts[host].name,
            }})),
        )?;
        VmSpec::of_port(
            &self.options.prefix,
            number,
            host,
            &port["port"],
            24,
            self.networks[network].1,
        )
    }

    /// The site's BGPVPN as networking-bgpvpn and neutron-dynamic-routing would set it up:
    /// on net1, with FRR's route target, served by BGP agent bgp-1's speaker.
    fn create_site(&mut self) -> anyhow::Result<()> {
        use reqwest::Method;
        let net1 = self.networks[0].0.clone();
        let vpn = self.api(
            Method::POST,
            "/v2.0/bgpvpn/bgpvpns",
            Some(json!({"bgpvpn": {"name": "site", "type": "l2", "route_targets": [SITE_RT], "vni": 1001}})),
        )?;
        let vpn_id = vpn["bgpvpn"]["id"].as_str().unwrap_or_default().to_owned();
        self.api(
            Method::POST,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn_id}/network_associations"),
            Some(json!({"network_association": {"network_id": net1}})),
        )?;
        let agent = self.api(
            Method::PUT,
            "/v2.0/l2pop/bgp-agents/bgp-1",
            Some(json!({"bgp_agent": {"start_flag": true}})),
        )?;
        let agent_id = agent["agent"]["id"].as_str().unwrap_or_default().to_owned();
        let speaker = self.api(
            Method::POST,
            "/v2.0/bgp-speakers",
            Some(json!({"bgp_speaker": {"name": "speaker-1", "local_as": OUR_AS}})),
        )?;
        let speaker_id = speaker["bgp_speaker"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.api(
            Method::POST,
            &format!("/v2.0/agents/{agent_id}/bgp-drinstances"),
            Some(json!({"bgp_speaker_id": speaker_id})),
        )?;
        self.api(
            Method::PUT,
            &format!("/v2.0/bgp-speakers/{speaker_id}/add_bgp_vpn"),
            Some(json!({"bgpvpn_id": vpn_id})),
        )?;
        Ok(())
    }

    /// Without FRR: the site's routes as a BGP agent reports them, posted, and the site's
    /// tables programmed with iproute2 the way EVPN would.
    fn post_site(&mut self) -> anyhow::Result<()> {
        use reqwest::Method;
        let vtep = self.site.vtep.to_string();
        self.api(
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/gateways",
            Some(json!({"gateways": [{"vtep": vtep, "route_targets": [SITE_RT], "vni": 1001}]})),
        )?;
        let devices: Vec<Value> = self
            .site
            .devices
            .iter()
            .map(|(_, mac, ip)| json!({"mac": mac, "ip": ip.to_string(), "vtep": vtep, "route_targets": [SITE_RT], "vni": 1001}))
            .collect();
        self.api(
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/devices",
            Some(json!({"devices": devices})),
        )?;
        topology::build_site(&self.options.prefix, &self.site)?;
        let net1_vms: Vec<(&VmSpec, Ipv4Addr)> = self
            .vms
            .iter()
            .filter(|vm| vm.vni == 1001)
            .map(|vm| (vm, self.hosts[vm.host].vtep))
            .collect();
        let vteps: BTreeSet<Ipv4Addr> = net1_vms.iter().map(|(_, v)| *v).collect();
        topology::program_site(
            &self.site,
            &vteps.into_iter().collect::<Vec<_>>(),
            &net1_vms,
        )?;
        Ok(())
    }

    /// Polls until every port is ACTIVE and every host's kernel holds exactly its desired table.
    pub fn wait_converged(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let mut problems = Vec::new();
            // Every VM's port must be up (its agent reported it) before the tables can be final.
            let ports = self.api(reqwest::Method::GET, "/v2.0/ports", None)?;
            for port in ports["ports"].as_array().into_iter().flatten() {
                if port["status"] != "ACTIVE" {
                    problems.push(format!("port {} is {}", port["name"], port["status"]));
                }
            }
            for host in &self.hosts {
                let desired = self.api(
                    reqwest::Method::GET,
                    &format!("/v2.0/l2pop/hosts/{}/fdb", host.name),
                    None,
                )?;
                let expected = checks::expected_kernel(&desired, host.vtep);
                let actual = checks::kernel_table(&host.ns, &expected.vnis())?;
                if let Some(diff) = expected.diff(&actual) {
                    problems.push(format!("{}: {diff}", host.name));
                }
                // Each VM's tap must be wired too: the expectation must cover its network.
                for vm in self
                    .vms
                    .iter()
                    .filter(|vm| self.hosts[vm.host].name == host.name)
                {
                    let vni = vm.vni;
                    if !expected.vnis().contains(&vni) {
                        problems.push(format!("{}: no table for VNI {vni} yet", host.name));
                    }
                }
            }
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{}", problems.join("; "));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn traffic(&mut self) -> anyhow::Result<()> {
        let namespaces: Vec<String> = self.hosts.iter().map(|h| h.ns.clone()).collect();
        let capture = capture::Capture::start(&namespaces, &self.state)?;
        let vm = |n: usize| self.vms[n - 1].clone();
        let pings = [
            (vm(1), vm(2).ip, "vm1 (compute-1) → vm2 (compute-2) on net1"),
            (vm(2), vm(1).ip, "vm2 (compute-2) → vm1 (compute-1) on net1"),
            (vm(3), vm(4).ip, "vm3 (compute-1) → vm4 (compute-3) on net2"),
            (
                vm(1),
                self.site.devices[0].2,
                "vm1 → site device 10.0.1.201 (BGPVPN)",
            ),
            (
                vm(2),
                self.site.devices[1].2,
                "vm2 → site device 10.0.1.202 (BGPVPN)",
            ),
        ];
        let mut pings: Vec<(String, Ipv4Addr, &str)> = pings
            .into_iter()
            .map(|(from, to, what)| (from.ns, to, what))
            .collect();
        pings.push((
            self.site.devices[1].0.clone(),
            vm(2).ip,
            "site device 10.0.1.202 → vm2 (compute-2)",
        ));
        for (from, to, what) in pings {
            let ok = topology::ping(&from, to);
            self.checks
                .push(Check::new(&format!("ping {what}"), ok, String::new()));
        }
        let captured = capture.stop()?;
        let mut arp = 0;
        let mut frames_total = 0;
        for (ns, frames) in &captured {
            frames_total += frames.len();
            if let Some(host) = self.hosts.iter().find(|h| &h.ns == ns) {
                arp += capture::arp_broadcasts_from(frames, host.vtep);
            }
        }
        // A capture that saw nothing proves nothing: the pings must be on the wire.
        self.checks.push(Check::new(
            "zero ARP broadcasts from the compute hosts on the underlay",
            arp == 0 && frames_total > 0,
            format!("{arp} ARP broadcasts in {frames_total} VXLAN frames captured"),
        ));
        let mut misdirected = Vec::new();
        for (ns, frames) in &captured {
            let Some((index, host)) = self.hosts.iter().enumerate().find(|(_, h)| &h.ns == ns)
            else {
                continue;
            };
            let vnis: BTreeSet<u32> = self
                .vms
                .iter()
                .filter(|vm| vm.host == index)
                .map(|vm| vm.vni)
                .collect();
            let count = capture::frames_to_outsider(frames, host.vtep, &vnis);
            if count > 0 {
                misdirected.push(format!("{} got {count}", host.name));
            }
        }
        self.checks.push(Check::new(
            "no frame reaches a host on a network it has no port on",
            misdirected.is_empty(),
            misdirected.join(", "),
        ));
        Ok(())
    }

    fn print_report(&self) -> anyhow::Result<()> {
        println!();
        for host in &self.hosts {
            let desired = self.api(
                reqwest::Method::GET,
                &format!("/v2.0/l2pop/hosts/{}/fdb", host.name),
                None,
            )?;
            let expected = checks::expected_kernel(&desired, host.vtep);
            let actual = checks::kernel_table(&host.ns, &expected.vnis())?;
            println!("{} (VTEP {}) kernel table:", host.name, host.vtep);
            print!("{}", checks::render_table(&desired, host.vtep, &actual));
        }
        self.print_site_table();
        println!();
        for check in &self.checks {
            println!("{check}");
        }
        Ok(())
    }

    /// A new VM on network `network` (0: net1, 1: net2) at host `host`: a port bound there
    /// through the API, then its namespace and tap.
    pub fn add_vm(&mut self, network: usize, host: usize) -> anyhow::Result<VmSpec> {
        let number = self
            .vms
            .iter()
            .filter_map(|vm| vm.name.trim_start_matches("vm").parse::<usize>().ok())
            .max()
            .unwrap_or(0)
            .max(self.removed_vms)
            + 1;
        let vm = self.create_port(network, host, number)?;
        topology::build_vm(&vm, &self.hosts[host])?;
        self.vms.push(vm.clone());
        Ok(vm)
    }

    /// Deletes a VM: its port through the API and its namespace (the tap goes with it).
    pub fn remove_vm(&mut self, name: &str) -> anyhow::Result<()> {
        let Some(at) = self.vms.iter().position(|vm| vm.name == name) else {
            bail!("no VM {name}");
        };
        let vm = self.vms.remove(at);
        self.removed_vms = self
            .removed_vms
            .max(vm.name.trim_start_matches("vm").parse().unwrap_or(0));
        self.api(
            reqwest::Method::DELETE,
            &format!("/v2.0/ports/{}", vm.port_id),
            None,
        )?;
        topology::check_in(None, &["ip", "netns", "del", &vm.ns])?;
        Ok(())
    }

    /// Runs a command in host `index`'s namespace.
    pub fn host_run(&self, index: usize, args: &[&str]) -> anyhow::Result<String> {
        topology::check_in(Some(&self.hosts[index].ns), args)
    }

    /// The status of host `index`'s agent (`GET /status`).
    pub fn agent_status(&self, index: usize) -> anyhow::Result<Value> {
        let url = format!("http://127.0.0.1:{}/status", self.agent_status_port(index));
        Ok(self.http.get(url).send()?.json()?)
    }

    /// kill -9 of one process (`server` or a host name).
    pub fn kill(&mut self, role: &str) {
        if let Some(token) = self.inproc.as_mut().and_then(|i| i.roles.remove(role)) {
            token.cancel();
        }
        if let Some(mut child) = self.children.remove(role) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's API endpoint and admin token.
    pub fn endpoint(&self) -> (&str, &str) {
        (&self.api, ADMIN_TOKEN)
    }

    /// Where host `index`'s agent answers `l2pop agent status`.
    pub fn agent_endpoint(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.agent_status_port(index))
    }

    /// Declares the run good: the state folder (logs, configs, captures) goes with the demo.
    pub fn discard_logs(&mut self) {
        self.keep_logs = false;
    }

    /// The demo's state folder (logs, configs, captures).
    pub fn state(&self) -> &std::path::Path {
        &self.state
    }

    fn stop_children(&mut self) {
        if let Some(inproc) = self.inproc.take() {
            inproc.shutdown.cancel();
            inproc.runtime.shutdown_timeout(Duration::from_secs(5));
        }
        for child in self.children.values() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in self.children.values_mut() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        let _ = std::fs::remove_file(self.state.join("pids"));
    }

    fn print_keep_help(&self) {
        let p = &self.options.prefix;
        println!("\ndemo: left up (--keep). Look inside with:");
        println!("  ip netns list | grep {p}-");
        println!("  ip netns exec {p}-h1 bridge fdb show dev vxlan-1001");
        println!("  ip netns exec {p}-h1 ip neigh show dev vxlan-1001");
        println!(
            "  ip netns exec {p}-vm1 ping {}",
            self.vms
                .get(1)
                .map(|v| v.ip.to_string())
                .unwrap_or_default()
        );
        println!(
            "  L2POP_URL={} L2POP_TOKEN={ADMIN_TOKEN} l2pop fdb show --host compute-1",
            self.api
        );
        println!(
            "  l2pop agent status --agent http://127.0.0.1:{}",
            self.agent_status_port(0)
        );
        if let Some(site) = &self.frr {
            let ns = site.ns();
            println!(
                "FRR, the site's PE (its files in {}):",
                self.state.join("frr").display()
            );
            for command in [
                "show bgp l2vpn evpn summary",
                "show bgp l2vpn evpn",
                "show evpn vni",
                "show evpn mac vni all",
            ] {
                println!("  ip netns exec {ns} {}", site.vtysh_command(command));
            }
            println!("  ip netns exec {ns} bridge fdb show dev vxlan0");
            println!("  ip netns exec {ns} ip neigh show dev br0");
        }
        println!("  logs: {}", self.state.display());
        println!("and remove everything with: l2pop demo --clean --prefix {p}");
    }
}

/// One request to the API at `base` with `token`: the JSON answer (Null when empty), or an
/// error naming the request and carrying the API's answer. Shared by the demo and the
/// benches that drive a server.
pub fn admin_call(
    http: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http
        .request(method.clone(), format!("{base}{path}"))
        .header("X-Auth-Token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().with_context(|| format!("{method} {path}"))?;
    let status = response.status();
    let text = response.text()?;
    if !status.is_success() {
        bail!("{method} {path}: {status}: {text}");
    }
    Ok(if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Used by tests: the state folder of a prefix.
pub fn state_folder(prefix: &str) -> PathBuf {
    state_dir(prefix)
}

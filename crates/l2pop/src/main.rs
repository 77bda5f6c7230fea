//! `l2pop`: one binary for every role: `server`, the client verbs (`network`, `subnet`,
//! `port`, `bgpvpn`, `agent`, `fdb`), `replay`, the agent, the BGP speaker (`bgp`) and the
//! demo.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "l2pop",
    version,
    about = "Neutron-compatible layer-2 population for VXLAN overlays"
)]
struct Cli {
    #[command(flatten)]
    client: l2pop::client::ClientOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the events of a JSON-lines file to a fresh engine and print one JSON line per
    /// notification (vocabulary: scenarios/README.md). Exit code 2 on the first bad line.
    Replay {
        /// The events file (`-` for standard input).
        events: PathBuf,
        /// Report a refused event on stderr (line, field, reason) and go on with the next, as
        /// the server answers 409 and goes on; the exit code is still 2 if any was refused.
        #[arg(long)]
        keep_going: bool,
    },
    /// Run the server: REST API, durable store, bus (config: etc/server.toml).
    Server {
        /// The TOML configuration file.
        #[arg(long, default_value = "etc/server.toml")]
        config: PathBuf,
        /// Overrides server.listen.
        #[arg(long)]
        listen: Option<String>,
        /// Overrides store.url.
        #[arg(long)]
        store_url: Option<String>,
        /// Create a new, empty store even where an empty database file exists (store.init).
        /// Without it only a path with no file at all gets a new store.
        #[arg(long)]
        init: bool,
    },
    /// Run the BGP speaker: EVPN sessions with the VPN site's PEs, learned gateways and
    /// devices reported to the server (config: etc/bgp.toml).
    Bgp {
        /// The TOML configuration file.
        #[arg(long, default_value = "etc/bgp.toml")]
        config: PathBuf,
    },
    /// The whole system on this machine: server, agents and VMs in network namespaces,
    /// traffic, checks (needs root and RabbitMQ; ./scripts/demo sets both up).
    Demo(l2pop::demo::Options),
    #[command(flatten)]
    Client(l2pop::client::Resource),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { events, keep_going } => l2pop::replay::run(&events, keep_going),
        Command::Server {
            config,
            listen,
            store_url,
            init,
        } => report(server(config, listen, store_url, init)),
        Command::Bgp { config } => report(bgp(config)),
        Command::Demo(options) => match l2pop::demo::run(&options) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("l2pop demo: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Client(l2pop::client::Resource::Agent(l2pop::client::args::AgentArgs {
            verb: None,
            run,
        })) => report(agent(run)),
        Command::Client(resource) => l2pop::client::run(&cli.client, resource),
    }
}

/// Prints an error chain and maps it to exit code 1.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("l2pop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn server(
    config: PathBuf,
    listen: Option<String>,
    store_url: Option<String>,
    init: bool,
) -> anyhow::Result<()> {
    use l2pop::server::config::RawConfig;
    init_tracing();
    let mut raw = RawConfig::load(&config)?.with_env(|key| std::env::var(key).ok());
    if listen.is_some() {
        raw.server.listen = listen;
    }
    if store_url.is_some() {
        raw.store.url = store_url;
    }
    if init {
        raw.store.init = Some(true);
    }
    let settings = raw.validate()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        // The server logs "listening" itself, once its store is open and its role decided.
        let running = l2pop::server::start(settings, shutdown.clone()).await?;
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        running.task.await.context("server task panicked")?
    })
}

fn agent(flags: l2pop::agent::config::Flags) -> anyhow::Result<()> {
    use l2pop::agent::config::RawConfig;
    init_tracing();
    let settings = RawConfig::load(&flags.config)?
        .with_env(|key| std::env::var(key).ok())
        .with_flags(&flags)
        .validate()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
        });
        l2pop::agent::run(settings, shutdown).await
    })
}

fn bgp(config: PathBuf) -> anyhow::Result<()> {
    use l2pop::bgp::config::RawConfig;
    init_tracing();
    let settings = RawConfig::load(&config)?
        .with_env(|key| std::env::var(key).ok())
        .validate()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
        });
        l2pop::bgp::run(settings, shutdown).await
    })
}

/// SIGTERM or Ctrl-C.
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

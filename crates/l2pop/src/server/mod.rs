//! `l2pop server`: the engine (with the BGPVPN extension) behind a REST API, durable in a
//! command log, publishing to agents over the bus.
//!
//! ```text
//!   HTTP (axum handlers) ──┐                         ┌──► store: append(batch) ─ commit
//!                          │ Job (plan closure)       │
//!   bus RPC (agents) ──────┼──────────────► owner task ─ ServerState::execute (pure, sync)
//!                          │                 (one)    │
//!   heartbeats ────────────┘                          └──► publisher (ordered) ──► RabbitMQ
//!                                                                │ confirmed seq
//!                                             watermark task ◄───┘ ──► store.set_published
//! ```
//!
//! Start-up: open the store, serve HTTP (answering 503 while standing by), wait for the
//! leadership, replay the log into a fresh state, republish every notification the broker had
//! not confirmed (same `_unique_id`, so oslo receivers drop duplicates), then take jobs.
//! Shutdown (SIGTERM/Ctrl-C or losing the leadership): stop taking requests, finish the round
//! in flight, flush the publisher, record the watermark.

pub mod api;
pub mod auth;
pub mod command;
pub mod config;
pub mod error;
pub mod openapi;
pub mod owner;
pub mod requests;
pub mod rpc;
pub mod state;
pub mod transport;
pub mod views;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use l2pop_model::{Notification, Target};
use l2pop_store::{Leadership, LogRecord, Store, redact_url};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::config::Settings;
use self::owner::{Job, OwnerHandle, SystemFresh};
use self::state::ServerState;

/// The store stream name of the notification watermark.
pub const NOTIFICATION_STREAM: &str = "notifications";

/// The process-wide Prometheus recorder (installed once; several in-process servers in tests
/// share it).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// A server running in this process (tests, the demo).
#[derive(Debug)]
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Binds the API and runs the server until `shutdown` is cancelled.
pub async fn start(
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("server.listen: cannot bind {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(run(settings, listener, shutdown.clone()));
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

/// The whole server on an already bound listener.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::open(&settings.store_url)
        .await
        .with_context(|| format!("store.url: cannot open {}", redact_url(&settings.store_url)))?;
    let (owner_tx, owner_rx) = watch::channel::<Option<OwnerHandle>>(None);
    let app = api::App {
        owner: owner_rx,
        tokens: Arc::new(auth::Tokens::new(&settings.admin_token, &settings.projects)),
        tenant: Arc::new(settings.tenant_networks.clone()),
        metrics: metrics_handle(),
    };
    let http_stop = CancellationToken::new();
    let http = {
        let stop = http_stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, api::router(app))
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };
    let result = lead(&settings, &store, &owner_tx, &shutdown).await;
    owner_tx.send_replace(None);
    http_stop.cancel();
    let _ = http.await;
    store.close().await;
    result
}

/// Waits for the leadership, then serves as the active server until shutdown or deposition.
async fn lead(
    settings: &Settings,
    store: &Store,
    owner_tx: &watch::Sender<Option<OwnerHandle>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(store = %redact_url(&settings.store_url), "standing by for the leadership");
    let leadership = tokio::select! {
        leadership = store.acquire_leadership_as(&settings.name, settings.leader_poll) => {
            leadership.context("store: cannot acquire the leadership")?
        }
        () = shutdown.cancelled() => return Ok(()),
    };
    let started = Instant::now();
    tracing::info!(
        epoch = leadership.epoch(),
        "leading: replaying the command log"
    );
    let published = store.published(NOTIFICATION_STREAM).await?;
    let mut state = ServerState::new();
    let mut pending = Vec::new();
    let mut reader = store.read_log(0);
    while let Some(chunk) = reader.next_chunk().await? {
        for record in chunk {
            let command: command::Command = serde_json::from_str(&record.command)
                .with_context(|| format!("command log record {} does not parse", record.seq))?;
            let notifications = state.execute(&command).map_err(|e| {
                anyhow::anyhow!(
                    "command log record {} was refused on replay: {e}",
                    record.seq
                )
            })?;
            if state.executed() != record.seq {
                anyhow::bail!(
                    "command log record {} replayed as command {}",
                    record.seq,
                    state.executed()
                );
            }
            pending.extend(notifications.into_iter().filter(|n| n.seq > published));
        }
    }
    tracing::info!(
        commands = state.executed(),
        republish = pending.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "state rebuilt"
    );
    metrics::gauge!("l2pop_commands_replayed").set(state.executed() as f64);

    let confirmed_from = published.min(state.engine().seq());
    let bus = transport::Bus::start(
        &settings.bus,
        &settings.name,
        store.cluster_id(),
        confirmed_from,
    )
    .await
    .context("bus: cannot start")?;
    for notification in pending {
        bus.publish(notification);
    }
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(owner::MAX_BATCH * 4);
    let handle = OwnerHandle::new(jobs_tx);
    let rpc = tokio::spawn(rpc::serve(bus.take_requests(), handle.clone()));
    owner_tx.send_replace(Some(handle));
    tracing::info!("active: taking requests");

    let outcome = own(
        state,
        jobs_rx,
        store,
        &leadership,
        &bus,
        settings.agent_down_time,
        shutdown,
    )
    .await;
    owner_tx.send_replace(None);
    rpc.abort();
    let confirmed = bus.confirmed();
    bus.shutdown(Duration::from_secs(5)).await;
    let confirmed = *confirmed.borrow();
    if let Err(error) = store
        .set_published(&leadership, NOTIFICATION_STREAM, confirmed)
        .await
    {
        tracing::warn!(%error, "could not record the publish watermark at shutdown");
    }
    outcome
}

/// The owner loop: one round per wake-up (see `owner`).
async fn own(
    mut state: ServerState,
    mut jobs: mpsc::Receiver<Job>,
    store: &Store,
    leadership: &Leadership,
    bus: &transport::Bus,
    down_time: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut fresh = SystemFresh;
    let mut liveness = owner::Liveness::new(down_time);
    let mut watermark = Watermark::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return Ok(()),
            },
            () = shutdown.cancelled() => return Ok(()),
            () = leadership.lost() => anyhow::bail!("lost the leadership: another server took over"),
            _ = tick.tick() => {
                let confirmed = *bus.confirmed().borrow();
                watermark.record(store, leadership, confirmed).await;
                metrics::gauge!("l2pop_agents_alive").set(liveness.alive(&state) as f64);
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < owner::MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let round = owner::run_round(&mut state, batch, &mut fresh);
        for host in &round.heartbeats {
            liveness.seen(host);
        }
        if !round.records.is_empty() {
            let records: Vec<LogRecord> = round
                .records
                .iter()
                .map(|(seq, command)| LogRecord {
                    seq: *seq,
                    command: command.clone(),
                })
                .collect();
            let committed = Instant::now();
            if let Err(error) = store.append(leadership, &records).await {
                for (reply, _) in round.replies {
                    let _ = reply.send(Err(error::ApiError::unavailable(format!(
                        "the change was not committed: {error}"
                    ))));
                }
                return Err(anyhow::Error::new(error)
                    .context("store: commit failed; the state is ahead of the log, stopping"));
            }
            metrics::histogram!("l2pop_commit_seconds").record(committed.elapsed().as_secs_f64());
            metrics::histogram!("l2pop_commit_batch_commands").record(records.len() as f64);
            metrics::counter!("l2pop_events_applied_total").increment(records.len() as u64);
        }
        for (reply, answer) in round.replies {
            let _ = reply.send(answer);
        }
        for notification in round.notifications {
            count_notification(&notification);
            bus.publish(notification);
        }
        for report in state.take_reports() {
            tracing::warn!(?report, "extension report");
            metrics::counter!("l2pop_extension_errors_total").increment(1);
        }
        for (caller, read, reply) in round.reads {
            let _ = reply.send(read(&state, &caller));
        }
    }
}

fn count_notification(notification: &Notification) {
    let target = match notification.target {
        Target::Fanout => "fanout",
        Target::Host(_) => "host",
    };
    metrics::counter!(
        "l2pop_notifications_total",
        "method" => notification.method.as_str(),
        "target" => target
    )
    .increment(1);
}

/// The broker-confirmed notification seq, recorded in the store at most twice a second: a
/// restart republishes from it (duplicates carry the same `_unique_id`).
#[derive(Debug, Default)]
struct Watermark {
    recorded: u64,
}

impl Watermark {
    async fn record(&mut self, store: &Store, leadership: &Leadership, confirmed: u64) {
        if confirmed <= self.recorded {
            return;
        }
        match store
            .set_published(leadership, NOTIFICATION_STREAM, confirmed)
            .await
        {
            Ok(()) => self.recorded = confirmed,
            Err(error) => tracing::warn!(%error, "could not record the publish watermark"),
        }
    }
}

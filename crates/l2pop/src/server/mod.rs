//! `l2pop server`: the engine (with the BGPVPN extension) behind a REST API, durable in a
//! command log, publishing to agents over the bus.
//!
//! ```text
//!   HTTP (axum handlers) ──┐ Job::Write(Request)      ┌──► store: append(batch) ─ commit
//!     parse body, path ids │ Job::Query(Query)        │
//!   bus RPC (agents) ──────┴──────────────► owner task ─ NeutronState::handle (pure, sync)
//!     parse args             (typed)         (one)    │
//!                                                     ├──► catalog (watch, O(1) clone) ──┐
//!   listings, shows, device details ◄─────────────────│──────────────────────────────────┘
//!     (read the catalog on their own task)            └──► outbox (bounded; the oldest
//!                                                          │      regenerated from the log)
//!                                                          ▼
//!                                                       forwarder ─► publisher ──► RabbitMQ
//!                                                                │ confirmed seq
//!                                          owner, every 0.5 s ◄──┘ ──► store.set_published
//! ```
//!
//! Start-up: open the store, serve HTTP (answering 503 while standing by), wait for the
//! leadership, replay the log into a fresh state, republish every notification the broker had
//! not confirmed (same `_unique_id`, so oslo receivers drop duplicates), then take jobs.
//! Shutdown (SIGTERM/Ctrl-C or losing the leadership): stop taking requests, finish the round
//! in flight, flush the publisher, record the watermark.

pub mod api;
pub mod config;
pub mod error;
pub mod health;
mod links;
pub mod listener;
pub mod openapi;
pub mod outbox;
pub mod owner;
pub mod prometheus;
pub mod rpc;
pub mod snapshots;
pub mod transport;

pub use self::prometheus::metrics_handle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use l2pop_model::{Notification, Target};
use l2pop_store::{Leadership, LogRecord, Store, redact_url};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::config::Settings;
use self::health::Health;
use l2pop_neutron::{Catalog, NeutronState, TenantNetworks};

use self::owner::{Job, OwnerHandle, SystemFresh};

/// The store stream name of the notification watermark.
pub const NOTIFICATION_STREAM: &str = "notifications";

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
    let addr = listener.local_addr()?;
    let init = if settings.store_init {
        l2pop_store::Init::Explicit
    } else {
        l2pop_store::Init::IfAbsent
    };
    let store = Store::open_with(&settings.store_url, init)
        .await
        .with_context(|| {
            format!(
                "store.url: cannot open {} (set store.url or L2POP_STORE_URL to use another store)",
                redact_url(&settings.store_url)
            )
        })?;
    let (owner_tx, owner_rx) = watch::channel::<Option<OwnerHandle>>(None);
    let health = Health::default();
    let app = api::App {
        owner: owner_rx,
        tokens: Arc::new(l2pop_neutron::Tokens::new(
            &settings.admin_token,
            &settings.projects,
        )),
        metrics: metrics_handle(),
        health: health.clone(),
    };
    let http_stop = CancellationToken::new();
    let http = {
        let (stop, limits) = (http_stop.clone(), settings.http);
        health.spawn_watched("HTTP API", async move {
            listener::serve(listener, api::router(app), limits, stop).await
        })
    };
    let result = lead(&settings, addr, &store, &owner_tx, &health, &shutdown).await;
    health.stopping();
    owner_tx.send_replace(None);
    http_stop.cancel();
    http.join().await;
    store.close().await;
    result
}

/// Waits for the leadership, then serves as the active server until shutdown or deposition.
///
/// "listening" is logged once the role is known: as a standby when the first attempt at the
/// leadership (one poll interval) did not win it, else as the active server once it takes
/// requests.
async fn lead(
    settings: &Settings,
    addr: std::net::SocketAddr,
    store: &Store,
    owner_tx: &watch::Sender<Option<OwnerHandle>>,
    health: &Health,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(store = %redact_url(&settings.store_url), "standing by for the leadership");
    let acquire = store.acquire_leadership_as(&settings.name, settings.leader_poll);
    tokio::pin!(acquire);
    let first_poll = tokio::time::sleep(settings.leader_poll);
    tokio::pin!(first_poll);
    let mut announced = false;
    // While it waits, the standby follows the log (from the newest snapshot), so that taking
    // over replays only what the active server wrote since its last poll.
    let mut replay = Some(
        outbox::LogReplay::open(store)
            .await
            .context("store: cannot read the snapshot and the log")?,
    );
    let mut follow = tokio::time::interval(settings.leader_poll);
    follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let leadership = loop {
        tokio::select! {
            leadership = &mut acquire => {
                break leadership.context("store: cannot acquire the leadership")?;
            }
            _ = follow.tick() => {
                if let Some(following) = replay.as_mut()
                    && let Err(error) = following.catch_up().await
                {
                    // Read afresh at the takeover.
                    tracing::warn!(error = %format!("{error:#}"), "standby: cannot follow the log");
                    replay = None;
                }
            }
            () = &mut first_poll, if !announced => {
                announced = true;
                tracing::info!(%addr, role = "standby", "l2pop server listening");
            }
            () = shutdown.cancelled() => return Ok(()),
            failure = health.failed() => anyhow::bail!(failure),
        }
    };
    let started = Instant::now();
    tracing::info!(
        epoch = leadership.epoch(),
        "leading: replaying the command log"
    );
    let published = store.published(NOTIFICATION_STREAM).await?;
    // Everything above the watermark goes back to the bus; beyond `max_backlog` the oldest are
    // regenerated from the log again once the broker takes them (see `outbox`).
    let mut backlog = outbox::Backlog::new(settings.max_backlog);
    let mut replay = match replay {
        Some(replay) => replay,
        None => outbox::LogReplay::open(store).await?,
    };
    let followed = replay.state().executed();
    let leadership = Arc::new(leadership);
    // What the standby replayed above the watermark was not kept: it is regenerated too.
    let tailed = replay.state().engine().seq();
    if tailed > published {
        backlog.regenerate(published + 1..=tailed);
    }
    while let Some(notification) = replay.next().await? {
        if notification.seq > published {
            backlog.push(notification);
        }
    }
    let snapshot = replay.snapshot();
    let mut state = replay.into_state();
    state.set_max_fixed_ips_per_port(settings.max_fixed_ips_per_port);
    state.set_agent_down_time(settings.agent_down_time.as_secs());
    state.grace(owner::now());
    tracing::info!(
        commands = state.executed(),
        followed_as_standby = followed,
        republish = backlog.held() as u64 + backlog.dropped_total(),
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
        backlog,
        store.clone(),
        health,
    )
    .await
    .context("bus: cannot start")?;
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(owner::MAX_BATCH * 4);
    let (catalog_tx, catalog_rx) = watch::channel(Arc::new(state.catalog().clone()));
    let handle = OwnerHandle::new(jobs_tx, catalog_rx);
    let rpc = {
        let (requests, handle) = (bus.take_requests(), handle.clone());
        let stream_id = store.cluster_id();
        health.spawn_watched("bus RPC service", async move {
            rpc::serve(requests, handle, stream_id).await;
            Ok::<(), std::convert::Infallible>(())
        })
    };
    owner_tx.send_replace(Some(handle));
    tracing::info!("active: taking requests");
    if !announced {
        tracing::info!(%addr, role = "active", "l2pop server listening");
    }

    let outcome = own(
        Owned {
            state,
            tenant: settings.tenant_networks.clone(),
            catalog: catalog_tx,
            snapshots: snapshots::Snapshots::new(settings.snapshot_every, snapshot),
        },
        jobs_rx,
        store,
        &leadership,
        &bus,
        Stops { shutdown, health },
    )
    .await;
    health.stopping();
    owner_tx.send_replace(None);
    rpc.abort();
    health.set_bus(None);
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

/// What ends the owner loop besides its job channel closing: a shutdown request, or a watched
/// task's failure.
struct Stops<'a> {
    shutdown: &'a CancellationToken,
    health: &'a Health,
}

/// What the owner loop owns: the state, the planning settings, and where it publishes the
/// catalog.
struct Owned {
    state: NeutronState,
    tenant: TenantNetworks,
    catalog: watch::Sender<Arc<Catalog>>,
    snapshots: snapshots::Snapshots,
}

/// The owner loop: one round per wake-up (see `owner`).
async fn own(
    owned: Owned,
    mut jobs: mpsc::Receiver<Job>,
    store: &Store,
    leadership: &Arc<Leadership>,
    bus: &transport::Bus,
    stops: Stops<'_>,
) -> anyhow::Result<()> {
    let Stops { shutdown, health } = stops;
    let Owned {
        mut state,
        tenant,
        catalog,
        mut snapshots,
    } = owned;
    let mut fresh = SystemFresh;
    let mut watermark = Watermark::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let mut batch = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => vec![job],
                None => return Ok(()),
            },
            () = shutdown.cancelled() => return Ok(()),
            () = leadership.lost() => anyhow::bail!("lost the leadership: another server took over"),
            failure = health.failed() => anyhow::bail!(failure),
            _ = tick.tick() => {
                let confirmed = *bus.confirmed().borrow();
                watermark.record(store, leadership, confirmed).await;
                snapshots.tick(&state, watermark.recorded, store, leadership);
                let now = owner::now();
                let alive = state.catalog().agents_alive(now);
                metrics::gauge!("l2pop_agents_alive").set(alive as f64);
                let silent = owner::silent_bgp_agents(&state, now);
                if silent.is_empty() {
                    continue;
                }
                silent
            }
        };
        while batch.len() < owner::MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let round = owner::run_round(&mut state, batch, &tenant, &mut fresh);
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
                    let _ = reply.send(Err(l2pop_neutron::NeutronError::unavailable(format!(
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
        // Readers see the round once it is durable, before anyone is told it is done.
        catalog.send_replace(Arc::new(state.catalog().clone()));
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
        for (caller, query, reply) in round.queries {
            let _ = reply.send(state.query(&caller, query));
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

//! `l2pop agent`: one per host. Follows the server's l2pop casts (or a real Neutron server's),
//! keeps the desired forwarding table, and makes the Linux kernel match it: a VXLAN device and
//! a bridge per network, flood and unicast FDB entries, ARP/ND proxy neighbours. Finds the
//! host's tap devices, learns their networks from the server (`get_devices_details_list_and_
//! failed_devices`, as Neutron's agents do), wires them and reports them up or down.
//!
//! ```text
//!   RabbitMQ ── fanout + host queue ──► consumer ─┐
//!   kernel ──── link/neigh events ───────────────┤
//!   timers ──── heartbeat, tap scan, reconcile ──┤
//!                                                 ▼
//!                           owner loop (one task): AgentState (pure)
//!                             │ RPC calls (report_state, details,        │ ops
//!                             │ device up/down, get_fdb_entries)         ▼
//!                             ▼                               executor (netlink, batched)
//!                           server                                       │
//!                                                               Observed (kept current)
//! ```
//!
//! Start-up: declare the queues (nothing published from then on is lost), report state, scan
//! the taps and learn their networks, take a snapshot (positions + full FDB), reconcile every
//! network, then report the taps up, the first time with `refresh_tunnels`. Then the loop: a
//! notification changes some networks' tables and only those networks are planned against
//! the last observation; a kernel event or the periodic timer re-reads the kernel and plans
//! everything, repairing whatever was changed behind the agent's back.

pub mod config;
pub mod rpc;
pub mod state;
pub mod status;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::FutureExt as _;
use l2pop_dataplane::{Dataplane, Netlink, Observed, Op};
use tokio_util::sync::CancellationToken;

use self::config::Settings;
use self::rpc::ServerRpc;
use self::state::{AgentState, Outcome};
use self::status::Query;

/// At most this many queued notifications are applied before the kernel is programmed.
const MAX_BATCH: usize = 256;

/// Tap devices are Neutron's: `tap` + the first 11 characters of the port id.
pub fn is_tap(name: &str) -> bool {
    name.starts_with("tap") && name.len() == 14
}

/// Runs the agent until `shutdown` is cancelled: the kernel over netlink (in
/// `settings.netns` when set), the bus of `settings.bus`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let kernel = Netlink::connect(settings.netns.as_deref())
        .await
        .context("netlink: cannot connect")?;
    let mut events = kernel
        .events()
        .await
        .context("netlink: cannot subscribe to link and neighbour events")?;
    let (changed_tx, changed) = tokio::sync::mpsc::channel::<()>(1);
    let relay = tokio::spawn(async move {
        while events.next().await.is_some() {
            // A full channel already holds a wake-up: dropping this one loses nothing.
            let _ = changed_tx.try_send(());
        }
    });
    let outcome = run_with(settings, kernel, changed, shutdown).await;
    relay.abort();
    outcome
}

/// Runs the agent on any [`Dataplane`]; `changed` wakes it when the kernel changed under it.
pub async fn run_with<D: Dataplane>(
    settings: Settings,
    kernel: D,
    changed: tokio::sync::mpsc::Receiver<()>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bus = l2pop_bus::connect(&settings.bus)
        .await
        .context("bus: invalid settings")?;
    let consumer = bus.consumer(settings.host.clone());
    // The snapshot must not predate the queues: wait until they are declared.
    let mut connected = consumer.connected();
    tracing::info!("waiting for the bus to declare the agent's queues");
    tokio::select! {
        ready = connected.wait_for(|up| *up) => { ready.context("bus: the consumer stopped")?; }
        () = shutdown.cancelled() => return Ok(()),
    }
    let client = bus.rpc_client();
    let (queries_tx, queries) = tokio::sync::mpsc::channel::<Query>(16);
    let status_server = match settings.status_listen {
        Some(addr) => Some(status::serve(addr, queries_tx).await?),
        None => None,
    };
    let mut agent = Agent {
        rpc: ServerRpc::of_kind(
            settings.server,
            client,
            bus.rpc_client_to(rpc::reports_target(
                settings.server,
                &settings.reports_topic,
            )),
            settings.host.clone(),
        ),
        state: match settings.server {
            config::ServerKind::L2pop => AgentState::new(settings.local_ip),
            config::ServerKind::Neutron => AgentState::following_neutron(settings.local_ip),
        },
        kernel,
        observed: Observed::default(),
        pending: BTreeSet::new(),
        up: BTreeSet::new(),
        refreshed: false,
        resync_due: false,
        settings,
    };
    let outcome = match agent.start(&shutdown).await {
        Ok(true) => agent.serve(consumer, changed, queries, shutdown).await,
        Ok(false) => Ok(()),
        Err(error) => Err(error),
    };
    if let Some(task) = status_server {
        task.abort();
    }
    outcome
}

/// The agent's owner: its state, its kernel connection, its last kernel observation.
struct Agent<D> {
    settings: Settings,
    rpc: ServerRpc,
    state: AgentState,
    kernel: D,
    observed: Observed,
    /// Taps seen whose details the server did not give (yet): asked again on the scan timer.
    pending: BTreeSet<String>,
    /// Taps reported up.
    up: BTreeSet<String>,
    /// Whether a device-up with `refresh_tunnels` was sent since start.
    refreshed: bool,
    /// The last snapshot call failed on the way: retried with the heartbeat.
    resync_due: bool,
}

/// Whether `error` is the server's own answer (a failure it returned), not a call lost on the
/// way.
fn is_answer(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<l2pop_bus::RpcError>(),
        Some(l2pop_bus::RpcError::Remote { .. } | l2pop_bus::RpcError::Decode(_))
    )
}

impl<D: Dataplane> Agent<D> {
    /// Registers, then takes the kernel, the taps' networks and the server's snapshot, and
    /// programs the kernel. Nothing is programmed before the server answers: an agent that
    /// starts before its server (or before the server's queues exist) waits for it rather
    /// than reconciling the kernel against an empty table.
    async fn start(&mut self, shutdown: &CancellationToken) -> anyhow::Result<bool> {
        if !self.register(shutdown).await {
            return Ok(false);
        }
        self.observe().await?;
        self.scan(false).await;
        self.resync().await;
        self.reconcile_all().await?;
        self.report_up().await;
        Ok(true)
    }

    /// The first `report_state` (`start_flag`), retried from 200 ms up to the heartbeat
    /// interval until the server answers. False when shut down first.
    async fn register(&mut self, shutdown: &CancellationToken) -> bool {
        let mut wait = Duration::from_millis(200);
        let mut failures = 0u32;
        loop {
            match self.rpc.report_state(self.settings.local_ip, true, 0).await {
                Ok(answer) => {
                    tracing::info!(%answer, host = %self.settings.host, failures, "registered");
                    return true;
                }
                Err(error) => {
                    // The first failure and every tenth are worth a line; the rest are noise.
                    if failures.is_multiple_of(10) {
                        tracing::warn!(
                            error = %format!("{error:#}"),
                            retry_in = ?wait,
                            "report_state failed: waiting for the server before programming the kernel"
                        );
                    }
                    failures += 1;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(
                self.settings
                    .report_interval
                    .max(Duration::from_millis(200)),
            );
        }
    }

    async fn serve(
        &mut self,
        mut consumer: l2pop_bus::Consumer,
        mut events: tokio::sync::mpsc::Receiver<()>,
        mut queries: tokio::sync::mpsc::Receiver<Query>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut heartbeat = tokio::time::interval(self.settings.report_interval);
        let mut scan = tokio::time::interval(self.settings.scan_interval);
        let mut reconcile = tokio::time::interval(self.settings.reconcile_interval);
        for timer in [&mut heartbeat, &mut scan, &mut reconcile] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer.reset();
        }
        // Kernel events (a tap plugged, an entry or a device removed by hand, and the echoes of
        // our own writes) mark the kernel dirty; one full pass follows after a hold-off that
        // grows with what a full read of the kernel costs, so a host with a large table is not
        // kept busy re-reading it after every burst of its own writes.
        let mut dirty = false;
        let mut next_full = tokio::time::Instant::now();
        // Where the server's streams stood at the previous heartbeat.
        let mut server_positions = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                message = consumer.recv() => {
                    let Some(message) = message else {
                        anyhow::bail!("bus: the notification consumer stopped");
                    };
                    // Apply what else is already queued, then program the kernel once.
                    let mut batch = vec![message];
                    while batch.len() < MAX_BATCH {
                        match consumer.recv().now_or_never() {
                            Some(Some(message)) => batch.push(message),
                            _ => break,
                        }
                    }
                    self.receive(&batch).await?;
                }
                event = events.recv() => {
                    if event.is_none() {
                        anyhow::bail!("netlink: the event subscription stopped");
                    }
                    dirty = true;
                }
                () = tokio::time::sleep_until(next_full), if dirty => {
                    dirty = false;
                    let holdoff = self.full_pass().await?;
                    next_full = tokio::time::Instant::now() + holdoff;
                }
                _ = scan.tick(), if !self.pending.is_empty() => {
                    // Taps the server did not know yet: ask again.
                    self.scan(true).await;
                    self.reconcile_all().await?;
                    self.report_up().await;
                }
                _ = reconcile.tick() => {
                    self.full_pass().await?;
                }
                Some(query) = queries.recv() => self.answer(query),
                _ = heartbeat.tick() => {
                    let devices = self.up.len();
                    if let Err(error) = self.rpc.report_state(self.settings.local_ip, false, devices).await {
                        tracing::warn!(error = %format!("{error:#}"), "report_state failed");
                    }
                    if self.resync_due {
                        self.resync().await;
                        self.reconcile_all().await?;
                    }
                    self.check_positions(&mut server_positions).await?;
                }
            }
        }
    }

    /// Re-reads the kernel, finds new and vanished taps, reconciles every network and reports
    /// new taps up. Returns how long to wait before the next event-driven pass: twice what
    /// the read cost, between 200 ms and 10 s.
    async fn full_pass(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.observe().await?;
        let read = started.elapsed();
        self.scan(false).await;
        self.reconcile_all().await?;
        self.report_up().await;
        Ok((read * 2).clamp(Duration::from_millis(200), Duration::from_secs(10)))
    }

    /// Applies one notification; resyncs when the streams say so.
    /// Applies queued notifications in order and reconciles the networks they changed once.
    async fn receive(&mut self, batch: &[l2pop_bus::Received]) -> anyhow::Result<()> {
        let mut changed = BTreeSet::new();
        for message in batch {
            match self.state.receive(message) {
                Outcome::Applied(vnis) => changed.extend(vnis),
                Outcome::Dropped => {}
                Outcome::Resync(reason) => {
                    tracing::info!(%reason, "resyncing");
                    metrics::counter!("l2pop_agent_resyncs_total").increment(1);
                    // The snapshot covers every message of the batch: the rest are duplicates.
                    self.resync().await;
                    changed.clear();
                    self.reconcile_all().await?;
                }
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        self.reconcile(&changed).await
    }

    /// Compares the agent's stream positions with the server's (a heartbeat's companion call);
    /// resyncs when the agent has not caught up with what the server had sent one heartbeat
    /// ago. A server without the call (Neutron's) is not asked again.
    async fn check_positions(
        &mut self,
        previous: &mut Option<l2pop_bus::Positions>,
    ) -> anyhow::Result<()> {
        if !self.state.numbered() {
            return Ok(());
        }
        match self.rpc.positions().await {
            Ok((stream_id, now)) => {
                if self.state.lagging(stream_id, *previous) {
                    tracing::info!(?now, agent = ?self.state.positions(), "behind the server's streams: resyncing");
                    metrics::counter!("l2pop_agent_resyncs_total").increment(1);
                    self.resync().await;
                    self.reconcile_all().await?;
                }
                *previous = Some(now);
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "get_stream_positions failed");
            }
        }
        Ok(())
    }

    /// Fetches the full FDB and the stream positions it reflects. A server that answers that
    /// it has no such call (Neutron's) is followed through its unnumbered casts; a call that
    /// failed on the way (timeout, no server, broker) leaves the state as it was and is retried
    /// with the next heartbeat.
    async fn resync(&mut self) {
        match self.rpc.snapshot().await {
            Ok(Some(snapshot)) => {
                self.resync_due = false;
                self.state.resynced(
                    snapshot.positions,
                    snapshot.stream_id,
                    &snapshot.fdb_entries,
                );
            }
            // A Neutron server: its full FDBs come as host casts after update_device_up.
            Ok(None) => {
                self.resync_due = false;
                self.state.resynced(
                    None,
                    None,
                    &l2pop_model::FdbPayload::Entries(Default::default()),
                );
            }
            Err(error) if is_answer(&error) => {
                self.resync_due = false;
                tracing::warn!(error = %format!("{error:#}"), "no snapshot: following unnumbered casts");
                self.state.resynced(
                    None,
                    None,
                    &l2pop_model::FdbPayload::Entries(Default::default()),
                );
            }
            Err(error) => {
                self.resync_due = true;
                tracing::warn!(error = %format!("{error:#}"), "no snapshot yet: retrying with the heartbeat");
            }
        }
    }

    /// Re-reads the kernel.
    async fn observe(&mut self) -> anyhow::Result<()> {
        self.observed = self
            .kernel
            .observe()
            .await
            .context("netlink: cannot read the kernel's tables")?;
        Ok(())
    }

    /// Finds new and vanished taps; learns new taps' networks from the server (and, with
    /// `retry`, those of taps it did not know before).
    async fn scan(&mut self, retry: bool) {
        let present: BTreeSet<String> = self
            .observed
            .links
            .keys()
            .filter(|name| is_tap(name))
            .cloned()
            .collect();
        let gone: Vec<String> = self
            .state
            .ports()
            .map(|p| p.device.clone())
            .filter(|d| !present.contains(d))
            .collect();
        for device in gone {
            self.state.port_gone(&device);
            self.up.remove(&device);
            if let Err(error) = self.rpc.device_down(&device).await {
                tracing::warn!(%device, error = %format!("{error:#}"), "update_device_down failed");
            }
        }
        self.pending.retain(|device| present.contains(device));
        let unknown: Vec<String> = present
            .iter()
            .filter(|d| self.state.port(d).is_none() && (retry || !self.pending.contains(*d)))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return;
        }
        match self.rpc.device_details(&unknown).await {
            Ok(ports) => {
                let known: BTreeSet<String> = ports.iter().map(|p| p.device.clone()).collect();
                for port in ports {
                    tracing::info!(device = %port.device, network = %port.network_id, vni = ?port.segmentation_id, "tap wired");
                    self.state.port_wired(port);
                }
                self.pending
                    .extend(unknown.into_iter().filter(|d| !known.contains(d)));
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "get_devices_details failed");
            }
        }
    }

    /// Reports every wired tap not yet reported up; the first report carries
    /// `refresh_tunnels`, so that the server sends the full FDB again after a restart.
    async fn report_up(&mut self) {
        let devices: Vec<String> = self
            .state
            .ports()
            .map(|p| p.device.clone())
            .filter(|d| !self.up.contains(d) && self.observed.links.contains_key(d))
            .collect();
        for device in devices {
            let refresh = !self.refreshed;
            match self.rpc.device_up(&device, refresh).await {
                Ok(()) => {
                    self.refreshed = true;
                    self.up.insert(device);
                }
                Err(error) => {
                    tracing::warn!(%device, error = %format!("{error:#}"), "update_device_up failed")
                }
            }
        }
    }

    /// Plans and applies every network against the last observation.
    async fn reconcile_all(&mut self) -> anyhow::Result<()> {
        let ops = l2pop_dataplane::plan(&self.state.desired(), &self.observed);
        self.execute(ops).await
    }

    /// Plans and applies the networks with these VNIs against the last observation.
    async fn reconcile(&mut self, vnis: &BTreeSet<u32>) -> anyhow::Result<()> {
        let mut desired = l2pop_dataplane::Desired::default();
        for vni in vnis {
            if let Some(network) = self.state.network_desired(*vni) {
                desired.networks.insert(*vni, network);
            }
        }
        let ops = l2pop_dataplane::plan_networks(&desired, &self.observed, vnis);
        self.execute(ops).await
    }

    async fn execute(&mut self, ops: Vec<Op>) -> anyhow::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let results = self.kernel.execute(&ops).await;
        let mut failed = 0u64;
        for (op, result) in ops.iter().zip(results) {
            match result {
                Ok(()) => self.observed.apply(op),
                Err(error) => {
                    failed += 1;
                    tracing::warn!(%op, %error, "kernel refused an operation");
                }
            }
        }
        metrics::counter!("l2pop_agent_ops_total").increment(ops.len() as u64);
        if failed > 0 {
            metrics::counter!("l2pop_agent_op_failures_total").increment(failed);
            // What the kernel holds is not what we think: read it again.
            self.observe().await?;
        }
        Ok(())
    }

    fn answer(&self, query: Query) {
        let desired = self.state.desired();
        match query {
            Query::Status(reply) => {
                let mut view =
                    status::status_view(&self.settings, &self.state, &desired, &self.observed);
                view["pending"] = serde_json::json!(self.pending);
                let _ = reply.send(view);
            }
            Query::Explain {
                mac,
                network,
                reply,
            } => {
                let _ = reply.send(status::explain_view(
                    &self.state,
                    &desired,
                    &self.observed,
                    mac,
                    network,
                ));
            }
        }
    }
}

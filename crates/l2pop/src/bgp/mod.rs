//! `l2pop bgp`: the BGP speaker of a BGP agent host. It peers with the VPN site's PEs over
//! BGP EVPN (`l2pop-evpn`), turns their type-3 and type-2 routes into the BGPVPN extension's
//! learned gateways and devices, and reports them, with the agent's liveness, to the server.
//!
//! ```text
//!  PE ◄─TCP─► session task ×N (l2pop_evpn::driver: Session FSM + Adj-RIB-In)
//!  PE ─TCP─► listen task ──inbound stream──┘ │
//!                                            │ SessionEvent (up, down, RIB changes)
//!                                            ▼
//!                      owner (this module's run loop): Importer, sessions up
//!                                            │ Report (agent state | learned route), in order
//!                                            ▼
//!                      reporter task (report.rs): batches, PUT/POST to the server, retries
//!
//!  server ─fanout (bus)─► consumer ─► owner: Export (export.rs: follower + Exporter)
//!  server ◄─rpc get_bgp_export (snapshot)─┘   │ our UPDATEs, per peer, in order
//!                                             ▼
//!                                      session tasks (advertise channel)
//! ```
//!
//! Agent state (`docs/bgpvpn.md` §3, cases 6a/6b): at start `start_flag` (what an earlier run
//! reported is stale), `alive: false` when the last established session is lost (before that
//! session's withdrawals) and at stop, `alive: true` when a session is established again; and
//! every `server.report_interval_s` the state unchanged as a heartbeat, so that the server
//! reports a killed speaker dead after its down time.
//!
//! Graceful restart (RFC 4724, `docs/bgp.md`): with `bgp.graceful_restart_time_s` > 0 the start
//! report says `graceful_restart`, so the server keeps what an earlier run reported, stale;
//! once every configured neighbour has sent its End-of-RIB, or that time ran out, the speaker
//! reports End-of-RIB and the server purges what was not re-learned. A session lost with a peer
//! that negotiated graceful restart keeps the peer's routes (the session reports nothing) and
//! counts as alive until they are swept.

pub mod config;
pub mod export;
pub mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use l2pop_evpn::Importer;
use l2pop_evpn::driver::{self, SessionEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use config::Settings;
use report::Report;

/// How long a stop waits for the sessions' Cease and the last reports.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The owner's state: the importer and which sessions are established.
struct Owner {
    importer: Importer,
    established: BTreeSet<IpAddr>,
    /// Peers whose routes are kept, stale, across a lost session (graceful restart).
    retaining: BTreeSet<IpAddr>,
    /// After a graceful start: the configured peers whose End-of-RIB is still awaited.
    awaiting_end_of_rib: Option<BTreeSet<IpAddr>>,
    alive: bool,
    reports: mpsc::UnboundedSender<Report>,
    local_as: u32,
    export: Option<export::Export>,
}

impl Owner {
    /// An owner that starts alive; with `awaiting`, a graceful start waiting for those peers'
    /// End-of-RIB.
    fn new(
        importer: Importer,
        awaiting: Option<BTreeSet<IpAddr>>,
        reports: mpsc::UnboundedSender<Report>,
        local_as: u32,
    ) -> Self {
        Owner {
            importer,
            established: BTreeSet::new(),
            retaining: BTreeSet::new(),
            awaiting_end_of_rib: awaiting,
            alive: true,
            reports,
            local_as,
            export: None,
        }
    }

    fn send(&self, report: Report) {
        let _ = self.reports.send(report);
    }

    fn agent(&self, alive: bool) {
        self.send(Report::Agent {
            alive,
            start_flag: false,
            graceful_restart: false,
        });
    }

    /// Case 6b once no session is established and no lost peer's routes are kept.
    fn maybe_down(&mut self) {
        if self.established.is_empty() && self.retaining.is_empty() && self.alive {
            self.alive = false;
            self.agent(false);
        }
    }

    /// The graceful start is over (End-of-RIB from every peer, or the restart time ran out):
    /// the server purges what an earlier run reported and this one did not.
    fn end_graceful_start(&mut self) {
        if self.awaiting_end_of_rib.take().is_some() {
            tracing::info!("graceful restart over: End-of-RIB reported");
            self.send(Report::EndOfRib);
        }
    }

    fn event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Up { peer, negotiated } => {
                tracing::info!(%peer, router_id = %negotiated.peer.router_id, "EVPN session up");
                self.established.insert(peer);
                if let Some(export) = self.export.as_mut() {
                    export.peer_up(
                        peer,
                        l2pop_evpn::ExportSession {
                            local_as: self.local_as,
                            ibgp: negotiated.peer.asn == self.local_as,
                            four_octet_as: negotiated.peer.four_octet_as,
                        },
                    );
                }
                if !self.alive {
                    self.alive = true;
                    self.agent(true);
                }
            }
            SessionEvent::RoutesRetained { peer } => {
                self.retaining.insert(peer);
            }
            SessionEvent::StaleSwept { peer } => {
                self.retaining.remove(&peer);
                self.maybe_down();
            }
            SessionEvent::Down { peer, reason } => {
                tracing::warn!(%peer, %reason, "EVPN session down");
                self.established.remove(&peer);
                if let Some(export) = self.export.as_mut() {
                    export.peer_down(peer);
                }
                // Case 6b first, in one diff; the withdrawals that follow keep the server's
                // learned rows exact for when a session comes back. Not while a peer's routes
                // are kept for its graceful restart.
                self.maybe_down();
            }
            SessionEvent::Routes { peer, changes } => {
                for learned in self.importer.apply(peer, &changes) {
                    self.send(Report::Route(learned));
                }
            }
            SessionEvent::EndOfRib { peer } => {
                let (gateways, devices) = self.importer.reported();
                let skipped: Vec<String> = self
                    .importer
                    .skipped()
                    .iter()
                    .map(|(why, n)| format!("{}={n}", why.as_str()))
                    .collect();
                tracing::info!(%peer, gateways, devices, ?skipped, "End-of-RIB");
                if let Some(awaiting) = &mut self.awaiting_end_of_rib {
                    awaiting.remove(&peer);
                    if awaiting.is_empty() {
                        self.end_graceful_start();
                    }
                }
            }
            SessionEvent::Malformed { .. } | SessionEvent::Stopped { .. } => {}
        }
    }
}

impl Owner {
    /// Takes an export snapshot once the stream's queue is declared (a snapshot taken before
    /// could miss the fanouts between it and the queue).
    async fn resync(&mut self, bus_up: Option<&tokio::sync::watch::Receiver<bool>>) {
        let Some(export) = self.export.as_mut() else {
            return;
        };
        if !bus_up.is_some_and(|up| *up.borrow()) {
            return;
        }
        if let Err(error) = export.resync().await {
            tracing::warn!(error = %format!("{error:#}"), "export snapshot failed; retrying");
        }
    }
}

async fn recv(consumer: &mut Option<l2pop_bus::Consumer>) -> Option<l2pop_bus::Received> {
    match consumer {
        Some(consumer) => consumer.recv().await,
        None => std::future::pending().await,
    }
}

/// The bus connection came up (again).
async fn changed(up: &mut Option<tokio::sync::watch::Receiver<bool>>) -> Option<()> {
    match up {
        Some(up) => loop {
            if up.changed().await.is_err() {
                return std::future::pending().await;
            }
            if *up.borrow() {
                return Some(());
            }
        },
        None => std::future::pending().await,
    }
}

/// Runs the speaker until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Bind first: a listener that cannot bind stops the start before anything is reported or dialled.
    let listener = match settings.listen {
        Some(listen) => Some(
            tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?,
        ),
        None => None,
    };
    let (reports, queue) = mpsc::unbounded_channel();
    let reporter_stop = CancellationToken::new();
    let reporter = tokio::spawn(report::run(
        settings.server.clone(),
        settings.host.clone(),
        queue,
        reporter_stop.clone(),
    ));
    let graceful = !settings.graceful_restart_time.is_zero();
    let awaiting = graceful.then(|| settings.neighbors.iter().map(|n| n.address).collect());
    let mut owner = Owner::new(
        Importer::new(settings.import_route_targets.clone()),
        awaiting,
        reports,
        settings
            .neighbors
            .first()
            .map_or(0, |n| n.session.local.asn),
    );
    owner.send(Report::Agent {
        alive: true,
        start_flag: true,
        graceful_restart: graceful,
    });
    let restart_deadline = tokio::time::Instant::now() + settings.graceful_restart_time;

    let sessions_stop = CancellationToken::new();
    let (events_tx, mut events) = mpsc::channel(1024);
    let mut inbound = HashMap::new();
    let mut advertise = BTreeMap::new();
    let mut tasks = Vec::new();
    for neighbour in &settings.neighbors {
        let handle = driver::spawn(neighbour.clone(), events_tx.clone(), sessions_stop.clone());
        inbound.insert(handle.peer, handle.inbound);
        advertise.insert(handle.peer, handle.advertise);
        tasks.push(handle.task);
    }
    // Export: a consumer of the fanout stream (its own queue: a host name no agent has) and
    // an RPC client for the snapshots.
    let mut consumer = None;
    let mut bus_up = None;
    if let Some(export_settings) = &settings.export {
        let bus = l2pop_bus::connect(&export_settings.bus)
            .await
            .context("bus")?;
        let queue_host = l2pop_model::Host::new(&format!("{}.bgp-export", settings.host))
            .context("bgp.host is too long for the export queue's name")?;
        let stream = bus.consumer(queue_host);
        bus_up = Some(stream.connected());
        consumer = Some(stream);
        owner.export = Some(export::Export::new(
            export_settings,
            bus.rpc_client(),
            settings.host.clone(),
            advertise,
        ));
    }
    let refresh_every = settings
        .export
        .as_ref()
        .map_or(Duration::from_secs(3600), |e| e.refresh);
    let mut refresh = tokio::time::interval(refresh_every);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    drop(events_tx);
    if let Some(listener) = listener {
        tracing::info!(listen = ?listener.local_addr().ok(), "listening for BGP peers");
        tokio::spawn(driver::listen(listener, inbound, sessions_stop.clone()));
    }
    tracing::info!(
        host = %settings.host,
        neighbors = settings.neighbors.len(),
        "BGP speaker started"
    );

    // Heartbeats: the state as it is, which the server does not log unless it changed.
    let mut heartbeat = tokio::time::interval(settings.server.report_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            event = events.recv() => match event {
                Some(event) => owner.event(event),
                None => break,
            },
            _ = heartbeat.tick() => owner.agent(owner.alive),
            () = tokio::time::sleep_until(restart_deadline), if owner.awaiting_end_of_rib.is_some() => {
                tracing::warn!(
                    awaiting = ?owner.awaiting_end_of_rib,
                    "graceful restart time ran out before every End-of-RIB"
                );
                owner.end_graceful_start();
            }
            Some(message) = recv(&mut consumer) => {
                let applied = owner.export.as_mut().is_none_or(|e| e.receive(&message));
                if !applied {
                    owner.resync(bus_up.as_ref()).await;
                }
            }
            Some(()) = changed(&mut bus_up) => {
                // Fanouts published while the queue was away are lost: a snapshot again.
                owner.resync(bus_up.as_ref()).await;
            }
            _ = retry.tick(), if owner.export.as_ref().is_some_and(|e| !e.synced()) => {
                owner.resync(bus_up.as_ref()).await;
            }
            _ = refresh.tick(), if owner.export.is_some() => {
                owner.resync(bus_up.as_ref()).await;
            }
        }
    }

    // Stop: case 6b, then every session sends its Cease and withdraws; their last events are
    // still reported, within the grace period.
    if owner.alive {
        owner.alive = false;
        owner.agent(false);
    }
    sessions_stop.cancel();
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while let Some(event) = events.recv().await {
            owner.event(event);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("sessions did not stop in time");
    }
    drop(owner);
    if tokio::time::timeout(STOP_GRACE, reporter).await.is_err() {
        reporter_stop.cancel();
        tracing::warn!("the last reports could not be delivered");
    }
    for task in tasks {
        task.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests;

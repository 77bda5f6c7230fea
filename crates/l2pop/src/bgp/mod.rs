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
pub mod report;

use std::collections::{BTreeSet, HashMap};
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
}

impl Owner {
    /// An owner that starts alive; with `awaiting`, a graceful start waiting for those peers'
    /// End-of-RIB.
    fn new(
        importer: Importer,
        awaiting: Option<BTreeSet<IpAddr>>,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Self {
        Owner {
            importer,
            established: BTreeSet::new(),
            retaining: BTreeSet::new(),
            awaiting_end_of_rib: awaiting,
            alive: true,
            reports,
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
    let mut tasks = Vec::new();
    for neighbour in &settings.neighbors {
        let handle = driver::spawn(neighbour.clone(), events_tx.clone(), sessions_stop.clone());
        inbound.insert(handle.peer, handle.inbound);
        tasks.push(handle.task);
    }
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

//! The owner task: the only holder of [`NeutronState`]. Everything else sends it [`Job`]s: typed
//! requests parsed on the caller's task, never closures and never JSON.
//!
//! Group commit: the owner takes every job waiting in its queue (up to [`MAX_BATCH`]), handles
//! the writes in order against the state (`NeutronState::handle`: plan, execute, render),
//! appends their commands to the log in ONE transaction, and only after the commit publishes the
//! catalog, answers the callers and hands the notifications to the bus. Queries queued in the
//! same round are answered after the commit, so nobody ever sees a change that is not durable.
//! While a commit is in flight new requests queue up and form the next batch, so throughput
//! grows with concurrent clients instead of being bounded by one fsync per request. A failed
//! commit leaves the in-memory state ahead of the log: the owner answers 503 to that batch and
//! stops, and the process restarts from the log.

use std::sync::Arc;
use std::time::SystemTime;

use l2pop_model::{Notification, Uuid};
use l2pop_neutron::{
    Caller, Catalog, Fresh, NeutronError, NeutronState, Query, Request, TenantNetworks, Time,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// Jobs taken in one round at most.
pub const MAX_BATCH: usize = 4096;

/// Where a job's answer goes.
pub type Reply = oneshot::Sender<Result<Value, NeutronError>>;

#[derive(Debug)]
pub enum Job {
    Write {
        caller: Caller,
        /// Boxed: request bodies are large beside the other jobs.
        request: Box<Request>,
        reply: Reply,
    },
    Query {
        caller: Caller,
        query: Query,
        reply: Reply,
    },
}

/// A cheap, cloneable handle to the owner: its job queue, and the catalog it publishes after
/// every round (read without asking the owner).
#[derive(Clone, Debug)]
pub struct OwnerHandle {
    jobs: mpsc::Sender<Job>,
    catalog: watch::Receiver<Arc<Catalog>>,
}

impl OwnerHandle {
    pub fn new(jobs: mpsc::Sender<Job>, catalog: watch::Receiver<Arc<Catalog>>) -> Self {
        OwnerHandle { jobs, catalog }
    }

    async fn ask(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<Value, NeutronError>>,
    ) -> Result<Value, NeutronError> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| NeutronError::unavailable("the server is shutting down"))?;
        answer
            .await
            .map_err(|_| NeutronError::unavailable("the server stopped before answering"))?
    }

    pub async fn write(&self, caller: Caller, request: Request) -> Result<Value, NeutronError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Write {
                caller,
                request: Box::new(request),
                reply,
            },
            answer,
        )
        .await
    }

    pub async fn query(&self, caller: Caller, query: Query) -> Result<Value, NeutronError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Query {
                caller,
                query,
                reply,
            },
            answer,
        )
        .await
    }

    /// The catalog as of the last committed round.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }
}

/// Fresh values from the operating system: random v4 UUIDs and MACs, the wall clock.
#[derive(Debug, Default)]
pub struct SystemFresh;

impl Fresh for SystemFresh {
    fn uuid(&mut self) -> Uuid {
        Uuid::from_u128(uuid::Uuid::new_v4().as_u128())
    }

    fn mac_suffix(&mut self) -> [u8; 3] {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        [bytes[0], bytes[1], bytes[2]]
    }

    fn now(&mut self) -> Time {
        now()
    }
}

/// The wall clock, as the resource layer takes it.
pub fn now() -> Time {
    Time(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Jobs reporting the BGP agents silent for longer than the down time dead (case 6b), written
/// by the owner itself: nobody waits for their answers, which only the log keeps.
pub fn silent_bgp_agents(state: &NeutronState, now: Time) -> Vec<Job> {
    state
        .silent_bgp_agents(now)
        .into_iter()
        .map(|request| {
            if let Request::BgpAgentReport(host, _) = &request {
                tracing::warn!(%host, "BGP agent silent for longer than the down time: reported dead");
            }
            let (reply, _) = oneshot::channel();
            Job::Write {
                caller: Caller::Admin,
                request: Box::new(request),
                reply,
            }
        })
        .collect()
}

/// One round's outcome, ready to be made durable.
#[derive(Default)]
pub struct Round {
    /// `(log seq, command JSON)` in order.
    pub records: Vec<(u64, String)>,
    pub notifications: Vec<Notification>,
    /// Answers held back until the commit.
    pub replies: Vec<(Reply, Result<Value, NeutronError>)>,
    pub queries: Vec<(Caller, Query, Reply)>,
}

impl std::fmt::Debug for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round")
            .field("records", &self.records.len())
            .field("notifications", &self.notifications.len())
            .finish()
    }
}

/// Handles the writes of one round against the state (synchronous, no I/O). Refused writes are
/// answered at once: they changed nothing.
pub fn run_round(
    state: &mut NeutronState,
    jobs: Vec<Job>,
    tenant: &TenantNetworks,
    fresh: &mut dyn Fresh,
) -> Round {
    let mut round = Round::default();
    for job in jobs {
        match job {
            Job::Write {
                caller,
                request,
                reply,
            } => match state.handle(&caller, *request, tenant, fresh) {
                Ok(outcome) => {
                    if let Some(command) = &outcome.command {
                        let text = serde_json::to_string(command)
                            .unwrap_or_else(|e| format!("{{\"unserializable\": \"{e}\"}}"));
                        round.records.push((state.executed(), text));
                    }
                    round.notifications.extend(outcome.notifications);
                    round.replies.push((reply, outcome.answer));
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Job::Query {
                caller,
                query,
                reply,
            } => round.queries.push((caller, query, reply)),
        }
    }
    round
}

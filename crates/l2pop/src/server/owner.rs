//! The owner task: the only holder of [`ServerState`]. Everything else sends it [`Job`]s.
//!
//! Group commit: the owner takes every job waiting in its queue (up to [`MAX_BATCH`]), plans and
//! executes the writes in order against the state, appends their commands to the log in ONE
//! transaction, and only after the commit answers the callers and hands the notifications to
//! the bus. Reads queued in the same round are answered after the commit, so nobody ever sees a
//! change that is not durable. While a commit is in flight new requests queue up and form the
//! next batch, so throughput grows with concurrent clients instead of being bounded by one
//! fsync per request. A failed commit leaves the in-memory state ahead of the log: the owner
//! answers 503 to that batch and stops, and the process restarts from the log.

use std::time::SystemTime;

use l2pop_model::{Host, Notification, Uuid};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::auth::Caller;
use super::command::Command;
use super::error::ApiError;
use super::requests::Fresh;
use super::state::ServerState;

/// Jobs taken in one round at most.
pub const MAX_BATCH: usize = 4096;

/// What a write plans: the command to log and execute (or none, for a request that changes
/// nothing), and how to render the answer from the state right after it executed.
pub struct Planned {
    pub command: Option<Command>,
    pub view: View,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

pub type View = Box<dyn FnOnce(&ServerState) -> Result<Value, ApiError> + Send>;
pub type Plan =
    Box<dyn FnOnce(&ServerState, &Caller, &mut dyn Fresh) -> Result<Planned, ApiError> + Send>;
pub type Read = Box<dyn FnOnce(&ServerState, &Caller) -> Result<Value, ApiError> + Send>;
/// Where a job's answer goes.
pub type Reply = oneshot::Sender<Result<Value, ApiError>>;

pub enum Job {
    Write {
        caller: Caller,
        plan: Plan,
        reply: oneshot::Sender<Result<Value, ApiError>>,
    },
    Read {
        caller: Caller,
        read: Read,
        reply: oneshot::Sender<Result<Value, ApiError>>,
    },
    /// An agent heartbeat that changes nothing durable.
    Heartbeat { host: Host },
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Write { caller, .. } => write!(f, "Write({caller:?})"),
            Job::Read { caller, .. } => write!(f, "Read({caller:?})"),
            Job::Heartbeat { host } => write!(f, "Heartbeat({host})"),
        }
    }
}

/// A cheap, cloneable handle to the owner.
#[derive(Clone, Debug)]
pub struct OwnerHandle {
    jobs: mpsc::Sender<Job>,
}

impl OwnerHandle {
    pub fn new(jobs: mpsc::Sender<Job>) -> Self {
        OwnerHandle { jobs }
    }

    async fn ask(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<Value, ApiError>>,
    ) -> Result<Value, ApiError> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("the server stopped before answering"))?
    }

    pub async fn write(&self, caller: Caller, plan: Plan) -> Result<Value, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Write {
                caller,
                plan,
                reply,
            },
            answer,
        )
        .await
    }

    pub async fn read(&self, caller: Caller, read: Read) -> Result<Value, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Read {
                caller,
                read,
                reply,
            },
            answer,
        )
        .await
    }

    pub async fn heartbeat(&self, host: Host) {
        let _ = self.jobs.send(Job::Heartbeat { host }).await;
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

    fn now(&mut self) -> String {
        neutron_timestamp(SystemTime::now())
    }
}

/// `2026-11-21T10:47:02Z`, Neutron's API timestamp format: the date and time of Python's
/// `str(datetime)` (`2026-11-21 10:47:02[.ffffff]`), which the bus already renders.
pub fn neutron_timestamp(time: SystemTime) -> String {
    let python = l2pop_bus::context::python_timestamp(time);
    format!("{}T{}Z", &python[..10], &python[11..19])
}

/// When each agent was last heard from (not durable: agents report every few seconds).
#[derive(Debug)]
pub struct Liveness {
    down_time: std::time::Duration,
    seen: std::collections::HashMap<Host, std::time::Instant>,
}

impl Liveness {
    pub fn new(down_time: std::time::Duration) -> Self {
        Liveness {
            down_time,
            seen: std::collections::HashMap::new(),
        }
    }

    pub fn seen(&mut self, host: &Host) {
        self.seen.insert(host.clone(), std::time::Instant::now());
    }

    /// L2 agents heard from within the down time.
    pub fn alive(&self, state: &ServerState) -> usize {
        state
            .agents
            .keys()
            .filter(|host| {
                self.seen
                    .get(*host)
                    .is_some_and(|at| at.elapsed() <= self.down_time)
            })
            .count()
    }
}

/// One round's outcome, ready to be made durable.
#[derive(Default)]
pub struct Round {
    /// `(log seq, command JSON)` in order.
    pub records: Vec<(u64, String)>,
    pub notifications: Vec<Notification>,
    /// Answers held back until the commit.
    pub replies: Vec<(Reply, Result<Value, ApiError>)>,
    pub reads: Vec<(Caller, Read, Reply)>,
    pub heartbeats: Vec<Host>,
}

impl std::fmt::Debug for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round")
            .field("records", &self.records.len())
            .field("notifications", &self.notifications.len())
            .finish()
    }
}

/// Plans and executes the writes of one round against the state (synchronous, no I/O).
/// Refused writes are answered at once: they changed nothing.
pub fn run_round(state: &mut ServerState, jobs: Vec<Job>, fresh: &mut dyn Fresh) -> Round {
    let mut round = Round::default();
    for job in jobs {
        match job {
            Job::Write {
                caller,
                plan,
                reply,
            } => {
                let planned = match plan(state, &caller, fresh) {
                    Ok(planned) => planned,
                    Err(error) => {
                        let _ = reply.send(Err(error));
                        continue;
                    }
                };
                let Some(command) = planned.command else {
                    round.replies.push((reply, (planned.view)(state)));
                    continue;
                };
                match state.execute(&command) {
                    Ok(notifications) => {
                        let text = serde_json::to_string(&command)
                            .unwrap_or_else(|e| format!("{{\"unserializable\": \"{e}\"}}"));
                        round.records.push((state.executed(), text));
                        round.notifications.extend(notifications);
                        round.replies.push((reply, (planned.view)(state)));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Job::Read {
                caller,
                read,
                reply,
            } => round.reads.push((caller, read, reply)),
            Job::Heartbeat { host } => round.heartbeats.push(host),
        }
    }
    round
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::neutron_timestamp;

    #[test]
    fn neutron_timestamps_have_seconds_precision_and_a_z() {
        let at = UNIX_EPOCH + Duration::from_micros(1_795_258_022_361_756);
        assert_eq!(neutron_timestamp(at), "2026-11-21T10:47:02Z");
        let whole = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(neutron_timestamp(whole), "2000-02-29T00:00:00Z");
    }
}

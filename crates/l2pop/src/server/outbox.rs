//! The notification outbox: what stands between the owner and the publisher, bounded in memory
//! because the command log behind it holds every notification anyway.
//!
//! ```text
//!   owner ── push ──► Backlog (≤ bus.max_backlog notifications in memory)
//!                       │ queue: newest, in seq order     dropped: oldest seq range, not held
//!                       ▼                                   │
//!                   forwarder ◄── LogReplay (replays the log, yields that range again) ◄┘
//!                       │ at most `window` handed over and unconfirmed
//!                       ▼
//!                   Publisher ── confirmed seq ──► forwarder (frees the window)
//! ```
//!
//! While the broker is away nothing is confirmed: the window fills, the queue fills, and each
//! new notification pushes the oldest queued one out of memory into the `dropped` range (one
//! range: the dropped ones are always the oldest not yet handed over). When the broker is back
//! the forwarder republishes that range first, regenerated from the log by a [`LogReplay`]
//! (the state is a pure function of the log, so the same commands give the same notifications,
//! byte for byte: the start-up republish relies on the same), then the queue. Order is kept:
//! every notification reaches the publisher in seq order, once.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use anyhow::Context as _;
use l2pop_model::Notification;
use l2pop_store::{LogReader, LogRecord, Store};

use l2pop_neutron::NeutronState;
use l2pop_neutron::command::Command;

/// Notifications handed to the publisher and unconfirmed at most (its in-flight window).
pub const MAX_WINDOW: usize = 1024;

/// Default of `bus.max_backlog`: notifications held in memory while the broker is away (about
/// 3 KB each once encoded).
pub const DEFAULT_MAX_BACKLOG: usize = 10_000;

/// The bounded in-memory part of the outbox (pure; shared by the owner and the forwarder under
/// a mutex).
#[derive(Debug)]
pub struct Backlog {
    cap: usize,
    window: usize,
    /// Not yet handed to the publisher, in seq order.
    queue: VecDeque<Notification>,
    /// Dropped from memory (oldest first, contiguous in the stream, all before `queue`): to be
    /// regenerated from the log.
    dropped: Option<RangeInclusive<u64>>,
    /// Seqs handed to the publisher and not yet confirmed.
    handed: VecDeque<u64>,
    dropped_total: u64,
}

impl Backlog {
    /// Holds at most `cap` notifications (at least 2: one handed over, one queued).
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(2);
        Backlog {
            cap,
            window: (cap / 2).clamp(1, MAX_WINDOW),
            queue: VecDeque::new(),
            dropped: None,
            handed: VecDeque::new(),
            dropped_total: 0,
        }
    }

    /// Marks `range` (the oldest notifications, none queued yet) to be regenerated from the log
    /// rather than held: what a standby replayed before it took over.
    pub fn regenerate(&mut self, range: RangeInclusive<u64>) {
        debug_assert!(self.queue.is_empty() && self.dropped.is_none());
        self.dropped_total += range.end().saturating_sub(*range.start()) + 1;
        self.dropped = Some(range);
    }

    /// Queues `notification` (seqs increasing); beyond the cap the oldest queued one leaves
    /// memory and joins the dropped range.
    pub fn push(&mut self, notification: Notification) {
        self.queue.push_back(notification);
        // `handed` is at most cap / 2, so the newest always stays queued.
        while self.held() > self.cap {
            let Some(oldest) = self.queue.pop_front() else {
                break;
            };
            let first = self.dropped.as_ref().map_or(oldest.seq, |r| *r.start());
            self.dropped = Some(first..=oldest.seq);
            self.dropped_total += 1;
        }
    }

    /// Notifications in memory: queued plus handed over and unconfirmed.
    pub fn held(&self) -> usize {
        self.queue.len() + self.handed.len()
    }

    /// Notifications dropped from memory so far (republished from the log).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// True while the publisher may take one more.
    pub fn has_room(&self) -> bool {
        self.handed.len() < self.window
    }

    /// True when nothing waits to be handed over (queued or dropped).
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty() && self.dropped.is_none()
    }

    /// The range to regenerate from the log before anything queued, if any.
    pub fn take_dropped(&mut self) -> Option<RangeInclusive<u64>> {
        self.dropped.take()
    }

    /// The next queued notification, unless a dropped range comes first.
    pub fn pop(&mut self) -> Option<Notification> {
        if self.dropped.is_some() {
            return None;
        }
        self.queue.pop_front()
    }

    /// Records that `seq` was handed to the publisher.
    pub fn handed(&mut self, seq: u64) {
        self.handed.push_back(seq);
    }

    /// The publisher confirmed everything up to `seq`.
    pub fn confirmed(&mut self, seq: u64) {
        while self.handed.front().is_some_and(|&s| s <= seq) {
            self.handed.pop_front();
        }
    }
}

/// Replays the command log into a fresh state, yielding every notification in seq order. Used
/// at start-up (everything above the watermark) and by the forwarder (a dropped range).
#[derive(Debug)]
pub struct LogReplay {
    store: Store,
    /// The command of the snapshot it started from (0: the beginning of the log).
    snapshot: u64,
    state: NeutronState,
    reader: LogReader,
    records: VecDeque<LogRecord>,
    /// The notifications of the last command executed, not yet yielded.
    notifications: VecDeque<Notification>,
}

impl LogReplay {
    /// From `store`'s latest snapshot (the state it saved, then the log after it), else from
    /// the beginning of the log. A snapshot is only ever saved once every notification up to
    /// its state was confirmed by the broker, so everything a replay must regenerate (above the
    /// publish watermark) comes after it.
    pub async fn open(store: &Store) -> anyhow::Result<Self> {
        let (state, after) = match store.latest_snapshot().await? {
            Some(snapshot) => {
                let state = NeutronState::restore(&snapshot.state).with_context(|| {
                    format!("snapshot at command {} does not restore", snapshot.seq)
                })?;
                if state.executed() != snapshot.seq {
                    anyhow::bail!(
                        "snapshot at command {} holds the state after command {}",
                        snapshot.seq,
                        state.executed()
                    );
                }
                tracing::info!(
                    seq = snapshot.seq,
                    notified = state.engine().seq(),
                    "replaying from a snapshot"
                );
                (state, snapshot.seq)
            }
            None => (NeutronState::new(), 0),
        };
        Ok(LogReplay {
            store: store.clone(),
            snapshot: after,
            state,
            reader: store.read_log(after),
            records: VecDeque::new(),
            notifications: VecDeque::new(),
        })
    }

    /// The command of the snapshot it started from (0: none).
    pub fn snapshot(&self) -> u64 {
        self.snapshot
    }

    /// The state as of the last command replayed.
    pub fn state(&self) -> &NeutronState {
        &self.state
    }

    /// Replays what the log holds now, keeping no notification (a standby following the
    /// active server).
    pub async fn catch_up(&mut self) -> anyhow::Result<()> {
        while self.step().await? {
            self.notifications.clear();
        }
        Ok(())
    }

    /// The next notification, `None` at the end of the log.
    pub async fn next(&mut self) -> anyhow::Result<Option<Notification>> {
        loop {
            if let Some(notification) = self.notifications.pop_front() {
                return Ok(Some(notification));
            }
            if !self.step().await? {
                return Ok(None);
            }
        }
    }

    /// The next notification within `range` (skipping those before it), `None` once past it.
    pub async fn next_in(
        &mut self,
        range: &RangeInclusive<u64>,
    ) -> anyhow::Result<Option<Notification>> {
        loop {
            match self.notifications.front() {
                Some(n) if n.seq < *range.start() => {
                    self.notifications.pop_front();
                }
                Some(n) if n.seq <= *range.end() => return Ok(self.notifications.pop_front()),
                Some(_) => return Ok(None),
                // Everything up to the range's end was emitted (and handed out).
                None if self.state.engine().seq() >= *range.end() => return Ok(None),
                None => {
                    if !self.step().await? {
                        anyhow::bail!(
                            "notifications {}..={} are not in the command log (it ends at record {})",
                            range.start(),
                            range.end(),
                            self.state.executed()
                        );
                    }
                }
            }
        }
    }

    /// The state after every command replayed so far.
    pub fn into_state(self) -> NeutronState {
        self.state
    }

    /// Executes the next record; false at the end of the log.
    async fn step(&mut self) -> anyhow::Result<bool> {
        if self.records.is_empty() {
            match self.reader.next_chunk().await {
                Ok(Some(chunk)) => self.records.extend(chunk),
                Ok(None) => return Ok(false),
                Err(error) => {
                    // The active server compacted the log past this replay (its snapshot came
                    // after it): go on from that snapshot, which holds everything before.
                    let position = self.reader.position();
                    let newer = self.store.latest_snapshot().await?;
                    let compacted = matches!(
                        error,
                        l2pop_store::StoreError::LogCompacted { .. }
                            | l2pop_store::StoreError::LogGap { .. }
                    );
                    match newer {
                        Some(snapshot) if compacted && snapshot.seq > position => {
                            tracing::info!(
                                from = position,
                                to = snapshot.seq,
                                "the log was compacted under a replay: going on from its snapshot"
                            );
                            let notifications = std::mem::take(&mut self.notifications);
                            *self = LogReplay::open(&self.store).await?;
                            self.notifications = notifications;
                            return Ok(true);
                        }
                        _ => return Err(error.into()),
                    }
                }
            }
        }
        let Some(record) = self.records.pop_front() else {
            return Ok(false);
        };
        let command: Command = serde_json::from_str(&record.command)
            .with_context(|| format!("command log record {} does not parse", record.seq))?;
        let notifications = self.state.execute(&command).map_err(|e| {
            anyhow::anyhow!(
                "command log record {} was refused on replay: {e}",
                record.seq
            )
        })?;
        if self.state.executed() != record.seq {
            anyhow::bail!(
                "command log record {} replayed as command {}",
                record.seq,
                self.state.executed()
            );
        }
        self.notifications.extend(notifications);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use l2pop_model::{ChgIp, FdbPayload, Method, Target};

    fn note(seq: u64) -> Notification {
        Notification {
            seq,
            target: Target::Fanout,
            method: Method::AddFdbEntries,
            source: None,
            fdb_entries: FdbPayload::ChgIp(ChgIp::default()),
            fanout_seq: seq,
            host_seq: None,
        }
    }

    #[test]
    fn beyond_the_cap_the_oldest_leave_memory_as_one_range() {
        let mut backlog = Backlog::new(4);
        for seq in 1..=3 {
            backlog.push(note(seq));
        }
        // Window 2: two handed over, unconfirmed.
        for _ in 0..2 {
            let n = backlog.pop().unwrap();
            backlog.handed(n.seq);
        }
        assert!(!backlog.has_room());
        for seq in 4..=10 {
            backlog.push(note(seq));
            assert!(backlog.held() <= 4);
        }
        assert_eq!(backlog.dropped_total(), 6);
        assert_eq!(backlog.pop().map(|n| n.seq), None, "the range comes first");
        assert_eq!(backlog.take_dropped(), Some(3..=8));
        assert_eq!(backlog.pop().map(|n| n.seq), Some(9));
        backlog.confirmed(1);
        assert!(backlog.has_room());
        backlog.confirmed(2);
        assert_eq!(backlog.held(), 1);
        assert_eq!(backlog.pop().map(|n| n.seq), Some(10));
        assert!(backlog.is_drained());
    }

    /// A store whose log holds an agent, a network and a port up on it: notifications 1..=n.
    async fn logged() -> (Store, u64) {
        use l2pop_neutron::request::{
            DeviceName, DeviceReply, Fresh, ReportReply, Request, TenantNetworks, body,
        };
        use l2pop_neutron::{Caller, Time};
        use serde_json::json;
        struct Counter(u128);
        impl Fresh for Counter {
            fn uuid(&mut self) -> l2pop_model::Uuid {
                self.0 += 1;
                l2pop_model::Uuid::from_u128(self.0)
            }
            fn mac_suffix(&mut self) -> [u8; 3] {
                [0, 0, 1]
            }
            fn now(&mut self) -> Time {
                Time(1_800_000_000)
            }
        }
        let store = Store::open("sqlite::memory:").await.unwrap();
        let leadership = store
            .acquire_leadership(std::time::Duration::from_millis(10))
            .await
            .unwrap();
        let mut state = NeutronState::new();
        let mut fresh = Counter(0);
        let port = "00000000-0000-4000-8000-000000000001";
        let requests = vec![
            Request::AgentReport {
                body: body(
                    json!({"agent": {"host": "h1", "tunneling_ip": "192.0.2.1",
                    "tunnel_types": ["vxlan"]}}),
                    "agent",
                )
                .unwrap(),
                reply: ReportReply::NewOrAlive,
            },
            Request::NetworkCreate(body(json!({"network": {"name": "n"}}), "network").unwrap()),
        ];
        let mut records = Vec::new();
        let mut run = |state: &mut NeutronState, request| {
            let outcome = state
                .handle(
                    &Caller::Admin,
                    request,
                    &TenantNetworks::default(),
                    &mut fresh,
                )
                .unwrap();
            let answer = outcome.answer.unwrap();
            if let Some(command) = outcome.command {
                records.push(LogRecord {
                    seq: state.executed(),
                    command: serde_json::to_string(&command).unwrap(),
                });
            }
            answer
        };
        for request in requests {
            run(&mut state, request);
        }
        let network = state.catalog().networks.keys().next().unwrap().to_string();
        run(
            &mut state,
            Request::PortCreate(
                body(
                    json!({"port": {"id": port, "network_id": network,
                    "binding:host_id": "h1"}}),
                    "port",
                )
                .unwrap(),
            ),
        );
        run(
            &mut state,
            Request::Device {
                device: DeviceName::Port(port.parse().unwrap()),
                up: true,
                body: body(json!({"device": {"host": "h1"}}), "device").unwrap(),
                reply: DeviceReply::Rpc,
            },
        );
        store.append(&leadership, &records).await.unwrap();
        let last = state.engine().seq();
        assert!(last > 0);
        (store, last)
    }

    #[tokio::test]
    async fn a_range_ending_at_the_last_notification_of_the_log_is_regenerated() {
        let (store, last) = logged().await;
        let mut replay = LogReplay::open(&store).await.unwrap();
        let range = last..=last;
        assert_eq!(
            replay.next_in(&range).await.unwrap().map(|n| n.seq),
            Some(last)
        );
        assert!(replay.next_in(&range).await.unwrap().is_none());
        // Beyond the log: an error naming the range.
        let mut replay = LogReplay::open(&store).await.unwrap();
        let error = replay.next_in(&(last + 1..=last + 1)).await.unwrap_err();
        assert!(
            error.to_string().contains("are not in the command log"),
            "{error}"
        );
    }
}

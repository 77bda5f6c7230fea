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
    state: NeutronState,
    reader: LogReader,
    records: VecDeque<LogRecord>,
    /// The notifications of the last command executed, not yet yielded.
    notifications: VecDeque<Notification>,
}

impl LogReplay {
    /// From the beginning of `store`'s log.
    pub fn new(store: &Store) -> Self {
        LogReplay {
            state: NeutronState::new(),
            reader: store.read_log(0),
            records: VecDeque::new(),
            notifications: VecDeque::new(),
        }
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
            match self.reader.next_chunk().await? {
                Some(chunk) => self.records.extend(chunk),
                None => return Ok(false),
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
}

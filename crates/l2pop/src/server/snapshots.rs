//! Scheduled snapshots and compaction: start-up and takeover replay the newest snapshot and the
//! log after it, so their time follows the live state, not the history.
//!
//! Every `store.snapshot_every` commands the owner encodes its state (on its own task: the state
//! is its own) and holds the bytes until the broker has confirmed every notification up to that
//! state and the watermark says so in the store; only then is the snapshot saved and the log
//! below it deleted, on a task of its own, a bounded range per transaction. That order keeps the
//! one rule the outbox needs: whatever a restart must republish (above the watermark) is
//! regenerated from commands after the newest snapshot.

use std::sync::Arc;
use std::time::Instant;

use l2pop_neutron::NeutronState;
use l2pop_store::{Leadership, Store};
use tokio::task::JoinHandle;

/// Default of `store.snapshot_every`.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100_000;

/// An encoded state waiting for the broker to confirm its notifications.
#[derive(Debug)]
struct Pending {
    /// The last command in it.
    seq: u64,
    /// The last notification it sent.
    notified: u64,
    bytes: Vec<u8>,
}

/// The owner's snapshot schedule (see the module documentation).
#[derive(Debug)]
pub struct Snapshots {
    every: u64,
    /// The command the newest snapshot (saved or pending) holds the state after.
    last: u64,
    pending: Option<Pending>,
    saving: Option<JoinHandle<()>>,
}

impl Snapshots {
    /// `every` commands (0: never); `last` is the newest snapshot's command.
    pub fn new(every: u64, last: u64) -> Self {
        Snapshots {
            every,
            last,
            pending: None,
            saving: None,
        }
    }

    /// Called on the owner's tick with the watermark recorded in the store.
    pub fn tick(
        &mut self,
        state: &NeutronState,
        recorded: u64,
        store: &Store,
        leadership: &Arc<Leadership>,
    ) {
        if self.saving.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        self.saving = None;
        if self.pending.is_none()
            && self.every > 0
            && state.executed().saturating_sub(self.last) >= self.every
        {
            let started = Instant::now();
            match state.save() {
                Ok(bytes) => {
                    let elapsed = started.elapsed();
                    metrics::histogram!("l2pop_snapshot_encode_seconds")
                        .record(elapsed.as_secs_f64());
                    tracing::info!(
                        seq = state.executed(),
                        bytes = bytes.len(),
                        elapsed_ms = elapsed.as_millis() as u64,
                        "snapshot encoded; saved once its notifications are confirmed"
                    );
                    self.last = state.executed();
                    self.pending = Some(Pending {
                        seq: state.executed(),
                        notified: state.engine().seq(),
                        bytes,
                    });
                }
                Err(error) => {
                    // Not fatal: the log still holds everything. Tried again after `every`.
                    self.last = state.executed();
                    tracing::error!(%error, "cannot encode a snapshot of the state");
                }
            }
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|pending| recorded >= pending.notified)
            && let Some(pending) = self.pending.take()
        {
            let (store, leadership) = (store.clone(), leadership.clone());
            self.saving = Some(tokio::spawn(async move {
                save(&store, &leadership, pending).await;
            }));
        }
    }
}

impl Drop for Snapshots {
    /// Stops a save in progress: the owner is stopping (the next leader snapshots again).
    fn drop(&mut self) {
        if let Some(task) = self.saving.take() {
            task.abort();
        }
    }
}

async fn save(store: &Store, leadership: &Leadership, pending: Pending) {
    let started = Instant::now();
    if let Err(error) = store
        .save_snapshot(leadership, pending.seq, &pending.bytes)
        .await
    {
        tracing::error!(%error, seq = pending.seq, "cannot save a snapshot");
        return;
    }
    let saved = started.elapsed();
    match store.compact(leadership).await {
        Ok(deleted) => {
            metrics::counter!("l2pop_snapshots_total").increment(1);
            metrics::gauge!("l2pop_snapshot_seq").set(pending.seq as f64);
            metrics::counter!("l2pop_log_compacted_total").increment(deleted);
            tracing::info!(
                seq = pending.seq,
                bytes = pending.bytes.len(),
                save_ms = saved.as_millis() as u64,
                compact_ms = (started.elapsed() - saved).as_millis() as u64,
                deleted,
                "snapshot saved, log compacted below it"
            );
        }
        Err(error) => tracing::error!(%error, seq = pending.seq, "cannot compact the log"),
    }
}

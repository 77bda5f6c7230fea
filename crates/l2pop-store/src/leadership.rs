//! [`Leadership`]: proof that this process is the store's only writer, and a watch on losing it.
//!
//! A leadership holds the lock (the SQLite lock file or the PostgreSQL lock connection) and a
//! monitor task that re-checks it every second:
//!
//! ```text
//!   Leadership ──owns──► Monitor task ──every 1 s──► PG: SELECT epoch on the lock connection
//!       │                     │                      SQLite: SELECT epoch through the pool
//!       │   lost() ◄── watch ─┘ (true on failure, timeout or a newer epoch)
//!       └── drop ──► stop ──► task closes the lock connection (PG) / ends; the flock is closed
//! ```

use std::fmt;
use std::future::Future;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::{LEADERSHIP_CHECK_INTERVAL, LEADERSHIP_CHECK_TIMEOUT};

/// This process's right to write, from [`crate::Store::acquire_leadership`]. Every write takes
/// it and is fenced on its epoch. Dropping it releases the lock (a standby takes over).
pub struct Leadership {
    epoch: u64,
    cluster_id: u64,
    holder: String,
    lost: watch::Receiver<bool>,
    monitor: Monitor,
    _lock: Option<LockGuard>,
}

/// What keeps other processes out, besides the monitor's PostgreSQL connection.
#[derive(Debug)]
pub(crate) enum LockGuard {
    /// The exclusive lock on `<db>.lock`; closing the file releases it.
    File {
        /// The open lock file.
        _file: std::fs::File,
    },
    /// The in-process lock of an in-memory SQLite store.
    Memory {
        /// The guard of the store's mutex.
        _guard: tokio::sync::OwnedMutexGuard<()>,
    },
}

impl Leadership {
    /// Assembles a leadership and starts its monitor, which runs `probe` every second.
    pub(crate) fn new<P: LockProbe>(
        epoch: u64,
        cluster_id: u64,
        holder: &str,
        lock: Option<LockGuard>,
        probe: P,
    ) -> Self {
        let (lost_tx, lost) = watch::channel(false);
        let monitor = Monitor::spawn(epoch, lost_tx, probe);
        Self {
            epoch,
            cluster_id,
            holder: holder.to_owned(),
            lost,
            monitor,
            _lock: lock,
        }
    }

    /// The epoch this leadership was granted; writes are fenced on it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The holder name recorded in the store.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Cluster id of the store this leadership belongs to.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Resolves once the leadership is gone: the PostgreSQL lock connection failed its periodic
    /// check (or timed out), or the store records a newer epoch. The server should stop
    /// accepting changes then; its writes would fail with [`crate::StoreError::Deposed`] anyway
    /// once a standby took over.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the monitor ended without saying so; treat that as lost too.
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Whether [`Leadership::lost`] has resolved.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow() || self.lost.has_changed().is_err()
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("epoch", &self.epoch)
            .field("cluster_id", &format_args!("{:#018x}", self.cluster_id))
            .field("holder", &self.holder)
            .field("lost", &self.is_lost())
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

/// How a backend's monitor verifies that its leadership still stands.
pub(crate) trait LockProbe: Send + 'static {
    /// Whether a failed check means the lock is gone (PostgreSQL: the lock lives on the checked
    /// connection) rather than a possibly transient error (SQLite: the flock does not depend on
    /// the pool).
    const ERROR_IS_LOSS: bool;

    /// The leader epoch the store records now.
    fn current_epoch(&mut self) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Lets go of the lock, if the probe owns it (closes the PostgreSQL lock connection).
    fn release(self) -> impl Future<Output = ()> + Send;
}

/// The monitor task; dropping it stops the task, which then releases what the probe owns.
#[derive(Debug)]
struct Monitor {
    stop: Option<oneshot::Sender<()>>,
    _task: JoinHandle<()>,
}

impl Monitor {
    fn spawn<P: LockProbe>(epoch: u64, lost: watch::Sender<bool>, mut probe: P) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(LEADERSHIP_CHECK_INTERVAL) => {}
                }
                let checked =
                    tokio::time::timeout(LEADERSHIP_CHECK_TIMEOUT, probe.current_epoch()).await;
                match checked {
                    Ok(Ok(current)) if current == epoch => continue,
                    Ok(Ok(current)) => {
                        tracing::warn!(mine = epoch, current, "leadership lost: a newer leader");
                    }
                    Ok(Err(error)) if P::ERROR_IS_LOSS => {
                        tracing::warn!(epoch, %error, "leadership lost: lock connection failed");
                    }
                    Err(_) if P::ERROR_IS_LOSS => {
                        tracing::warn!(epoch, "leadership lost: lock connection timed out");
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(epoch, %error, "cannot check leadership; the lock is still held");
                        continue;
                    }
                    Err(_) => continue,
                }
                lost.send_replace(true);
                break;
            }
            probe.release().await;
        });
        Self {
            stop: Some(stop),
            _task: task,
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // The task ends promptly and releases the lock gracefully; it is not aborted, so that
        // the PostgreSQL connection can say goodbye. If the runtime is shutting down, the task
        // is dropped with it, which closes the socket and so releases the lock as well. A send
        // error means the task already ended (lost).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

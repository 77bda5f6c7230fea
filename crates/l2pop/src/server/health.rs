//! What `/healthz` reports beside the role, and the watch over the server's long-lived tasks.
//!
//! The publisher's forwarding task, the RPC service and the HTTP server must run as long as the
//! server does. Each is spawned through [`Health::spawn_watched`]: if it ends before the server
//! asks it to stop (returns, fails or panics), the failure is recorded, `/healthz` answers 503
//! naming it, and the owner loop stops the server with that error, so that systemd restarts
//! it. Nothing dies silently while writes go on being acknowledged.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// Shared by the API (to report) and the server's tasks (to record). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Health {
    failure: watch::Sender<Option<String>>,
    stopping: Arc<AtomicBool>,
    /// The publisher's connection state while this server is active.
    bus: Arc<Mutex<Option<watch::Receiver<bool>>>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            failure: watch::channel(None).0,
            stopping: Arc::default(),
            bus: Arc::default(),
        }
    }
}

impl Health {
    /// Records the first failure (later ones are logged only), unless the server is stopping.
    pub fn record(&self, failure: String) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        tracing::error!(%failure, "server task failed; stopping the server");
        self.failure.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(failure);
                true
            } else {
                false
            }
        });
    }

    /// The recorded failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Resolves with the first recorded failure.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.subscribe();
        loop {
            let seen = failure.borrow_and_update().clone();
            if let Some(failure) = seen {
                return failure;
            }
            // The sender lives in `self`: never closed while this is awaited.
            if failure.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// From now on tasks end because they were asked to: not a failure.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Reports the bus connection as `connected` says (`None`: no bus, standing by).
    pub fn set_bus(&self, connected: Option<watch::Receiver<bool>>) {
        if let Ok(mut bus) = self.bus.lock() {
            *bus = connected;
        }
    }

    /// `Some(true)` when the bus is connected, `Some(false)` when not, `None` without a bus.
    pub fn bus_up(&self) -> Option<bool> {
        self.bus
            .lock()
            .ok()
            .and_then(|bus| bus.as_ref().map(|rx| *rx.borrow()))
    }

    /// Spawns `task`, recording a failure named `name` if it ends before [`Health::stopping`].
    pub fn spawn_watched<F, E>(&self, name: &'static str, task: F) -> Watched
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let inner = tokio::spawn(task);
        let abort = inner.abort_handle();
        let health = self.clone();
        let watcher = tokio::spawn(async move {
            let why = match inner.await {
                Ok(Ok(())) => "ended".to_owned(),
                Ok(Err(error)) => format!("failed: {error}"),
                Err(error) if error.is_panic() => {
                    let panic = error.into_panic();
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    format!("panicked: {message}")
                }
                Err(_) => return,
            };
            health.record(format!("the {name} task {why}"));
        });
        Watched { abort, watcher }
    }
}

/// A watched task: abort it, or wait for it to end.
#[derive(Debug)]
pub struct Watched {
    abort: AbortHandle,
    watcher: JoinHandle<()>,
}

impl Watched {
    /// Stops the task (not a failure).
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// A handle that stops the task (not a failure), kept after [`Watched::join`] took it.
    pub fn abort_handle(&self) -> AbortHandle {
        self.abort.clone()
    }

    /// Waits until the task has ended.
    pub async fn join(self) {
        let _ = self.watcher.await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_task_that_ends_early_is_a_failure_an_aborted_one_is_not() {
        let health = Health::default();
        let aborted = health.spawn_watched("idle", async {
            std::future::pending::<()>().await;
            Ok::<(), String>(())
        });
        aborted.abort();
        aborted.join().await;
        assert_eq!(health.failure(), None);

        let failed = health.spawn_watched("publisher", async { Err::<(), _>("broker gone") });
        failed.join().await;
        assert_eq!(
            health.failed().await,
            "the publisher task failed: broker gone"
        );

        let health = Health::default();
        let panicked = health.spawn_watched("rpc", async {
            if health_check_panics() {
                panic!("boom");
            }
            Ok::<(), String>(())
        });
        panicked.join().await;
        assert_eq!(health.failure().unwrap(), "the rpc task panicked: boom");

        let health = Health::default();
        health.stopping();
        health
            .spawn_watched("http", async { Ok::<(), String>(()) })
            .join()
            .await;
        assert_eq!(health.failure(), None);
    }

    fn health_check_panics() -> bool {
        true
    }
}

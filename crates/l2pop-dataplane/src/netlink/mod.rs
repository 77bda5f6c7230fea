//! The netlink backend (feature `netlink`): [`Netlink`] observes the kernel with rtnetlink dumps
//! and executes ops through the pipelined [`writer`]; [`Events`] turns link and neighbour
//! notifications into "device changed" signals.
//!
//! Namespaces: every socket is opened on a dedicated thread that first enters
//! `/run/netns/NAME` (`setns(CLONE_NEWNET)`) and then creates the sockets inside a
//! `Handle::enter()` guard of the caller's tokio runtime. A socket stays in the namespace it was
//! created in, so the agent process and its other sockets remain in the root namespace.
//!
//! ```text
//!  caller task ──observe()──> rtnetlink Handle ──> connection task ──> socket (netns)
//!              ──execute()──> spawn_blocking ──> Writer ──────────────> socket (netns)
//!  Events::next() <── connection task <── multicast socket (RTNLGRP_LINK|RTNLGRP_NEIGH, netns)
//! ```

mod events;
mod observe;
mod writer;

use std::fs::File;
use std::sync::{Arc, Mutex};

use nix::sched::{CloneFlags, setns};
use tokio::task::JoinHandle;

pub use events::{DeviceChanged, Events};
use writer::Writer;

use crate::error::{ConnectError, KernelError, ObserveError};
use crate::{Dataplane, Observed, Op};

/// The kernel of one network namespace, reached over rtnetlink.
pub struct Netlink {
    netns: Option<String>,
    handle: rtnetlink::Handle,
    connection: JoinHandle<()>,
    writer: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("netns", &self.netns)
            .finish_non_exhaustive()
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// `NAME` → `/run/netns/NAME` (as `ip netns` names them); a value with a `/` is a path.
pub fn netns_path(netns: &str) -> String {
    if netns.contains('/') {
        netns.to_owned()
    } else {
        format!("/run/netns/{netns}")
    }
}

/// Runs `open` on a fresh thread inside `netns` (or the current namespace), with the caller's
/// runtime entered so tokio sockets register with it. The thread ends afterwards, so no thread
/// of the process stays in the namespace.
pub(crate) async fn in_netns<T, F>(netns: Option<&str>, open: F) -> Result<T, ConnectError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ConnectError> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let path = netns.map(netns_path);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("l2pop-netns".into())
        .spawn(move || {
            let result = (|| {
                if let Some(path) = path {
                    let file = File::open(&path).map_err(|source| ConnectError::OpenNetns {
                        path: path.clone(),
                        source,
                    })?;
                    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| {
                        ConnectError::EnterNetns {
                            path,
                            message: e.desc().to_lowercase(),
                        }
                    })?;
                }
                let _guard = runtime.enter();
                open()
            })();
            let _ = tx.send(result);
        })
        .map_err(|_| ConnectError::Thread)?;
    rx.await.map_err(|_| ConnectError::Thread)?
}

impl Netlink {
    /// Opens the sockets in the named namespace (`ip netns` name or path), or in the caller's
    /// namespace for `None`. Must be called inside a tokio runtime; the connection task is
    /// spawned on it and aborted when the `Netlink` is dropped.
    pub async fn connect(netns: Option<&str>) -> Result<Self, ConnectError> {
        let (handle, connection, writer) = in_netns(netns, || {
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(ConnectError::Socket)?;
            let connection = tokio::spawn(connection);
            let writer = Writer::open().map_err(ConnectError::Socket)?;
            Ok((handle, connection, writer))
        })
        .await?;
        Ok(Netlink {
            netns: netns.map(str::to_owned),
            handle,
            connection,
            writer: Arc::new(Mutex::new(writer)),
        })
    }

    /// The namespace this backend acts in (`None`: the caller's).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Subscribes to `RTNLGRP_LINK` and `RTNLGRP_NEIGH` in the same namespace.
    pub async fn events(&self) -> Result<Events, ConnectError> {
        Events::open(self.netns.as_deref()).await
    }

    /// Dumps links (`RTM_GETLINK`), the VXLAN devices' FDB (`RTM_GETNEIGH`, `AF_BRIDGE`) and
    /// their permanent neighbours (`RTM_GETNEIGH`, `AF_INET`/`AF_INET6`).
    pub async fn observe(&self) -> Result<Observed, ObserveError> {
        let (observed, indexes) = observe::dump(&self.handle).await?;
        if let Ok(mut writer) = self.writer.lock() {
            writer.set_indexes(indexes);
        }
        Ok(observed)
    }

    /// Executes `ops` in order, pipelined: up to 256 requests in flight, one `sendmsg` per
    /// batch; one result per op.
    pub async fn execute(&self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let writer = Arc::clone(&self.writer);
        let owned = ops.to_vec();
        let joined = tokio::task::spawn_blocking(move || match writer.lock() {
            Ok(mut writer) => writer.execute(&owned),
            Err(poisoned) => poisoned.into_inner().execute(&owned),
        })
        .await;
        joined.unwrap_or_else(|_| {
            ops.iter()
                .map(|op| {
                    Err(KernelError {
                        op: op.clone(),
                        errno: 5,
                        message: "executor thread panicked".into(),
                    })
                })
                .collect()
        })
    }
}

impl Dataplane for Netlink {
    async fn observe(&mut self) -> Result<Observed, ObserveError> {
        Netlink::observe(self).await
    }

    async fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        Netlink::execute(self, ops).await
    }
}

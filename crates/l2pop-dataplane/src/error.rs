//! The crate's errors: a kernel refusing one op ([`KernelError`]) and a failed dump
//! ([`ObserveError`]), plus the few errno values the planner's ops meet.

use crate::Op;

/// `EEXIST`: the link or the exclusive entry exists already.
pub const EEXIST: i32 = 17;
/// `ENOENT`: the FDB or neighbour entry to delete is missing.
pub const ENOENT: i32 = 2;
/// `ENODEV`: no link of that name.
pub const ENODEV: i32 = 19;
/// `EINVAL`: malformed request (a name longer than 15 bytes, ...).
pub const EINVAL: i32 = 22;
/// `EBUSY`.
pub const EBUSY: i32 = 16;
/// `EOPNOTSUPP`: e.g. `NLM_F_REPLACE` on an all-zero FDB entry, a master that is no bridge.
pub const EOPNOTSUPP: i32 = 95;
/// `ENOBUFS`: a netlink socket buffer overflowed.
pub const ENOBUFS: i32 = 105;

/// The lowercase `strerror` text of the errno values above.
pub fn errno_text(errno: i32) -> &'static str {
    match errno {
        EEXIST => "file exists",
        ENOENT => "no such file or directory",
        ENODEV => "no such device",
        EINVAL => "invalid argument",
        EBUSY => "device or resource busy",
        EOPNOTSUPP => "operation not supported",
        ENOBUFS => "no buffer space available",
        1 => "operation not permitted",
        _ => "kernel error",
    }
}

/// The kernel (or the fake) refused one op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kernel refused `{op}`: {message} (errno {errno})")]
pub struct KernelError {
    pub op: Op,
    /// Positive errno, as the netlink ack carries it negated.
    pub errno: i32,
    pub message: String,
}

impl KernelError {
    /// An error with the `strerror` text of `errno`.
    pub fn new(op: &Op, errno: i32) -> Self {
        KernelError {
            op: op.clone(),
            errno,
            message: errno_text(errno).to_owned(),
        }
    }

    pub fn is_exists(&self) -> bool {
        self.errno == EEXIST
    }

    pub fn is_not_found(&self) -> bool {
        self.errno == ENOENT || self.errno == ENODEV
    }
}

/// Reading the kernel state failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// A dump request was refused or its socket failed.
    #[error("{what} dump failed: {message}")]
    Dump { what: &'static str, message: String },
    /// The fake was told to fail its next observation.
    #[error("observe failed: {}", errno_text(*.0))]
    Injected(i32),
}

/// Opening the netlink connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot open network namespace {path}: {source}")]
    OpenNetns {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter network namespace {path}: {message}")]
    EnterNetns { path: String, message: String },
    #[error("cannot open netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("netlink connection thread died")]
    Thread,
}

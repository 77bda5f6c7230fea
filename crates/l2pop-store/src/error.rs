//! [`StoreError`]: every way a store operation can fail, named for what failed.

use std::io;
use std::path::PathBuf;

/// A failed store operation. Database failures carry the sqlx error as their source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error(
        "unsupported store url {url:?}: expected sqlite:PATH, sqlite://PATH, \
         postgres://… or postgresql://…"
    )]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
    },
    /// The folder of an SQLite database file did not exist and could not be created.
    #[error(
        "cannot create the folder {path} of the SQLite store: create it (writable by this \
         user) or choose another path"
    )]
    CreateFolder {
        /// The missing folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An existing SQLite file is not an l2pop store (empty, not SQLite, or never initialised):
    /// refused rather than silently made a new, empty cluster.
    #[error(
        "{path} {reason}: not an l2pop store. If it should be one, restore it from a backup; \
         to start a new, empty cluster there instead, remove the file or start once with \
         --init (store.init = true)"
    )]
    NotAStore {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it: "is empty (0 bytes)", "has no SQLite header", "has no
        /// l2pop schema".
        reason: &'static str,
    },
    /// The database file exists but could not be inspected.
    #[error("cannot read the store file {path}")]
    Inspect {
        /// The database file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Connecting to (or creating) the database failed.
    #[error("cannot open store {url}")]
    Open {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("cannot migrate the store schema of {url}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The database was written by a newer l2pop whose schema this build does not know.
    #[error(
        "store schema version {found} is newer than the newest this build knows ({supported}); \
         run a newer l2pop"
    )]
    SchemaTooNew {
        /// Highest migration version recorded in the database.
        found: i64,
        /// Highest migration version compiled into this build.
        supported: i64,
    },
    /// Reading or initialising the `meta` table (cluster id, log floor) failed.
    #[error("cannot read or write store metadata {key:?}")]
    Meta {
        /// The meta key.
        key: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The SQLite leader lock file could not be opened or locked.
    #[error("cannot lock leader lock file {path}")]
    LockFile {
        /// Path of `<db>.lock`.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Taking the leader lock or bumping the leader epoch failed.
    #[error("cannot acquire leadership as {holder:?}")]
    Leadership {
        /// The holder name this process announced.
        holder: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Another process became leader after this one: the write was refused and nothing written.
    #[error("deposed: this process led at epoch {mine} but the store is now at epoch {current}")]
    Deposed {
        /// The epoch of the [`crate::Leadership`] used for the write.
        mine: u64,
        /// The epoch recorded in the store.
        current: u64,
    },
    /// The [`crate::Leadership`] was acquired from a store with a different cluster id.
    #[error("leadership of cluster {leadership:#018x} used on the store of cluster {store:#018x}")]
    ForeignLeadership {
        /// Cluster id of the store the leadership came from.
        leadership: u64,
        /// Cluster id of the store written to.
        store: u64,
    },
    /// A batch does not continue the log: its first seq is not `last_seq + 1` (a gap or a
    /// duplicate). Nothing was written.
    #[error(
        "log append out of sequence: the log ends at seq {last}, so the batch must start at \
         seq {expected}, not {first}"
    )]
    OutOfSequence {
        /// The last seq in the log.
        last: u64,
        /// `last + 1`.
        expected: u64,
        /// The batch's first seq.
        first: u64,
    },
    /// The seqs inside a batch are not consecutive. Nothing was written.
    #[error("log batch not contiguous: record {index} has seq {found}, expected {expected}")]
    BatchNotContiguous {
        /// Position in the batch.
        index: usize,
        /// The seq it should have.
        expected: u64,
        /// The seq it has.
        found: u64,
    },
    /// A seq (or watermark) does not fit the databases' signed 64-bit integers.
    #[error("seq {0} is too large for the store (at most 2^63-1)")]
    SeqOutOfRange(u64),
    /// Writing the command log failed; the transaction was rolled back.
    #[error("cannot append {count} records from seq {first} to the command log")]
    Append {
        /// The batch's first seq.
        first: u64,
        /// Number of records in the batch.
        count: usize,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Reading the command log failed.
    #[error("cannot read the command log after seq {after}")]
    ReadLog {
        /// Records with seq greater than this were being read.
        after: u64,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The records wanted were removed by [`crate::Store::compact`]: start from the snapshot.
    #[error(
        "log records through seq {floor} were compacted into a snapshot; cannot read after \
         seq {after}"
    )]
    LogCompacted {
        /// Records with seq greater than this were asked for.
        after: u64,
        /// Highest compacted seq.
        floor: u64,
    },
    /// The log read back is not contiguous (compacted concurrently, or damaged).
    #[error("command log gap: expected seq {expected}, found seq {found}")]
    LogGap {
        /// The seq that should have come next.
        expected: u64,
        /// The seq that came.
        found: u64,
    },
    /// Reading or writing a published watermark failed.
    #[error("cannot read or write the published watermark of stream {stream:?}")]
    Watermark {
        /// The stream name.
        stream: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A snapshot was offered for a seq the log has not reached.
    #[error("snapshot at seq {seq} is ahead of the command log, which ends at seq {last}")]
    SnapshotAhead {
        /// The snapshot's seq.
        seq: u64,
        /// The last seq in the log.
        last: u64,
    },
    /// Saving, loading or compacting with snapshots failed.
    #[error("cannot {action} snapshot")]
    Snapshot {
        /// What was being done: "save", "load" or "compact to".
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A value in the database is not what this schema allows.
    #[error("corrupt store: {what} holds {value:?}")]
    Corrupt {
        /// Which column or key.
        what: &'static str,
        /// The offending value.
        value: String,
    },
}

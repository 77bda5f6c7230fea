//! l2pop's durable state: an append-only command log, per-stream published watermarks and
//! optional snapshots, in SQLite (one file, the default) or PostgreSQL (shared by an active
//! server and its standbys), with leader election and write fencing.
//!
//! The server owns a deterministic state machine. Every accepted change is a *command* (a JSON
//! text the store never looks into) with a server-assigned seq `1, 2, 3, …`. Data flows:
//!
//! ```text
//!  Store::open(url) ──► migrate, cluster_id
//!        │
//!  acquire_leadership(poll) ──► lock (flock on <db>.lock | pg advisory lock)
//!        │                      then leader.epoch += 1, committed
//!        ▼
//!  read_log(0) ──► replay into the engine           published(stream) ──► resume publishing
//!        │
//!  append(&leadership, batch) ──► one transaction: fence on epoch, check seq, insert
//!  set_published(&leadership, stream, seq)           (acknowledge to clients after it returns)
//!  save_snapshot / compact                            Leadership::lost() ──► stop serving
//! ```
//!
//! Both backends run one implementation of the log, watermarks, snapshots and fencing
//! (`sql.rs`, generic over `sqlx::Database`) and differ in a dialect table of statements;
//! opening and leadership are their own (`sqlite.rs`: a lock file; `postgres.rs`: an advisory
//! lock).
//!
//! # Fencing
//! A lock alone cannot stop a writer that *believes* it still leads (a paused process, a lock
//! connection that died while a transaction was in flight). So every new leader first commits
//! `leader.epoch += 1` and only then reads the log, and every write transaction starts by
//! re-asserting its own epoch on that same row (`UPDATE leader SET epoch = epoch WHERE id = 1
//! AND epoch = mine`). See [`Store::append`] for why this makes a deposed writer harmless.
//!
//! # Durability
//! [`Store::append`] returns only after the transaction committed. SQLite runs in WAL mode with
//! `synchronous=FULL`, so a committed transaction survives `kill -9` and power loss; PostgreSQL
//! relies on its own `synchronous_commit` (on by default).

mod error;
mod leadership;
mod location;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

pub use error::StoreError;
pub use leadership::Leadership;
pub use location::redact as redact_url;
pub use postgres::LEADER_LOCK_KEY;

use location::Location;

/// Number of records [`LogReader::next_chunk`] fetches per query unless told otherwise.
pub const DEFAULT_READ_CHUNK: u32 = 10_000;

/// One command of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Position in the log, assigned by the server: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// The command, a JSON text the store stores verbatim.
    pub command: String,
}

/// Serialized engine state after applying every command up to and including `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last command folded into `state`.
    pub seq: u64,
    /// The serialized state; opaque to the store.
    pub state: Vec<u8>,
}

/// The leadership row as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Incremented by every new leader; 0 before the first.
    pub epoch: u64,
    /// Name the leader announced (`host:pid` by default); empty before the first.
    pub holder: String,
    /// When it became leader, as the database prints timestamps; `None` before the first.
    pub since: Option<String>,
}

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite, one file (or in memory) on one host.
    Sqlite,
    /// PostgreSQL, possibly shared by several server processes.
    Postgres,
}

/// Whether opening may create a new, empty store (a new cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Init {
    /// Only where nothing exists yet: an SQLite path with no file (the first start), or a
    /// PostgreSQL database without l2pop's tables. An existing SQLite file that is empty, not
    /// SQLite, or has no l2pop schema is refused with [`StoreError::NotAStore`].
    #[default]
    IfAbsent,
    /// Also on an existing empty SQLite file or database (`l2pop server --init`). A file that
    /// is not SQLite is still refused.
    Explicit,
}

/// A handle on the store. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    cluster_id: u64,
    url: Arc<str>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// Evaluates `$call` with `$store` bound to the backend's shared SQL store ([`sql::SqlStore`]).
macro_rules! sql {
    ($backend:expr, $store:ident => $call:expr) => {
        match $backend {
            Backend::Sqlite(backend) => {
                let $store = &backend.sql;
                $call
            }
            Backend::Postgres(backend) => {
                let $store = &backend.sql;
                $call
            }
        }
    };
}

impl Store {
    /// Opens (creating if missing) the store at `url`, applies pending schema migrations, and
    /// creates the random cluster id on first open.
    ///
    /// URLs: `sqlite:PATH`, `sqlite://PATH` (WAL, `synchronous=FULL`, 5 s busy timeout),
    /// `sqlite::memory:` (private to this handle and its clones), `postgres://…` and
    /// `postgresql://…`. A database whose recorded schema version is newer than this build's is
    /// refused with [`StoreError::SchemaTooNew`].
    ///
    /// A new store is created only where nothing exists yet ([`Init::IfAbsent`]); see
    /// [`Store::open_with`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, Init::IfAbsent).await
    }

    /// [`Store::open`], saying whether an existing empty database may become a new store.
    pub async fn open_with(url: &str, init: Init) -> Result<Store, StoreError> {
        let location = Location::parse(url)?;
        let redacted = location::redact(url);
        let backend = match location {
            Location::SqliteFile(path) => {
                Backend::Sqlite(sqlite::Sqlite::open_file(&path, &redacted, init).await?)
            }
            Location::SqliteMemory => {
                Backend::Sqlite(sqlite::Sqlite::open_memory(&redacted).await?)
            }
            Location::Postgres(url) => {
                Backend::Postgres(postgres::Postgres::open(&url, &redacted).await?)
            }
        };
        let cluster_id = sql!(&backend, store => store.init_cluster_id(new_cluster_id()).await?);
        tracing::debug!(url = %redacted, cluster_id = format_args!("{cluster_id:#018x}"), "store opened");
        Ok(Store {
            backend,
            cluster_id,
            url: redacted.into(),
        })
    }

    /// The random id this store was given when it was first created; it never changes.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The store's URL with any password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database backs this store.
    pub fn backend(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The highest schema migration version applied to the database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        sql!(&self.backend, store => store.schema_version().await)
    }

    /// Waits, trying every `poll`, until this process is the only writer, announcing itself
    /// as `host:pid`. See [`Store::acquire_leadership_as`].
    pub async fn acquire_leadership(&self, poll: Duration) -> Result<Leadership, StoreError> {
        self.acquire_leadership_as(&default_holder(), poll).await
    }

    /// Waits, trying every `poll`, until this process is the only writer, recorded as `holder`.
    ///
    /// PostgreSQL: `pg_try_advisory_lock` on a dedicated connection kept for the leadership's
    /// lifetime (a standby polls the same way; it survives the database restarting while it
    /// waits). SQLite: an exclusive `flock` on the sibling file `<db>.lock`, which also keeps a
    /// second handle in the same process out. Once the lock is held, the leader epoch is bumped
    /// in its own committed transaction; only after this returns may the caller read the log.
    /// Dropping the [`Leadership`] releases the lock.
    pub async fn acquire_leadership_as(
        &self,
        holder: &str,
        poll: Duration,
    ) -> Result<Leadership, StoreError> {
        let leadership = match &self.backend {
            Backend::Sqlite(b) => b.acquire_leadership(holder, poll, self.cluster_id).await?,
            Backend::Postgres(b) => b.acquire_leadership(holder, poll, self.cluster_id).await?,
        };
        tracing::info!(
            url = %self.url,
            holder,
            epoch = leadership.epoch(),
            "leadership acquired"
        );
        Ok(leadership)
    }

    /// The leadership row as the store records it now.
    pub async fn leader(&self) -> Result<LeaderInfo, StoreError> {
        sql!(&self.backend, store => store.leader().await)
    }

    /// Appends `records` to the log in one transaction, returning once it committed; an empty
    /// batch is a no-op. The batch must continue the log exactly: seqs consecutive and the first
    /// one `last_seq() + 1`; otherwise nothing is written and the error says why
    /// ([`StoreError::OutOfSequence`], [`StoreError::BatchNotContiguous`]).
    ///
    /// The transaction first re-asserts this leadership's epoch on the single `leader` row
    /// (`UPDATE leader SET epoch = epoch WHERE id = 1 AND epoch = mine`; no row →
    /// [`StoreError::Deposed`], nothing written), then reads the log head, then inserts all
    /// rows in one statement (PostgreSQL `UNNEST … WITH ORDINALITY`, SQLite `json_each`).
    ///
    /// Why a deposed writer cannot write after a new leader read the log: the new leader
    /// commits `epoch + 1` on the same row *before* it reads. Writes to that row are serialized
    /// (PostgreSQL row lock held until commit; SQLite's single writer lock), so an old append
    /// either (a) took the row first — then the new leader's bump waited for it to commit, and
    /// its records are visible to the read that follows the bump — or (b) comes after the bump
    /// committed (or waited on it, and PostgreSQL re-evaluates the `WHERE` on the new row) —
    /// then it matches no row and fails before inserting anything. There is no third order, so
    /// a new leader never misses a record that an old leader had acknowledged, and nothing is
    /// appended behind its back. The head is read after the row lock is held, so concurrent
    /// appends by one leader are serialized too and the seq check is exact.
    pub async fn append(
        &self,
        leadership: &Leadership,
        records: &[LogRecord],
    ) -> Result<(), StoreError> {
        self.check_leadership(leadership)?;
        let Some(first_record) = records.first() else {
            return Ok(());
        };
        let first = first_record.seq;
        for (index, record) in records.iter().enumerate() {
            let expected = first.saturating_add(index as u64);
            if record.seq != expected {
                return Err(StoreError::BatchNotContiguous {
                    index,
                    expected,
                    found: record.seq,
                });
            }
        }
        if let Some(last) = records.last() {
            to_db(first)?;
            to_db(last.seq)?;
        }
        let epoch = leadership.epoch();
        sql!(&self.backend, store => store.append(epoch, records).await)
    }

    /// Reads every record with seq greater than `after`, in order, chunk by chunk.
    ///
    /// Memory: at most one chunk ([`DEFAULT_READ_CHUNK`] records unless changed with
    /// [`LogReader::chunk_size`]) is held at a time, and no transaction or cursor stays open
    /// between chunks (each chunk is one keyset query `seq > cursor ORDER BY seq LIMIT n`), so a
    /// long replay neither pins the database nor blocks the writer. Records appended while
    /// reading are returned too. [`LogReader::read_to_end`] collects everything into one `Vec`.
    pub fn read_log(&self, after: u64) -> LogReader {
        LogReader {
            store: self.clone(),
            cursor: after,
            chunk: DEFAULT_READ_CHUNK,
            checked_floor: false,
        }
    }

    /// The seq of the last command in the log (0 if none). Compaction does not lower it.
    pub async fn last_seq(&self) -> Result<u64, StoreError> {
        sql!(&self.backend, store => store.last_seq().await)
    }

    /// The highest seq the broker confirmed for notification `stream` (0 if never set).
    pub async fn published(&self, stream: &str) -> Result<u64, StoreError> {
        sql!(&self.backend, store => store.published(stream).await)
    }

    /// Records that the broker confirmed `stream` up to `seq`. Monotonic: a lower `seq` than the
    /// recorded one leaves it unchanged. Fenced like [`Store::append`].
    pub async fn set_published(
        &self,
        leadership: &Leadership,
        stream: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.check_leadership(leadership)?;
        to_db(seq)?;
        let epoch = leadership.epoch();
        sql!(&self.backend, store => store.set_published(epoch, stream, seq).await)
    }

    /// Saves `state`, the engine state after applying commands `1..=seq` (replacing any snapshot
    /// at the same seq). `seq` must not exceed [`Store::last_seq`]. Fenced like
    /// [`Store::append`].
    pub async fn save_snapshot(
        &self,
        leadership: &Leadership,
        seq: u64,
        state: &[u8],
    ) -> Result<(), StoreError> {
        self.check_leadership(leadership)?;
        to_db(seq)?;
        let epoch = leadership.epoch();
        sql!(&self.backend, store => store.save_snapshot(epoch, seq, state).await)
    }

    /// The snapshot with the highest seq, if any.
    pub async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        sql!(&self.backend, store => store.latest_snapshot().await)
    }

    /// Deletes the log records covered by the latest snapshot and all older snapshots, returning
    /// how many records were deleted. Afterwards `read_log(after)` with `after` below the
    /// snapshot's seq fails with [`StoreError::LogCompacted`]: load the snapshot first. Fenced
    /// like [`Store::append`].
    pub async fn compact(&self, leadership: &Leadership) -> Result<u64, StoreError> {
        self.check_leadership(leadership)?;
        let epoch = leadership.epoch();
        sql!(&self.backend, store => store.compact(epoch).await)
    }

    /// Closes the connection pool; outstanding [`Leadership`]s keep their own lock.
    pub async fn close(&self) {
        sql!(&self.backend, store => store.close().await)
    }

    fn check_leadership(&self, leadership: &Leadership) -> Result<(), StoreError> {
        if leadership.cluster_id() == self.cluster_id {
            Ok(())
        } else {
            Err(StoreError::ForeignLeadership {
                leadership: leadership.cluster_id(),
                store: self.cluster_id,
            })
        }
    }

    async fn read_chunk(&self, after: u64, limit: u32) -> Result<Vec<LogRecord>, StoreError> {
        sql!(&self.backend, store => store.read_chunk(after, limit).await)
    }

    async fn log_floor(&self) -> Result<u64, StoreError> {
        sql!(&self.backend, store => store.log_floor().await)
    }
}

/// Reads the log in order, one bounded chunk per call; made by [`Store::read_log`].
#[derive(Debug)]
pub struct LogReader {
    store: Store,
    cursor: u64,
    chunk: u32,
    checked_floor: bool,
}

impl LogReader {
    /// Sets how many records each [`LogReader::next_chunk`] fetches (at least 1).
    #[must_use]
    pub fn chunk_size(mut self, records: u32) -> Self {
        self.chunk = records.max(1);
        self
    }

    /// The seq of the last record returned so far (the `after` given at first).
    pub fn position(&self) -> u64 {
        self.cursor
    }

    /// The next records in seq order, or `None` once the end of the log is reached (a later
    /// call returns records appended since). Fails with [`StoreError::LogCompacted`] if the
    /// records wanted were compacted, also when that happened after this reader started, and
    /// with [`StoreError::LogGap`] if the log is not contiguous from the starting point.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<LogRecord>>, StoreError> {
        if !self.checked_floor {
            let floor = self.store.log_floor().await?;
            if self.cursor < floor {
                return Err(StoreError::LogCompacted {
                    after: self.cursor,
                    floor,
                });
            }
            self.checked_floor = true;
        }
        let records = self.store.read_chunk(self.cursor, self.chunk).await?;
        // Nothing after the cursor, or not the next record: the log may have been compacted
        // past this reader since it started (a standby following the active server). Then its
        // end is not the log's end, nor a gap: it must start again from the snapshot.
        if records
            .first()
            .is_none_or(|r| r.seq != self.cursor.saturating_add(1))
        {
            let floor = self.store.log_floor().await?;
            if self.cursor < floor {
                return Err(StoreError::LogCompacted {
                    after: self.cursor,
                    floor,
                });
            }
        }
        for record in &records {
            let expected = self.cursor.saturating_add(1);
            if record.seq != expected {
                return Err(StoreError::LogGap {
                    expected,
                    found: record.seq,
                });
            }
            self.cursor = record.seq;
        }
        Ok((!records.is_empty()).then_some(records))
    }

    /// Reads all remaining records into memory (about the size of the commands themselves).
    pub async fn read_to_end(mut self) -> Result<Vec<LogRecord>, StoreError> {
        let mut all = Vec::new();
        while let Some(mut chunk) = self.next_chunk().await? {
            all.append(&mut chunk);
        }
        Ok(all)
    }
}

/// Converts a seq to the databases' BIGINT.
fn to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::SeqOutOfRange(seq))
}

/// Converts a BIGINT read back (never negative by the schema's CHECKs) to a seq.
fn from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

fn parse_u64(what: &'static str, value: &str) -> Result<u64, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_owned(),
    })
}

/// Refuses a batch starting at `first` that does not continue a log ending at `last`.
fn check_continues(last: u64, first: u64) -> Result<(), StoreError> {
    let expected = last.saturating_add(1);
    if first == expected {
        Ok(())
    } else {
        Err(StoreError::OutOfSequence {
            last,
            expected,
            first,
        })
    }
}

/// Refuses a database whose highest recorded migration (`found`) is unknown to `migrator`.
fn check_schema_version(
    found: Option<i64>,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), StoreError> {
    let supported = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    match found {
        Some(found) if found > supported => Err(StoreError::SchemaTooNew { found, supported }),
        _ => Ok(()),
    }
}

fn new_cluster_id() -> u64 {
    // A v4 UUID is 122 random bits from the OS; its first half is ample for an id.
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// `host:pid`, the holder name [`Store::acquire_leadership`] records.
fn default_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// How often a [`Leadership`] re-checks its lock and epoch.
const LEADERSHIP_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long one such check may take before the leadership counts as lost.
const LEADERSHIP_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;

//! The SQLite backend: one database file on one host (or a private in-memory database).
//!
//! Connections use WAL with `synchronous=FULL` (the WAL is fsynced at every commit, so a
//! commit that returned survives `kill -9` and power loss) and a busy timeout. Every write
//! transaction starts with `BEGIN IMMEDIATE`, taking SQLite's single writer lock up front, so
//! the fence, the head check and the insert see one consistent log. Readers run concurrently
//! from the same pool. Leadership is an exclusive `flock` on `<db>.lock`.

use std::fs::{OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use crate::leadership::{LockGuard, LockProbe};
use crate::location::Location;
use crate::{
    Init, LeaderInfo, Leadership, LogRecord, Snapshot, StoreError, from_db, parse_u64, to_db,
};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a connection waits for another's write lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in a file store's pool (one writer at a time, the rest read).
const POOL_SIZE: u32 = 4;
/// SQLite's "now" for the `since`/`updated_at` columns (UTC, milliseconds), as a literal for
/// `concat!`.
macro_rules! now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    };
}

/// An open SQLite store.
#[derive(Debug, Clone)]
pub(crate) struct Sqlite {
    pool: SqlitePool,
    lock: LockTarget,
}

/// What [`Sqlite::acquire_leadership`] locks.
#[derive(Debug, Clone)]
enum LockTarget {
    /// `<db>.lock`, flocked exclusively.
    File(PathBuf),
    /// An in-memory store is private to this process: a mutex suffices.
    Memory(Arc<tokio::sync::Mutex<()>>),
}

impl Sqlite {
    /// Opens or creates the database file at `path` (and its folder, see [`create_folder`])
    /// and migrates it.
    pub(crate) async fn open_file(path: &Path, url: &str, init: Init) -> Result<Self, StoreError> {
        create_folder(path)?;
        let existing = inspect(path, init)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|source| open_error(url, source))?;
        let existing = existing.then_some(path);
        Self::init(
            pool,
            LockTarget::File(Location::lock_path(path)),
            url,
            existing,
        )
        .await
    }

    /// Creates a private in-memory database; it lives on one pooled connection that is never
    /// closed while the store is open.
    pub(crate) async fn open_memory(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|source| open_error(url, source))?
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| open_error(url, source))?;
        Self::init(pool, LockTarget::Memory(Arc::default()), url, None).await
    }

    /// Migrates the schema. `existing`: the file at that path must already be an l2pop store
    /// (it has the migrations table), else [`StoreError::NotAStore`] and nothing is written.
    async fn init(
        pool: SqlitePool,
        lock: LockTarget,
        url: &str,
        existing: Option<&Path>,
    ) -> Result<Self, StoreError> {
        let migrate_error = |source| StoreError::Migrate {
            url: url.to_owned(),
            source,
        };
        let recorded: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&pool)
        .await
        .map_err(|e| migrate_error(MigrateError::from(e)))?;
        if recorded.is_some() {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| migrate_error(MigrateError::from(e)))?;
            crate::check_schema_version(found, &MIGRATOR)?;
        } else if let Some(path) = existing {
            pool.close().await;
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
                reason: "has no l2pop schema",
            });
        }
        MIGRATOR.run(&pool).await.map_err(migrate_error)?;
        Ok(Self { pool, lock })
    }

    /// Records `candidate` as the cluster id unless one exists; returns the recorded one.
    /// Writes only on the first open, so opening a standby never waits for the writer.
    pub(crate) async fn init_cluster_id(&self, candidate: u64) -> Result<u64, StoreError> {
        let meta_error = |source| StoreError::Meta {
            key: "cluster_id",
            source,
        };
        let select = "SELECT value FROM meta WHERE key = 'cluster_id'";
        let mut value: Option<String> = sqlx::query_scalar(select)
            .fetch_optional(&self.pool)
            .await
            .map_err(meta_error)?;
        if value.is_none() {
            // A concurrent first open may win; then its id is the one read back.
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('cluster_id', ?1) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(candidate.to_string())
            .execute(&self.pool)
            .await
            .map_err(meta_error)?;
            value = Some(
                sqlx::query_scalar(select)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(meta_error)?,
            );
        }
        parse_u64("meta.cluster_id", value.as_deref().unwrap_or_default())
    }

    pub(crate) async fn schema_version(&self) -> Result<i64, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(|source| StoreError::Meta {
                    key: "schema_version",
                    source,
                })?;
        Ok(version.unwrap_or(0))
    }

    pub(crate) async fn acquire_leadership(
        &self,
        holder: &str,
        poll: Duration,
        cluster_id: u64,
    ) -> Result<Leadership, StoreError> {
        let poll = poll.max(Duration::from_millis(1));
        let guard = match &self.lock {
            LockTarget::File(path) => {
                let lock_error = |source| StoreError::LockFile {
                    path: path.clone(),
                    source,
                };
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(lock_error)?;
                loop {
                    match file.try_lock() {
                        Ok(()) => break,
                        Err(TryLockError::WouldBlock) => tokio::time::sleep(poll).await,
                        Err(TryLockError::Error(source)) => return Err(lock_error(source)),
                    }
                }
                LockGuard::File { _file: file }
            }
            LockTarget::Memory(mutex) => loop {
                match Arc::clone(mutex).try_lock_owned() {
                    Ok(guard) => break LockGuard::Memory { _guard: guard },
                    Err(_) => tokio::time::sleep(poll).await,
                }
            },
        };
        let leadership_error = |source| StoreError::Leadership {
            holder: holder.to_owned(),
            source,
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(leadership_error)?;
        sqlx::query(concat!(
            "UPDATE leader SET epoch = epoch + 1, holder = ?1, since = ",
            now!(),
            " WHERE id = 1"
        ))
        .bind(holder)
        .execute(&mut *tx)
        .await
        .map_err(leadership_error)?;
        let epoch = current_epoch(&mut tx).await.map_err(leadership_error)?;
        tx.commit().await.map_err(leadership_error)?;
        let probe = Probe {
            pool: self.pool.clone(),
        };
        Ok(Leadership::new(
            from_db("leader.epoch", epoch)?,
            cluster_id,
            holder,
            Some(guard),
            probe,
        ))
    }

    pub(crate) async fn leader(&self) -> Result<LeaderInfo, StoreError> {
        let row = sqlx::query("SELECT epoch, holder, since FROM leader WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|source| StoreError::Meta {
                key: "leader",
                source,
            })?;
        let decode = |source| StoreError::Meta {
            key: "leader",
            source,
        };
        Ok(LeaderInfo {
            epoch: from_db("leader.epoch", row.try_get(0).map_err(decode)?)?,
            holder: row.try_get(1).map_err(decode)?,
            since: row.try_get(2).map_err(decode)?,
        })
    }

    pub(crate) async fn append(&self, epoch: u64, records: &[LogRecord]) -> Result<(), StoreError> {
        let first = records.first().map_or(0, |r| r.seq);
        let count = records.len();
        let db = |source| StoreError::Append {
            first,
            count,
            source,
        };
        // One bind for the whole batch: a JSON array of the command texts, unpacked by
        // json_each; the statement text is fixed, so it is prepared once and cached.
        let commands: Vec<&str> = records.iter().map(|r| r.command.as_str()).collect();
        let commands =
            serde_json::to_string(&commands).map_err(|e| db(sqlx::Error::Encode(e.into())))?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        let last = head(&mut tx).await.map_err(db)?;
        crate::check_continues(from_db("command_log.seq", last)?, first)?;
        let inserted = sqlx::query(
            "INSERT INTO command_log (seq, command) SELECT ?1 + key, value FROM json_each(?2)",
        )
        .bind(to_db(first)?)
        .bind(commands)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted != count as u64 {
            return Err(db(sqlx::Error::Protocol(format!(
                "inserted {inserted} rows for {count} records"
            ))));
        }
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn read_chunk(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let db = |source| StoreError::ReadLog { after, source };
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, command FROM command_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(to_db(after)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(seq, command)| {
                Ok(LogRecord {
                    seq: from_db("command_log.seq", seq)?,
                    command,
                })
            })
            .collect()
    }

    pub(crate) async fn last_seq(&self) -> Result<u64, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|source| StoreError::ReadLog { after: 0, source })?;
        let last = head(&mut conn)
            .await
            .map_err(|source| StoreError::ReadLog { after: 0, source })?;
        from_db("command_log.seq", last)
    }

    pub(crate) async fn log_floor(&self) -> Result<u64, StoreError> {
        let floor: Option<i64> =
            sqlx::query_scalar("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'log_floor'")
                .fetch_optional(&self.pool)
                .await
                .map_err(|source| StoreError::Meta {
                    key: "log_floor",
                    source,
                })?;
        from_db("meta.log_floor", floor.unwrap_or(0))
    }

    pub(crate) async fn published(&self, stream: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM published WHERE stream = ?1")
            .bind(stream)
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| StoreError::Watermark {
                stream: stream.to_owned(),
                source,
            })?;
        from_db("published.seq", seq.unwrap_or(0))
    }

    pub(crate) async fn set_published(
        &self,
        epoch: u64,
        stream: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        let db = |source| StoreError::Watermark {
            stream: stream.to_owned(),
            source,
        };
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        sqlx::query(concat!(
            "INSERT INTO published (stream, seq) VALUES (?1, ?2) \
             ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, updated_at = ",
            now!(),
            " WHERE excluded.seq > published.seq"
        ))
        .bind(stream)
        .bind(to_db(seq)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn save_snapshot(
        &self,
        epoch: u64,
        seq: u64,
        state: &[u8],
    ) -> Result<(), StoreError> {
        let db = |source| StoreError::Snapshot {
            action: "save",
            source,
        };
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        let last = from_db("command_log.seq", head(&mut tx).await.map_err(db)?)?;
        if seq > last {
            return Err(StoreError::SnapshotAhead { seq, last });
        }
        sqlx::query(concat!(
            "INSERT INTO snapshot (seq, state) VALUES (?1, ?2) \
             ON CONFLICT (seq) DO UPDATE SET state = excluded.state, created_at = ",
            now!()
        ))
        .bind(to_db(seq)?)
        .bind(state)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, state FROM snapshot ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(|source| StoreError::Snapshot {
                    action: "load",
                    source,
                })?;
        row.map(|(seq, state)| {
            Ok(Snapshot {
                seq: from_db("snapshot.seq", seq)?,
                state,
            })
        })
        .transpose()
    }

    pub(crate) async fn compact(&self, epoch: u64) -> Result<u64, StoreError> {
        let db = |source| StoreError::Snapshot {
            action: "compact to",
            source,
        };
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        let Some(upto) = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM snapshot")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
        else {
            return Ok(0);
        };
        let deleted = sqlx::query("DELETE FROM command_log WHERE seq <= ?1")
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        sqlx::query("DELETE FROM snapshot WHERE seq < ?1")
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('log_floor', ?1) ON CONFLICT (key) \
             DO UPDATE SET value = excluded.value \
             WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
        )
        .bind(upto.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checks the monitor runs for an SQLite leadership: the flock cannot be lost while the file
/// is open, but the epoch row tells if someone took over anyway (a deleted lock file).
struct Probe {
    pool: SqlitePool,
}

impl LockProbe for Probe {
    const ERROR_IS_LOSS: bool = false;

    async fn current_epoch(&mut self) -> Result<u64, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let epoch = current_epoch(&mut conn).await?;
        Ok(u64::try_from(epoch).unwrap_or(u64::MAX))
    }

    async fn release(self) {}
}

/// `SELECT epoch FROM leader`.
async fn current_epoch(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT epoch FROM leader WHERE id = 1")
        .fetch_one(conn)
        .await
}

/// Re-asserts `epoch` on the leader row inside the caller's write transaction (see
/// [`crate::Store::append`]); a newer epoch there means this writer was deposed.
async fn fence(
    conn: &mut SqliteConnection,
    epoch: u64,
    db: impl Fn(sqlx::Error) -> StoreError,
) -> Result<(), StoreError> {
    let matched = sqlx::query("UPDATE leader SET epoch = epoch WHERE id = 1 AND epoch = ?1")
        .bind(to_db(epoch)?)
        .execute(&mut *conn)
        .await
        .map_err(&db)?
        .rows_affected();
    if matched == 1 {
        return Ok(());
    }
    let current = current_epoch(conn).await.map_err(&db)?;
    Err(StoreError::Deposed {
        mine: epoch,
        current: from_db("leader.epoch", current)?,
    })
}

/// The last seq of the log: its highest record, else the compaction floor, else 0.
async fn head(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE((SELECT MAX(seq) FROM command_log), \
         (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'log_floor'), 0)",
    )
    .fetch_one(conn)
    .await
}

/// Creates the missing folders above a database file, mode 0750 (the log holds every port and
/// host of the cloud: not for other users), so that the shipped configuration's
/// `/var/lib/l2pop/l2pop.db` works on a fresh machine.
/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Checks an existing database file before SQLite opens (and would happily initialise) it.
/// True when the file exists and must already hold an l2pop store; false when there is no file
/// (a first start) or `init` is explicit.
fn inspect(path: &Path, init: Init) -> Result<bool, StoreError> {
    use std::io::Read as _;
    let inspect_error = |source| StoreError::Inspect {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        // Nothing there (a first start), or something SQLite will refuse to open by itself.
        Ok(_) => return Ok(false),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(inspect_error(error)),
    }
    let mut file = std::fs::File::open(path).map_err(inspect_error)?;
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(inspect_error)?;
    let not_a_store = |reason| StoreError::NotAStore {
        path: path.to_owned(),
        reason,
    };
    if header.is_empty() {
        // Right after creation the pages may still be in the write-ahead log only.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if wal_len == 0 && init != Init::Explicit {
            return Err(not_a_store("is empty (0 bytes)"));
        }
        return Ok(init != Init::Explicit);
    }
    if header != SQLITE_HEADER {
        return Err(not_a_store("has no SQLite header"));
    }
    Ok(init != Init::Explicit)
}

fn create_folder(db: &Path) -> Result<(), StoreError> {
    let Some(folder) = db.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if folder.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
    builder
        .create(folder)
        .map_err(|source| StoreError::CreateFolder {
            path: folder.to_owned(),
            source,
        })?;
    tracing::info!(folder = %folder.display(), "created the store's folder");
    Ok(())
}

fn open_error(url: &str, source: sqlx::Error) -> StoreError {
    StoreError::Open {
        url: url.to_owned(),
        source,
    }
}

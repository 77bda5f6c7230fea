//! The SQLite backend: one database file on one host (or a private in-memory database).
//!
//! Connections use WAL with `synchronous=FULL` (the WAL is fsynced at every commit, so a
//! commit that returned survives `kill -9` and power loss) and a busy timeout. Every write
//! transaction starts with `BEGIN IMMEDIATE`, taking SQLite's single writer lock up front, so
//! the fence, the head check and the insert see one consistent log. Readers run concurrently
//! from the same pool. Leadership is an exclusive `flock` on `<db>.lock`. The log, snapshots and
//! fencing are the shared [`SqlStore`], in SQLite's [`Dialect`].

use std::fs::{OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};

use crate::leadership::{LockGuard, LockProbe};
use crate::location::Location;
use crate::sql::{Dialect, SqlBackend, SqlStore};
use crate::{Init, Leadership, StoreError, from_db};

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

/// SQLite's statements for the shared [`SqlStore`].
impl SqlBackend for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect {
        // Takes the single writer lock up front: fence, head check and write see one log.
        begin_write: "BEGIN IMMEDIATE",
        migrations_recorded: "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                              WHERE type = 'table' AND name = '_sqlx_migrations')",
        insert_cluster_id: "INSERT INTO meta (key, value) VALUES ('cluster_id', ?1) \
                            ON CONFLICT (key) DO NOTHING",
        leader: "SELECT epoch, holder, since FROM leader WHERE id = 1",
        fence: "UPDATE leader SET epoch = epoch WHERE id = 1 AND epoch = ?1",
        head: "SELECT COALESCE((SELECT MAX(seq) FROM command_log), \
               (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'log_floor'), 0)",
        insert_log: "INSERT INTO command_log (seq, command) \
                     SELECT ?1 + key, value FROM json_each(?2)",
        read_chunk: "SELECT seq, command FROM command_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        log_floor: "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'log_floor'",
        published: "SELECT seq FROM published WHERE stream = ?1",
        set_published: concat!(
            "INSERT INTO published (stream, seq) VALUES (?1, ?2) \
             ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, updated_at = ",
            now!(),
            " WHERE excluded.seq > published.seq"
        ),
        save_snapshot: concat!(
            "INSERT INTO snapshot (seq, state) VALUES (?1, ?2) \
             ON CONFLICT (seq) DO UPDATE SET state = excluded.state, created_at = ",
            now!()
        ),
        delete_log_upto: "DELETE FROM command_log WHERE seq > ?1 AND seq <= ?2",
        delete_snapshots_below: "DELETE FROM snapshot WHERE seq < ?1",
        raise_log_floor: "INSERT INTO meta (key, value) VALUES ('log_floor', ?1) \
                          ON CONFLICT (key) DO UPDATE SET value = excluded.value \
                          WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
    };

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// As one JSON array of the command texts, which `json_each` unpacks.
    fn bind_commands<'q>(
        query: Query<'q, Self, SqliteArguments>,
        commands: Vec<&str>,
    ) -> Result<Query<'q, Self, SqliteArguments>, sqlx::Error> {
        let json = serde_json::to_string(&commands).map_err(|e| sqlx::Error::Encode(e.into()))?;
        Ok(query.bind(json))
    }
}

/// An open SQLite store.
#[derive(Debug, Clone)]
pub(crate) struct Sqlite {
    pub(crate) sql: Sql,
    lock: LockTarget,
}

type Sql = SqlStore<sqlx::Sqlite>;

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
        let sql = Sql::new(pool);
        let recorded = sql.check_schema(&MIGRATOR, url).await?;
        if let Some(path) = existing.filter(|_| !recorded) {
            sql.close().await;
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
                reason: "has no l2pop schema",
            });
        }
        MIGRATOR
            .run(&sql.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: url.to_owned(),
                source,
            })?;
        Ok(Self { sql, lock })
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
            .sql
            .pool
            .begin_with(<sqlx::Sqlite as SqlBackend>::DIALECT.begin_write)
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
        let epoch = Sql::current_epoch(&mut tx)
            .await
            .map_err(leadership_error)?;
        tx.commit().await.map_err(leadership_error)?;
        let probe = Probe {
            sql: self.sql.clone(),
        };
        Ok(Leadership::new(
            from_db("leader.epoch", epoch)?,
            cluster_id,
            holder,
            Some(guard),
            probe,
        ))
    }
}

/// Checks the monitor runs for an SQLite leadership: the flock cannot be lost while the file
/// is open, but the epoch row tells if someone took over anyway (a deleted lock file).
struct Probe {
    sql: Sql,
}

impl LockProbe for Probe {
    const ERROR_IS_LOSS: bool = false;

    async fn current_epoch(&mut self) -> Result<u64, sqlx::Error> {
        let mut conn = self.sql.pool.acquire().await?;
        let epoch = Sql::current_epoch(&mut conn).await?;
        Ok(u64::try_from(epoch).unwrap_or(u64::MAX))
    }

    async fn release(self) {}
}

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

/// Creates the missing folders above a database file, mode 0750 (the log holds every port and
/// host of the cloud: not for other users), so that the shipped configuration's
/// `/var/lib/l2pop/l2pop.db` works on a fresh machine.
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

//! What the two SQL backends share, written once over `sqlx::Database`: the command log, the
//! published watermarks, snapshots, compaction, the meta rows and the epoch fence. A backend
//! brings its [`Dialect`] (the text of each statement: `?N` or `$N` placeholders, `INTEGER` or
//! `BIGINT` casts, its clock, how a batch is unpacked; and how a write transaction begins) and
//! how a batch of commands is bound ([`SqlBackend::bind_commands`]). Opening, migrating and
//! leadership (a lock file or an advisory lock) stay in `sqlite.rs` and `postgres.rs`.
//!
//! Every write runs in one transaction ([`SqlStore::begin_fenced`]): begin
//! ([`Dialect::begin_write`]), re-assert the epoch (see [`crate::Store::append`]), read the head
//! where the write depends on it, write, commit.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::query::Query;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type,
};

use crate::{LeaderInfo, LogRecord, Snapshot, StoreError, from_db, parse_u64, to_db};

/// Log records deleted per transaction when compacting.
const COMPACT_CHUNK: i64 = 20_000;

/// The statements of one backend, by what they do. Placeholders are numbered in the order the
/// shared code binds them.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Starts every write transaction.
    pub(crate) begin_write: &'static str,
    /// Whether the migrations table exists (one boolean).
    pub(crate) migrations_recorded: &'static str,
    /// `(cluster id)`: records the cluster id unless one exists.
    pub(crate) insert_cluster_id: &'static str,
    /// The leader row: `epoch, holder, since` (`since` as text).
    pub(crate) leader: &'static str,
    /// `(epoch)`: touches the leader row if it still has this epoch.
    pub(crate) fence: &'static str,
    /// The last seq of the log: its highest record, else the compaction floor, else 0.
    pub(crate) head: &'static str,
    /// `(first seq, commands)`: inserts a batch, `commands` bound by
    /// [`SqlBackend::bind_commands`].
    pub(crate) insert_log: &'static str,
    /// `(after, limit)`: records with a higher seq, in order.
    pub(crate) read_chunk: &'static str,
    /// The compaction floor, as an integer (no row: none).
    pub(crate) log_floor: &'static str,
    /// `(stream)`: its watermark.
    pub(crate) published: &'static str,
    /// `(stream, seq)`: raises its watermark, never lowers it.
    pub(crate) set_published: &'static str,
    /// `(seq, state)`: saves a snapshot, replacing one at the same seq.
    pub(crate) save_snapshot: &'static str,
    /// `(seq)`: deletes the log records up to it.
    /// Deletes the records in `(?1, ?2]`.
    pub(crate) delete_log_upto: &'static str,
    /// `(seq)`: deletes the snapshots below it.
    pub(crate) delete_snapshots_below: &'static str,
    /// `(seq as text)`: raises the compaction floor, never lowers it.
    pub(crate) raise_log_floor: &'static str,
}

/// A database l2pop stores in: its dialect and what cannot be said in SQL text alone.
pub(crate) trait SqlBackend: Database {
    const DIALECT: Dialect;

    /// Rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Binds a batch's commands as the one parameter [`Dialect::insert_log`] unpacks.
    fn bind_commands<'q>(
        query: Query<'q, Self, Self::Arguments>,
        commands: Vec<&str>,
    ) -> Result<Query<'q, Self, Self::Arguments>, sqlx::Error>;
}

/// The log, watermarks and snapshots in an SQL database, over a pool of `DB` connections.
#[derive(Debug)]
pub(crate) struct SqlStore<DB: Database> {
    pub(crate) pool: Pool<DB>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
        }
    }
}

impl<DB> SqlStore<DB>
where
    DB: SqlBackend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    for<'r> &'r str: Encode<'r, DB> + Type<DB>,
    for<'r> &'r [u8]: Encode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    const DIALECT: Dialect = DB::DIALECT;

    pub(crate) fn new(pool: Pool<DB>) -> Self {
        SqlStore { pool }
    }

    /// Whether the database has migrations recorded; if so, refuses a schema newer than
    /// `migrator` knows ([`StoreError::SchemaTooNew`]).
    pub(crate) async fn check_schema(
        &self,
        migrator: &Migrator,
        url: &str,
    ) -> Result<bool, StoreError> {
        let migrate_error = |source: sqlx::Error| StoreError::Migrate {
            url: url.to_owned(),
            source: MigrateError::from(source),
        };
        let recorded: bool = sqlx::query_scalar(Self::DIALECT.migrations_recorded)
            .fetch_one(&self.pool)
            .await
            .map_err(migrate_error)?;
        if recorded {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(migrate_error)?;
            crate::check_schema_version(found, migrator)?;
        }
        Ok(recorded)
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
            sqlx::query(Self::DIALECT.insert_cluster_id)
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

    pub(crate) async fn leader(&self) -> Result<LeaderInfo, StoreError> {
        let decode = |source| StoreError::Meta {
            key: "leader",
            source,
        };
        let row = sqlx::query(Self::DIALECT.leader)
            .fetch_one(&self.pool)
            .await
            .map_err(decode)?;
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
        // One bind for the whole batch; the statement text is fixed, so it is prepared once and
        // cached.
        let commands: Vec<&str> = records.iter().map(|r| r.command.as_str()).collect();
        let insert = DB::bind_commands(
            sqlx::query(Self::DIALECT.insert_log).bind(to_db(first)?),
            commands,
        )
        .map_err(db)?;
        let mut tx = self.begin_fenced(epoch, db).await?;
        let last = Self::head(&mut tx).await.map_err(db)?;
        crate::check_continues(from_db("command_log.seq", last)?, first)?;
        let inserted = DB::rows_affected(&insert.execute(&mut *tx).await.map_err(db)?);
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
        let rows: Vec<(i64, String)> = sqlx::query_as(Self::DIALECT.read_chunk)
            .bind(to_db(after)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::ReadLog { after, source })?;
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
        let db = |source| StoreError::ReadLog { after: 0, source };
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let last = Self::head(&mut conn).await.map_err(db)?;
        from_db("command_log.seq", last)
    }

    pub(crate) async fn log_floor(&self) -> Result<u64, StoreError> {
        let floor: Option<i64> = sqlx::query_scalar(Self::DIALECT.log_floor)
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| StoreError::Meta {
                key: "log_floor",
                source,
            })?;
        from_db("meta.log_floor", floor.unwrap_or(0))
    }

    pub(crate) async fn published(&self, stream: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(Self::DIALECT.published)
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
        let mut tx = self.begin_fenced(epoch, db).await?;
        sqlx::query(Self::DIALECT.set_published)
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
        let mut tx = self.begin_fenced(epoch, db).await?;
        let last = from_db("command_log.seq", Self::head(&mut tx).await.map_err(db)?)?;
        if seq > last {
            return Err(StoreError::SnapshotAhead { seq, last });
        }
        sqlx::query(Self::DIALECT.save_snapshot)
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
        // First the floor: from here on a reader below it is told the log was compacted, never
        // shown a gap while the records go.
        let mut tx = self.begin_fenced(epoch, db).await?;
        let Some(upto) = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM snapshot")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
        else {
            return Ok(0);
        };
        let lowest = sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(seq) FROM command_log")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .unwrap_or(upto);
        sqlx::query(Self::DIALECT.delete_snapshots_below)
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(Self::DIALECT.raise_log_floor)
            .bind(upto.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        // Then the records, a bounded range per transaction: the writer (one at a time in
        // SQLite) waits for one short delete at most, however long the history was.
        let mut deleted = 0;
        let mut from = lowest.saturating_sub(1);
        while from < upto {
            let to = from.saturating_add(COMPACT_CHUNK).min(upto);
            let mut tx = self.begin_fenced(epoch, db).await?;
            let done = sqlx::query(Self::DIALECT.delete_log_upto)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            deleted += DB::rows_affected(&done);
            from = to;
        }
        Ok(deleted)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction ([`Dialect::begin_write`]) and fences it on `epoch`.
    async fn begin_fenced(
        &self,
        epoch: u64,
        db: impl Fn(sqlx::Error) -> StoreError,
    ) -> Result<Transaction<'static, DB>, StoreError> {
        let mut tx = self
            .pool
            .begin_with(Self::DIALECT.begin_write)
            .await
            .map_err(&db)?;
        Self::fence(&mut tx, epoch, db).await?;
        Ok(tx)
    }

    /// `SELECT epoch FROM leader`.
    pub(crate) async fn current_epoch(conn: &mut DB::Connection) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT epoch FROM leader WHERE id = 1")
            .fetch_one(conn)
            .await
    }

    /// Re-asserts `epoch` on the leader row inside the caller's write transaction (see
    /// [`crate::Store::append`]); a newer epoch there means this writer was deposed.
    async fn fence(
        conn: &mut DB::Connection,
        epoch: u64,
        db: impl Fn(sqlx::Error) -> StoreError,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(Self::DIALECT.fence)
            .bind(to_db(epoch)?)
            .execute(&mut *conn)
            .await
            .map_err(&db)?;
        if DB::rows_affected(&result) == 1 {
            return Ok(());
        }
        let current = Self::current_epoch(conn).await.map_err(&db)?;
        Err(StoreError::Deposed {
            mine: epoch,
            current: from_db("leader.epoch", current)?,
        })
    }

    /// The last seq of the log ([`Dialect::head`]).
    async fn head(conn: &mut DB::Connection) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(Self::DIALECT.head).fetch_one(conn).await
    }
}

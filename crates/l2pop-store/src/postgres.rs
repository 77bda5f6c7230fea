//! The PostgreSQL backend: one database shared by an active server and its standbys.
//!
//! Leadership is a session advisory lock ([`LEADER_LOCK_KEY`]) held on a dedicated connection
//! outside the pool for as long as the [`Leadership`] lives; its monitor pings that connection
//! every second, so a terminated backend or a broken network is noticed. The server side notices
//! a vanished client through the TCP keepalives set on that session. Write transactions run at
//! READ COMMITTED, start with the epoch fence (which takes the leader row lock until commit),
//! then read the head and insert the whole batch in one `UNNEST … WITH ORDINALITY` statement.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use crate::leadership::LockProbe;
use crate::{LeaderInfo, Leadership, LogRecord, Snapshot, StoreError, from_db, parse_u64, to_db};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The advisory lock key of the leader lock: the FNV-1a hash of `"l2pop-store/leader/v1"`.
/// Advisory locks are per database, so stores in different databases never contend.
pub const LEADER_LOCK_KEY: i64 = fnv1a_i64(b"l2pop-store/leader/v1");

/// Connections in the pool (the lock connection is extra).
const POOL_SIZE: u32 = 8;
/// Application name of the lock connection, to find it in `pg_stat_activity`.
const LOCK_APPLICATION_NAME: &str = "l2pop-leader";
/// Session settings of the lock connection: the server drops it (and so the lock) about 11 s
/// after the client host vanishes, instead of the kernel's default two hours.
const LOCK_SESSION_SETTINGS: &str =
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3";

pub(crate) const fn fnv1a_i64(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash as i64
}

/// An open PostgreSQL store.
#[derive(Debug, Clone)]
pub(crate) struct Postgres {
    pool: PgPool,
    /// Options of the lock connection (boxed: they are large and the store is cloned).
    options: Arc<PgConnectOptions>,
    url: Arc<str>,
}

impl Postgres {
    /// Connects to the database at `url` and migrates it. `redacted` is the URL for messages.
    pub(crate) async fn open(url: &str, redacted: &str) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            url: redacted.to_owned(),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let migrate_error = |source| StoreError::Migrate {
            url: redacted.to_owned(),
            source,
        };
        let recorded: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(|e| migrate_error(MigrateError::from(e)))?;
        if recorded {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| migrate_error(MigrateError::from(e)))?;
            crate::check_schema_version(found, &MIGRATOR)?;
        }
        // The migrator serializes concurrent openers with its own advisory lock.
        MIGRATOR.run(&pool).await.map_err(migrate_error)?;
        Ok(Self {
            pool,
            options: Arc::new(options.application_name(LOCK_APPLICATION_NAME)),
            url: redacted.into(),
        })
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
                "INSERT INTO meta (key, value) VALUES ('cluster_id', $1) \
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
        let leadership_error = |source| StoreError::Leadership {
            holder: holder.to_owned(),
            source,
        };
        // The first connection must succeed (a wrong URL or password fails fast); later
        // failures (the database restarting while this process stands by) are retried.
        let mut conn = Some(
            PgConnection::connect_with(&self.options)
                .await
                .map_err(leadership_error)?,
        );
        let mut conn = loop {
            if let Some(mut c) = conn.take() {
                match try_lock(&mut c).await {
                    Ok(true) => break c,
                    Ok(false) => conn = Some(c),
                    Err(error) => {
                        tracing::warn!(url = %self.url, %error, "standby lost its connection; reconnecting");
                    }
                }
            } else {
                match PgConnection::connect_with(&self.options).await {
                    Ok(c) => {
                        conn = Some(c);
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(url = %self.url, %error, "standby cannot reconnect; retrying");
                    }
                }
            }
            tokio::time::sleep(poll).await;
        };
        if let Err(error) = sqlx::raw_sql(LOCK_SESSION_SETTINGS)
            .execute(&mut conn)
            .await
        {
            tracing::warn!(url = %self.url, %error, "cannot set keepalives on the lock connection");
        }
        // Its own committed transaction (autocommit), before the caller may read the log.
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE leader SET epoch = epoch + 1, holder = $1, since = now() WHERE id = 1 \
             RETURNING epoch",
        )
        .bind(holder)
        .fetch_one(&mut conn)
        .await
        .map_err(leadership_error)?;
        let probe = Probe { conn };
        Ok(Leadership::new(
            from_db("leader.epoch", epoch)?,
            cluster_id,
            holder,
            None,
            probe,
        ))
    }

    pub(crate) async fn leader(&self) -> Result<LeaderInfo, StoreError> {
        let decode = |source| StoreError::Meta {
            key: "leader",
            source,
        };
        let row = sqlx::query("SELECT epoch, holder, since::text FROM leader WHERE id = 1")
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
        let commands: Vec<&str> = records.iter().map(|r| r.command.as_str()).collect();
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        let last = from_db("command_log.seq", head(&mut tx).await.map_err(db)?)?;
        crate::check_continues(last, first)?;
        let inserted = sqlx::query(
            "INSERT INTO command_log (seq, command) \
             SELECT $1 + ord - 1, command FROM UNNEST($2::text[]) WITH ORDINALITY AS t(command, ord)",
        )
        .bind(to_db(first)?)
        .bind(&commands)
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
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, command FROM command_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
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
            sqlx::query_scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'log_floor'")
                .fetch_optional(&self.pool)
                .await
                .map_err(|source| StoreError::Meta {
                    key: "log_floor",
                    source,
                })?;
        from_db("meta.log_floor", floor.unwrap_or(0))
    }

    pub(crate) async fn published(&self, stream: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM published WHERE stream = $1")
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
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        sqlx::query(
            "INSERT INTO published (stream, seq) VALUES ($1, $2) \
             ON CONFLICT (stream) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now() \
             WHERE EXCLUDED.seq > published.seq",
        )
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
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        let last = from_db("command_log.seq", head(&mut tx).await.map_err(db)?)?;
        if seq > last {
            return Err(StoreError::SnapshotAhead { seq, last });
        }
        sqlx::query(
            "INSERT INTO snapshot (seq, state) VALUES ($1, $2) \
             ON CONFLICT (seq) DO UPDATE SET state = EXCLUDED.state, created_at = now()",
        )
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
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        fence(&mut tx, epoch, db).await?;
        let Some(upto) = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM snapshot")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
        else {
            return Ok(0);
        };
        let deleted = sqlx::query("DELETE FROM command_log WHERE seq <= $1")
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        sqlx::query("DELETE FROM snapshot WHERE seq < $1")
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('log_floor', $1) ON CONFLICT (key) \
             DO UPDATE SET value = EXCLUDED.value \
             WHERE CAST(EXCLUDED.value AS BIGINT) > CAST(meta.value AS BIGINT)",
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

/// `pg_try_advisory_lock` on the leader key.
async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK_KEY)
        .fetch_one(conn)
        .await
}

/// The lock connection, checked by the leadership monitor: the session (and so the lock) is
/// alive if a query on it succeeds; the epoch it reads tells whether someone took over anyway.
struct Probe {
    conn: PgConnection,
}

impl LockProbe for Probe {
    const ERROR_IS_LOSS: bool = true;

    async fn current_epoch(&mut self) -> Result<u64, sqlx::Error> {
        let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM leader WHERE id = 1")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(u64::try_from(epoch).unwrap_or(u64::MAX))
    }

    async fn release(self) {
        // Ending the session releases the advisory lock; a dead connection fails here harmlessly.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.close()).await;
    }
}

/// Re-asserts `epoch` on the leader row inside the caller's transaction, holding the row lock
/// until commit (see [`crate::Store::append`]); a newer epoch means this writer was deposed.
async fn fence(
    conn: &mut PgConnection,
    epoch: u64,
    db: impl Fn(sqlx::Error) -> StoreError,
) -> Result<(), StoreError> {
    let matched = sqlx::query("UPDATE leader SET epoch = epoch WHERE id = 1 AND epoch = $1")
        .bind(to_db(epoch)?)
        .execute(&mut *conn)
        .await
        .map_err(&db)?
        .rows_affected();
    if matched == 1 {
        return Ok(());
    }
    let current: i64 = sqlx::query_scalar("SELECT epoch FROM leader WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(&db)?;
    Err(StoreError::Deposed {
        mine: epoch,
        current: from_db("leader.epoch", current)?,
    })
}

/// The last seq of the log: its highest record, else the compaction floor, else 0.
async fn head(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE((SELECT MAX(seq) FROM command_log), \
         (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'log_floor'), 0)",
    )
    .fetch_one(conn)
    .await
}

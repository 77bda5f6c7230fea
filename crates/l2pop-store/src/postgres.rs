//! The PostgreSQL backend: one database shared by an active server and its standbys.
//!
//! Leadership is a session advisory lock ([`LEADER_LOCK_KEY`]) held on a dedicated connection
//! outside the pool for as long as the [`Leadership`] lives; its monitor pings that connection
//! every second, so a terminated backend or a broken network is noticed. The server side notices
//! a vanished client through the TCP keepalives set on that session. Write transactions run at
//! READ COMMITTED, start with the epoch fence (which takes the leader row lock until commit),
//! then read the head and insert the whole batch in one `UNNEST … WITH ORDINALITY` statement:
//! the shared [`SqlStore`] in PostgreSQL's [`Dialect`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult};
use sqlx::query::Query;

use crate::leadership::LockProbe;
use crate::sql::{Dialect, SqlBackend, SqlStore};
use crate::{Leadership, StoreError, from_db};

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

/// PostgreSQL's statements for the shared [`SqlStore`].
impl SqlBackend for sqlx::Postgres {
    const DIALECT: Dialect = Dialect {
        // The fence takes the leader row lock until commit: writers are serialized on it.
        begin_write: "BEGIN ISOLATION LEVEL READ COMMITTED",
        migrations_recorded: "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
        insert_cluster_id: "INSERT INTO meta (key, value) VALUES ('cluster_id', $1) \
                            ON CONFLICT (key) DO NOTHING",
        leader: "SELECT epoch, holder, since::text FROM leader WHERE id = 1",
        fence: "UPDATE leader SET epoch = epoch WHERE id = 1 AND epoch = $1",
        head: "SELECT COALESCE((SELECT MAX(seq) FROM command_log), \
               (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'log_floor'), 0)",
        insert_log: "INSERT INTO command_log (seq, command) \
                     SELECT $1 + ord - 1, command \
                     FROM UNNEST($2::text[]) WITH ORDINALITY AS t(command, ord)",
        read_chunk: "SELECT seq, command FROM command_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        log_floor: "SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'log_floor'",
        published: "SELECT seq FROM published WHERE stream = $1",
        set_published: "INSERT INTO published (stream, seq) VALUES ($1, $2) \
                        ON CONFLICT (stream) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now() \
                        WHERE EXCLUDED.seq > published.seq",
        save_snapshot: "INSERT INTO snapshot (seq, state) VALUES ($1, $2) \
                        ON CONFLICT (seq) DO UPDATE SET state = EXCLUDED.state, created_at = now()",
        delete_log_upto: "DELETE FROM command_log WHERE seq > $1 AND seq <= $2",
        delete_snapshots_below: "DELETE FROM snapshot WHERE seq < $1",
        raise_log_floor: "INSERT INTO meta (key, value) VALUES ('log_floor', $1) \
                          ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value \
                          WHERE CAST(EXCLUDED.value AS BIGINT) > CAST(meta.value AS BIGINT)",
    };

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// As one `text[]`, which `UNNEST` unpacks.
    fn bind_commands<'q>(
        query: Query<'q, Self, PgArguments>,
        commands: Vec<&str>,
    ) -> Result<Query<'q, Self, PgArguments>, sqlx::Error> {
        Ok(query.bind(commands))
    }
}

type Sql = SqlStore<sqlx::Postgres>;

/// An open PostgreSQL store.
#[derive(Debug, Clone)]
pub(crate) struct Postgres {
    pub(crate) sql: Sql,
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
        let sql = Sql::new(pool);
        sql.check_schema(&MIGRATOR, redacted).await?;
        // The migrator serializes concurrent openers with its own advisory lock.
        MIGRATOR
            .run(&sql.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redacted.to_owned(),
                source,
            })?;
        Ok(Self {
            sql,
            options: Arc::new(options.application_name(LOCK_APPLICATION_NAME)),
            url: redacted.into(),
        })
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
        let epoch = Sql::current_epoch(&mut self.conn).await?;
        Ok(u64::try_from(epoch).unwrap_or(u64::MAX))
    }

    async fn release(self) {
        // Ending the session releases the advisory lock; a dead connection fails here harmlessly.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.close()).await;
    }
}

//! The PostgreSQL backend against a real server: admin URL from `L2POP_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each test creates and drops its own database
//! `l2pop_test_<random>`. An unreachable server fails the tests; they never skip.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PATIENCE, POLL, random_u64, records};
use l2pop_store::{BackendKind, LEADER_LOCK_KEY, Store, StoreError};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test and dropped (with its connections) when the test ends.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn create() -> TestDb {
        let admin_url =
            std::env::var("L2POP_TEST_PG").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {admin_url} ({e}); start it (pg_ctlcluster 15 main \
                 start) or point L2POP_TEST_PG at an admin URL"
            )
        });
        let name = format!("l2pop_test_{:016x}", random_u64());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = with_database(&admin_url, &name);
        TestDb {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await; a thread with its own runtime can, even inside a tokio test.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    sqlx::raw_sql(AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await?;
                    Ok::<_, sqlx::Error>(())
                })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("cannot drop test database {}: {error}", self.name);
        }
    }
}

/// `admin_url` with its database name replaced by `name` (query string kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}/{name}{query}")
}

#[test]
fn database_name_replacement() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

#[tokio::test]
async fn round_trip_and_reopen() {
    let db = TestDb::create().await;
    assert_eq!(
        Store::open(&db.url).await.unwrap().backend(),
        BackendKind::Postgres
    );
    common::round_trip_and_reopen(&db.url).await;
}

#[tokio::test]
async fn gap_and_duplicate_refused() {
    let db = TestDb::create().await;
    common::gap_and_duplicate_refused(&db.url).await;
}

#[tokio::test]
async fn published_watermarks() {
    let db = TestDb::create().await;
    common::published_watermarks(&db.url).await;
}

#[tokio::test]
async fn snapshots_and_compaction() {
    let db = TestDb::create().await;
    common::snapshots_and_compaction(&db.url).await;
}

#[tokio::test]
async fn batch_of_5000() {
    let db = TestDb::create().await;
    common::batch_of_5000(&db.url).await;
}

#[tokio::test]
async fn migrations_versioned() {
    let db = TestDb::create().await;
    common::migrations_versioned(
        &db.url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101, 'from the future', TRUE, '\\x00'::bytea, 0)",
    )
    .await;
}

#[tokio::test]
async fn second_handle_waits_for_leadership() {
    let db = TestDb::create().await;
    common::second_handle_waits_for_leadership(&db.url).await;
}

#[tokio::test]
async fn superseded_epoch_is_fenced() {
    let db = TestDb::create().await;
    common::superseded_epoch_is_fenced(&db.url).await;
}

#[tokio::test]
async fn foreign_leadership_refused() {
    let a = TestDb::create().await;
    let b = TestDb::create().await;
    common::foreign_leadership_refused(&a.url, &b.url).await;
}

#[tokio::test]
async fn wrong_password_or_database_is_an_open_error() {
    let db = TestDb::create().await;
    let missing = with_database(&db.url, &format!("{}_missing", db.name));
    let err = Store::open(&missing).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("_missing"), "{err}");
}

/// The lock connection of the current leader is killed from outside: the leader notices, a
/// standby takes over within a few polls, and the old leader's next append writes nothing.
#[tokio::test]
async fn killed_lock_connection_hands_over_and_fences_the_old_leader() {
    let db = TestDb::create().await;
    let a = Store::open(&db.url).await.unwrap();
    let b = Store::open(&db.url).await.unwrap();
    let leadership_a = a.acquire_leadership_as("a", POLL).await.unwrap();
    a.append(&leadership_a, &records(1..=10)).await.unwrap();
    let standby = tokio::spawn(async move {
        let leadership = b.acquire_leadership_as("b", POLL).await.unwrap();
        (b, leadership)
    });
    tokio::time::sleep(POLL * 4).await;
    assert!(!standby.is_finished(), "b stands by while a leads");

    let mut admin = PgConnection::connect(&db.admin_url).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1 \
         AND ((l.classid::bigint << 32) | l.objid::bigint) = $2",
    )
    .bind(&db.name)
    .bind(LEADER_LOCK_KEY)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        terminated,
        [true],
        "exactly a's lock connection holds the lock"
    );

    let (b, leadership_b) = tokio::time::timeout(PATIENCE, standby)
        .await
        .expect("b leads after a's lock connection died")
        .unwrap();
    assert_eq!(leadership_b.epoch(), leadership_a.epoch() + 1);
    tokio::time::timeout(PATIENCE, leadership_a.lost())
        .await
        .expect("a notices that its lock connection died");

    let err = a
        .append(&leadership_a, &records(11..=20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Deposed { mine, current } if mine == leadership_a.epoch() && current == leadership_b.epoch()),
        "{err:?}"
    );
    assert_eq!(b.last_seq().await.unwrap(), 10);
    assert_eq!(b.read_log(0).read_to_end().await.unwrap(), records(1..=10));
    b.append(&leadership_b, &records(11..=12)).await.unwrap();
    assert_eq!(b.leader().await.unwrap().holder, "b");
}

/// A dropped leadership closes its lock connection, so the standby's poll succeeds promptly.
#[tokio::test]
async fn dropped_leadership_hands_over() {
    let db = TestDb::create().await;
    let a = Store::open(&db.url).await.unwrap();
    let b = Store::open(&db.url).await.unwrap();
    let leadership_a = a.acquire_leadership_as("a", POLL).await.unwrap();
    a.append(&leadership_a, &records(1..=3)).await.unwrap();
    let epoch_a = leadership_a.epoch();
    let standby = tokio::spawn(async move { b.acquire_leadership_as("b", POLL).await.unwrap() });
    tokio::time::sleep(POLL * 4).await;
    assert!(!standby.is_finished());
    drop(leadership_a);
    let leadership_b = tokio::time::timeout(PATIENCE, standby)
        .await
        .expect("b leads after a's leadership was dropped")
        .unwrap();
    assert_eq!(leadership_b.epoch(), epoch_a + 1);
    assert_eq!(a.leader().await.unwrap().holder, "b");
    let mut admin = PgConnection::connect(&db.admin_url).await.unwrap();
    let holders: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(holders, 1, "only b's lock connection holds the lock");
}

/// The fencing order under real concurrency: while an old leader appends in a loop, a new
/// leader bumps the epoch and reads the log; every append the old leader saw succeed is in
/// what the new leader read, and none succeeds afterwards.
#[tokio::test]
async fn appends_racing_a_takeover_are_seen_or_refused() {
    let db = TestDb::create().await;
    let a = Store::open(&db.url).await.unwrap();
    let b = Store::open(&db.url).await.unwrap();
    let leadership_a = a.acquire_leadership_as("a", POLL).await.unwrap();
    let writer = tokio::spawn(async move {
        let mut next = 1;
        loop {
            match a.append(&leadership_a, &records(next..=next + 4)).await {
                Ok(()) => next += 5,
                Err(StoreError::Deposed { .. }) => return next - 1,
                Err(other) => panic!("{other:?}"),
            }
        }
    });
    tokio::time::sleep(POLL * 2).await;
    // Take over by force (as if a's lock had vanished), then read right away.
    let mut admin = PgConnection::connect(&db.admin_url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
    )
    .bind(&db.name)
    .execute(&mut admin)
    .await
    .unwrap();
    let leadership_b = tokio::time::timeout(PATIENCE, b.acquire_leadership_as("b", POLL))
        .await
        .unwrap()
        .unwrap();
    let seen = b.read_log(0).read_to_end().await.unwrap();
    let acknowledged = tokio::time::timeout(PATIENCE, writer)
        .await
        .expect("the old writer is refused")
        .unwrap();
    assert!(acknowledged > 0);
    assert_eq!(seen.len() as u64, acknowledged);
    assert_eq!(b.last_seq().await.unwrap(), acknowledged);
    b.append(&leadership_b, &records(acknowledged + 1..=acknowledged + 1))
        .await
        .unwrap();
}

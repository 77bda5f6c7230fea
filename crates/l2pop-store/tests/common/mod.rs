//! Scenarios every backend must pass, each given the URL of a fresh, empty store.
#![allow(dead_code, clippy::unwrap_used)]

use std::hash::{BuildHasher, RandomState};
use std::ops::RangeInclusive;
use std::time::Duration;

use l2pop_store::{LogRecord, Store, StoreError};
use sqlx::{AssertSqlSafe, Connection};

/// Leadership poll interval used by the tests.
pub const POLL: Duration = Duration::from_millis(50);
/// Generous upper bound for things that should happen within a few poll intervals or
/// monitor checks; the tests never measure time, they only refuse to hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A random u64 from the OS-seeded std hasher.
pub fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Commands shaped like the server's: a JSON text naming its seq.
pub fn records(seqs: RangeInclusive<u64>) -> Vec<LogRecord> {
    seqs.map(|seq| LogRecord {
        seq,
        command: format!(
            r#"{{"op":"port_up","seq":{seq},"port":"p-{seq}","mac":"fa:16:3e:00:{:02x}:{:02x}","note":"quote \" backslash \\ unicode é"}}"#,
            (seq >> 8) & 0xff,
            seq & 0xff
        ),
    })
    .collect()
}

/// Runs `sql` on the database at `url` outside the store (to simulate other actors).
pub async fn raw_exec(url: &str, sql: &str) {
    let sql = AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    }
}

/// Runs a query returning one BIGINT on the database at `url`, outside the store.
pub async fn raw_i64(url: &str, sql: &str) -> i64 {
    let sql = AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

async fn all(store: &Store) -> Vec<LogRecord> {
    store.read_log(0).read_to_end().await.unwrap()
}

/// Append, read back (whole, from the middle, chunked, tailing), then reopen.
pub async fn round_trip_and_reopen(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 0);
    assert!(all(&store).await.is_empty());
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    assert_eq!(leadership.epoch(), 1);
    assert!(!leadership.is_lost());

    store.append(&leadership, &records(1..=3)).await.unwrap();
    store.append(&leadership, &records(4..=4)).await.unwrap();
    store.append(&leadership, &[]).await.unwrap();
    store.append(&leadership, &records(5..=25)).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 25);
    assert_eq!(all(&store).await, records(1..=25));
    assert_eq!(
        store.read_log(20).read_to_end().await.unwrap(),
        records(21..=25)
    );
    assert!(store.read_log(25).read_to_end().await.unwrap().is_empty());
    assert!(store.read_log(99).read_to_end().await.unwrap().is_empty());

    let mut reader = store.read_log(0).chunk_size(10);
    let mut sizes = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        sizes.push(chunk.len());
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(reader.position(), 25);
    store.append(&leadership, &records(26..=26)).await.unwrap();
    assert_eq!(reader.next_chunk().await.unwrap(), Some(records(26..=26)));

    let info = store.leader().await.unwrap();
    assert_eq!(info.epoch, 1);
    assert_eq!(info.holder, leadership.holder());
    assert!(info.holder.contains(&std::process::id().to_string()));
    assert!(info.since.is_some());

    let cluster_id = store.cluster_id();
    drop(leadership);
    store.close().await;
    drop(store);

    let store = Store::open(url).await.unwrap();
    assert_eq!(store.cluster_id(), cluster_id);
    assert_eq!(store.last_seq().await.unwrap(), 26);
    assert_eq!(all(&store).await, records(1..=26));
    let leadership = tokio::time::timeout(PATIENCE, store.acquire_leadership(POLL))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leadership.epoch(), 2);
    store.append(&leadership, &records(27..=27)).await.unwrap();
    assert_eq!(all(&store).await, records(1..=27));
}

/// Gaps, duplicates, non-contiguous batches and out-of-range seqs write nothing.
pub async fn gap_and_duplicate_refused(url: &str) {
    let store = Store::open(url).await.unwrap();
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    store.append(&leadership, &records(1..=5)).await.unwrap();

    for (batch, first) in [(7..=8, 7), (5..=6, 5), (1..=1, 1), (6..=6, 6)] {
        let result = store.append(&leadership, &records(batch)).await;
        if first == 6 {
            result.unwrap();
            continue;
        }
        match result {
            Err(StoreError::OutOfSequence {
                last: 5,
                expected: 6,
                first: f,
            }) => assert_eq!(f, first),
            other => panic!("batch from {first}: {other:?}"),
        }
    }
    let mut skipping = records(7..=9);
    skipping.remove(1);
    let err = store.append(&leadership, &skipping).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BatchNotContiguous {
                index: 1,
                expected: 8,
                found: 9
            }
        ),
        "{err:?}"
    );
    let mut repeating = records(7..=7);
    repeating.extend(records(7..=7));
    let err = store.append(&leadership, &repeating).await.unwrap_err();
    assert!(
        matches!(err, StoreError::BatchNotContiguous { index: 1, .. }),
        "{err:?}"
    );
    let huge = [LogRecord {
        seq: u64::MAX,
        command: "{}".into(),
    }];
    let err = store.append(&leadership, &huge).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SeqOutOfRange(u64::MAX)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&u64::MAX.to_string()),
        "the message names the seq: {err}"
    );

    assert_eq!(store.last_seq().await.unwrap(), 6);
    assert_eq!(all(&store).await, records(1..=6));
}

/// Watermarks start at 0, never go down, are per stream and survive a reopen.
pub async fn published_watermarks(url: &str) {
    let store = Store::open(url).await.unwrap();
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    assert_eq!(store.published("l2pop-fanout").await.unwrap(), 0);
    store
        .set_published(&leadership, "l2pop-fanout", 10)
        .await
        .unwrap();
    store
        .set_published(&leadership, "l2pop-fanout", 7)
        .await
        .unwrap();
    assert_eq!(store.published("l2pop-fanout").await.unwrap(), 10);
    store
        .set_published(&leadership, "l2pop-fanout", 12)
        .await
        .unwrap();
    store.set_published(&leadership, "evpn", 3).await.unwrap();
    assert_eq!(store.published("l2pop-fanout").await.unwrap(), 12);
    assert_eq!(store.published("evpn").await.unwrap(), 3);
    assert_eq!(store.published("other").await.unwrap(), 0);
    drop(leadership);
    store.close().await;
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.published("l2pop-fanout").await.unwrap(), 12);
}

/// Snapshots, compaction, and reading around a compacted log.
pub async fn snapshots_and_compaction(url: &str) {
    let store = Store::open(url).await.unwrap();
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap(), None);
    assert_eq!(store.compact(&leadership).await.unwrap(), 0);
    store.append(&leadership, &records(1..=10)).await.unwrap();
    let err = store
        .save_snapshot(&leadership, 11, b"s11")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SnapshotAhead { seq: 11, last: 10 }),
        "{err:?}"
    );
    store.save_snapshot(&leadership, 4, b"s4").await.unwrap();
    store.save_snapshot(&leadership, 8, b"s8").await.unwrap();
    let latest = store.latest_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.seq, latest.state.as_slice()), (8, &b"s8"[..]));

    assert_eq!(store.compact(&leadership).await.unwrap(), 8);
    let err = store.read_log(0).read_to_end().await.unwrap_err();
    assert!(
        matches!(err, StoreError::LogCompacted { after: 0, floor: 8 }),
        "{err:?}"
    );
    assert_eq!(
        store.read_log(8).read_to_end().await.unwrap(),
        records(9..=10)
    );
    assert_eq!(store.last_seq().await.unwrap(), 10);
    assert_eq!(store.compact(&leadership).await.unwrap(), 0);

    // A reader that started before a compaction, at the end of the log (a standby following
    // it), is told the log was compacted past it, not that the log ends there.
    let mut follower = store.read_log(8).chunk_size(1);
    assert_eq!(follower.next_chunk().await.unwrap(), Some(records(9..=9)));
    let mut caught_up = store.read_log(8);
    assert_eq!(caught_up.next_chunk().await.unwrap(), Some(records(9..=10)));
    assert_eq!(caught_up.next_chunk().await.unwrap(), None);

    // Compacting the whole log keeps the head, so the next append still fits.
    store.save_snapshot(&leadership, 10, b"s10").await.unwrap();
    assert_eq!(store.compact(&leadership).await.unwrap(), 2);
    let err = follower.next_chunk().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::LogCompacted {
                after: 9,
                floor: 10
            }
        ),
        "{err:?}"
    );
    // One that had read everything the snapshot holds goes on.
    assert_eq!(caught_up.next_chunk().await.unwrap(), None);
    assert_eq!(store.last_seq().await.unwrap(), 10);
    let err = store
        .append(&leadership, &records(1..=1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfSequence { last: 10, .. }),
        "{err:?}"
    );
    store.append(&leadership, &records(11..=11)).await.unwrap();
    assert_eq!(
        store.read_log(10).read_to_end().await.unwrap(),
        records(11..=11)
    );
    let latest = store.latest_snapshot().await.unwrap().unwrap();
    assert_eq!((latest.seq, latest.state.as_slice()), (10, &b"s10"[..]));
}

/// One call appends a group-commit batch of 5,000 records, and reads come back in chunks.
pub async fn batch_of_5000(url: &str) {
    let store = Store::open(url).await.unwrap();
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    let batch = records(1..=5_000);
    store.append(&leadership, &batch).await.unwrap();
    store
        .append(&leadership, &records(5_001..=10_000))
        .await
        .unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 10_000);
    let mut reader = store.read_log(0).chunk_size(3_000);
    let mut read = Vec::new();
    while let Some(mut chunk) = reader.next_chunk().await.unwrap() {
        assert!(chunk.len() <= 3_000);
        read.append(&mut chunk);
    }
    assert_eq!(read, records(1..=10_000));
}

/// The schema version is recorded, re-opening changes nothing, and a newer schema is refused.
pub async fn migrations_versioned(url: &str, insert_future_migration: &str) {
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    let cluster_id = store.cluster_id();
    store.close().await;
    for _ in 0..2 {
        let store = Store::open(url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 1);
        assert_eq!(store.cluster_id(), cluster_id);
        store.close().await;
    }
    assert_eq!(
        raw_i64(url, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        1
    );
    assert_eq!(raw_i64(url, "SELECT COUNT(*) FROM meta").await, 1);

    raw_exec(url, insert_future_migration).await;
    let err = Store::open(url).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99_990_101,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("99990101"), "{err}");
}

/// A second handle on the same store stands by until the first leadership is dropped.
pub async fn second_handle_waits_for_leadership(url: &str) {
    let a = Store::open(url).await.unwrap();
    let b = Store::open(url).await.unwrap();
    let leadership_a = a.acquire_leadership_as("a", POLL).await.unwrap();
    assert!(
        tokio::time::timeout(POLL * 6, b.acquire_leadership_as("b", POLL))
            .await
            .is_err(),
        "b must stand by while a leads"
    );
    let standby = tokio::spawn(async move {
        let leadership = b.acquire_leadership_as("b", POLL).await.unwrap();
        (b, leadership)
    });
    tokio::time::sleep(POLL * 3).await;
    assert!(!standby.is_finished());
    a.append(&leadership_a, &records(1..=2)).await.unwrap();
    let epoch_a = leadership_a.epoch();
    drop(leadership_a);
    let (b, leadership_b) = tokio::time::timeout(PATIENCE, standby)
        .await
        .expect("b leads after a's leadership is dropped")
        .unwrap();
    assert_eq!(leadership_b.epoch(), epoch_a + 1);
    assert_eq!(b.leader().await.unwrap().holder, "b");
    // The new leader reads everything the old one acknowledged, then continues the log.
    assert_eq!(all(&b).await, records(1..=2));
    b.append(&leadership_b, &records(3..=3)).await.unwrap();
}

/// A leadership whose epoch was superseded can write nothing, and notices it lost.
pub async fn superseded_epoch_is_fenced(url: &str) {
    let store = Store::open(url).await.unwrap();
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    store.append(&leadership, &records(1..=3)).await.unwrap();
    store.save_snapshot(&leadership, 3, b"state").await.unwrap();
    // Another leader took over without this process's lock being involved.
    raw_exec(url, "UPDATE leader SET epoch = epoch + 1 WHERE id = 1").await;

    let mine = leadership.epoch();
    let deposed = |err: StoreError| {
        assert!(
            matches!(err, StoreError::Deposed { mine: m, current: c } if m == mine && c == mine + 1),
            "{err:?}"
        );
    };
    deposed(
        store
            .append(&leadership, &records(4..=6))
            .await
            .unwrap_err(),
    );
    deposed(store.set_published(&leadership, "s", 3).await.unwrap_err());
    deposed(
        store
            .save_snapshot(&leadership, 3, b"other")
            .await
            .unwrap_err(),
    );
    deposed(store.compact(&leadership).await.unwrap_err());
    assert_eq!(store.last_seq().await.unwrap(), 3);
    assert_eq!(all(&store).await, records(1..=3));
    assert_eq!(store.published("s").await.unwrap(), 0);
    assert_eq!(
        store.latest_snapshot().await.unwrap().unwrap().state,
        b"state"
    );
    tokio::time::timeout(PATIENCE, leadership.lost())
        .await
        .expect("the monitor notices the newer epoch");
    assert!(leadership.is_lost());
}

/// A leadership of one store is refused by another.
pub async fn foreign_leadership_refused(url_a: &str, url_b: &str) {
    let a = Store::open(url_a).await.unwrap();
    let b = Store::open(url_b).await.unwrap();
    assert_ne!(a.cluster_id(), b.cluster_id());
    let leadership_a = a.acquire_leadership(POLL).await.unwrap();
    let _leadership_b = b.acquire_leadership(POLL).await.unwrap();
    let err = b.append(&leadership_a, &records(1..=1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ForeignLeadership { leadership, store }
            if leadership == a.cluster_id() && store == b.cluster_id()),
        "{err:?}"
    );
    assert_eq!(b.last_seq().await.unwrap(), 0);
}

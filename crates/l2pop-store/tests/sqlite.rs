//! The SQLite backend against real files in a temporary directory, including a child process
//! killed with SIGKILL in the middle of appending.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{PATIENCE, POLL, random_u64, records};
use l2pop_store::{BackendKind, Store, StoreError};
use tokio::io::{AsyncBufReadExt, BufReader};

fn url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite:{}", dir.path().join(name).display())
}

#[tokio::test]
async fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    common::round_trip_and_reopen(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn sqlite_double_slash_url_and_file_creation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub-less.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), BackendKind::Sqlite);
    assert!(path.exists());
    let journal: String = {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn gap_and_duplicate_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::gap_and_duplicate_refused(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn published_watermarks() {
    let dir = tempfile::tempdir().unwrap();
    common::published_watermarks(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn snapshots_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    common::snapshots_and_compaction(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn batch_of_5000() {
    let dir = tempfile::tempdir().unwrap();
    common::batch_of_5000(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn migrations_versioned() {
    let dir = tempfile::tempdir().unwrap();
    common::migrations_versioned(
        &url(&dir, "state.db"),
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101, 'from the future', TRUE, X'00', 0)",
    )
    .await;
}

#[tokio::test]
async fn second_handle_waits_for_leadership() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir, "state.db");
    common::second_handle_waits_for_leadership(&url).await;
    assert!(dir.path().join("state.db.lock").exists());
}

#[tokio::test]
async fn superseded_epoch_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    common::superseded_epoch_is_fenced(&url(&dir, "state.db")).await;
}

#[tokio::test]
async fn foreign_leadership_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::foreign_leadership_refused(&url(&dir, "a.db"), &url(&dir, "b.db")).await;
}

#[tokio::test]
async fn in_memory_store() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let leadership = store.acquire_leadership(POLL).await.unwrap();
    store.append(&leadership, &records(1..=100)).await.unwrap();
    assert_eq!(
        store.read_log(0).read_to_end().await.unwrap(),
        records(1..=100)
    );
    // Clones share the database and the leader lock.
    let clone = store.clone();
    assert!(
        tokio::time::timeout(POLL * 4, clone.acquire_leadership(POLL))
            .await
            .is_err()
    );
    drop(leadership);
    let leadership = clone.acquire_leadership(POLL).await.unwrap();
    assert_eq!(leadership.epoch(), 2);
    // A second open is a different, empty database.
    let other = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(other.last_seq().await.unwrap(), 0);
    assert_ne!(other.cluster_id(), store.cluster_id());
}

#[tokio::test]
async fn unsupported_url_names_the_url() {
    let err = Store::open("mysql://root@localhost/l2pop")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("mysql://root@localhost/l2pop"));
}

#[tokio::test]
async fn unopenable_file_is_an_open_error() {
    // A missing folder is created (see `missing_folder_is_created_or_named`); a folder where
    // the database file should be cannot be opened.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a-dir/state.db");
    std::fs::create_dir_all(&path).unwrap();
    let url = format!("sqlite:{}", path.display());
    let err = Store::open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("a-dir"), "{err}");
}

// --- crash durability -------------------------------------------------------------------------

/// Set in the child process: the database the child appends to.
const CHILD_DB_ENV: &str = "L2POP_STORE_TEST_CHILD_DB";
/// Prefix of the child's stdout lines: "<prefix> leader <epoch>" and "<prefix> ack <seq>".
const MARK: &str = "L2POP-CHILD";

/// Not a test by itself: the body of the child process that
/// `acknowledged_appends_survive_kill_9` starts by re-running this test binary. Without the
/// environment variable it returns at once.
#[tokio::test]
async fn child_process_appending_until_killed() {
    let Ok(path) = std::env::var(CHILD_DB_ENV) else {
        return;
    };
    let store = Store::open(&format!("sqlite:{path}")).await.unwrap();
    let leadership = store
        .acquire_leadership(Duration::from_millis(10))
        .await
        .unwrap();
    println!("{MARK} leader {}", leadership.epoch());
    let mut next = store.last_seq().await.unwrap() + 1;
    let mut random = random_u64();
    loop {
        random = random
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let count = 1 + (random >> 33) % 40;
        let batch = records(next..=next + count - 1);
        store.append(&leadership, &batch).await.unwrap();
        // Acknowledged only after append returned, i.e. after the commit.
        for record in &batch {
            println!("{MARK} ack {}", record.seq);
        }
        next += count;
    }
}

#[tokio::test]
async fn acknowledged_appends_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let url = format!("sqlite:{}", path.display());
    let mut acknowledged_total = 0;
    for round in 1..=3 {
        let acked = run_child_and_kill(&path, &url, round).await;
        acknowledged_total += acked.len();
        let store = Store::open(&url).await.unwrap();
        // The lock died with the child.
        let leadership = tokio::time::timeout(PATIENCE, store.acquire_leadership(POLL))
            .await
            .expect("the killed child's lock is released")
            .unwrap();
        let log = store.read_log(0).read_to_end().await.unwrap();
        let last = store.last_seq().await.unwrap();
        assert_eq!(log.len() as u64, last, "round {round}: contiguous from 1");
        assert_eq!(
            log,
            records(1..=last),
            "round {round}: every command intact"
        );
        for seq in &acked {
            assert!(
                *seq <= last,
                "round {round}: acknowledged seq {seq} lost; log ends at {last}"
            );
        }
        assert_eq!(
            leadership.epoch(),
            2 * round as u64,
            "child and parent each led once"
        );
        drop(leadership);
        store.close().await;
    }
    assert!(acknowledged_total > 0);
}

/// What the child reports on stdout.
enum ChildEvent {
    Leader(u64),
    Ack(u64),
}

/// Starts the child, checks that this process stands by while it leads, kills it with SIGKILL
/// after a random number of further acknowledgements, and returns every seq it acknowledged.
async fn run_child_and_kill(path: &Path, url: &str, round: u32) -> Vec<u64> {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_appending_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain stdout continuously, so the child never blocks on a full pipe and is killed while
    // it is really appending.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Some((_, event)) = line.split_once(MARK) else {
                continue;
            };
            let event = event.trim();
            let event = if let Some(epoch) = event.strip_prefix("leader ") {
                ChildEvent::Leader(epoch.parse().unwrap())
            } else if let Some(seq) = event.strip_prefix("ack ") {
                ChildEvent::Ack(seq.parse().unwrap())
            } else {
                panic!("unexpected child line {line:?}");
            };
            if events_tx.send(event).is_err() {
                break;
            }
        }
    });
    let mut next_event = async || {
        tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("child makes progress")
            .expect("child exited before being killed")
    };

    let mut acked = Vec::new();
    loop {
        match next_event().await {
            ChildEvent::Leader(epoch) => {
                assert_eq!(epoch, 2 * u64::from(round) - 1);
                break;
            }
            ChildEvent::Ack(seq) => acked.push(seq),
        }
    }
    // Another process on the same file stands by while the child leads.
    let standby = Store::open(url).await.unwrap();
    assert!(
        tokio::time::timeout(POLL * 4, standby.acquire_leadership(POLL))
            .await
            .is_err(),
        "round {round}: a second process must not lead while the child does"
    );
    standby.close().await;

    let target = 20 + random_u64() % 300;
    let mut since_standby = 0;
    while since_standby < target {
        if let ChildEvent::Ack(seq) = next_event().await {
            acked.push(seq);
            since_standby += 1;
        }
    }
    tokio::time::sleep(Duration::from_micros(random_u64() % 3_000)).await;
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed, not exited: {status}");
    // Acknowledgements written before the kill are still in the pipe or the channel.
    reader.await.unwrap();
    while let Some(event) = events.recv().await {
        if let ChildEvent::Ack(seq) = event {
            acked.push(seq);
        }
    }
    acked
}

/// A fresh machine: the database's folder does not exist yet. It is created (mode 0750); when
/// it cannot be, the error names the folder and says what to do.
#[tokio::test]
async fn missing_folder_is_created_or_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/l2pop/l2pop.db");
    Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o027, 0, "folder mode {mode:o} lets others in");
    }

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let below_a_file = file.join("sub/l2pop.db");
    let error = Store::open(&format!("sqlite:{}", below_a_file.display()))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, l2pop_store::StoreError::CreateFolder { .. })
            && text.contains(&file.join("sub").display().to_string())
            && text.contains("create it"),
        "{text}"
    );
}

/// A zeroed or foreign file where the database should be (a failed restore, a wrong path) is
/// refused, naming the path and what to do; it never silently becomes a new, empty cluster.
/// Creating a store on an existing file takes [`Init::Explicit`] (`l2pop server --init`).
#[tokio::test]
async fn an_empty_or_foreign_file_is_not_a_new_store() {
    use l2pop_store::Init;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.path().join("foreign.db");
    std::fs::write(&foreign, vec![0u8; 4096]).unwrap();
    let bare = dir.path().join("bare.db");
    {
        // A valid SQLite database that l2pop never initialised.
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite:{}?mode=rwc", bare.display()))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE other (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for (path, why) in [
        (&empty, "is empty"),
        (&foreign, "no SQLite header"),
        (&bare, "no l2pop schema"),
    ] {
        let error = Store::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::NotAStore { .. }),
            "{}: {error:?}",
            path.display()
        );
        let message = error.to_string();
        for needed in [&path.display().to_string()[..], why, "--init"] {
            assert!(message.contains(needed), "no {needed:?} in: {message}");
        }
        if path != &foreign {
            assert_eq!(
                std::fs::metadata(path).unwrap().len() == 0,
                path == &empty,
                "refusing changed {}",
                path.display()
            );
        }
    }
    assert_eq!(std::fs::read(&foreign).unwrap(), vec![0u8; 4096]);

    // Explicitly: an empty file becomes a store; a foreign one is still refused.
    let store = Store::open_with(&format!("sqlite:{}", empty.display()), Init::Explicit)
        .await
        .unwrap();
    let cluster = store.cluster_id();
    store.close().await;
    let reopened = Store::open(&format!("sqlite:{}", empty.display()))
        .await
        .unwrap();
    assert_eq!(reopened.cluster_id(), cluster);
    reopened.close().await;
    let error = Store::open_with(&format!("sqlite:{}", foreign.display()), Init::Explicit)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotAStore { .. }), "{error:?}");
}

//! The README's first run on a fresh machine: the shipped `etc/server.toml` (copied, with only
//! its SQLite path moved under a temporary folder that does not exist yet and its port made
//! free), the built binary as the server, then the README's client sequence through the
//! binary's own verbs. And the same start where the folder cannot be created: a clear error
//! that says what to do, and no "listening" before it.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{file_tail, free_port, http_client};

/// The token the shipped configuration sets and the README exports.
const SHIPPED_ADMIN: &str = "change-me-admin";

/// The shipped configuration with `sqlite:/var/lib/l2pop/l2pop.db` → `sqlite:<db>` and port
/// 9696 → `port`; everything else as shipped.
fn shipped_config(db: &Path, port: u16) -> String {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/server.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let store = "url = \"sqlite:/var/lib/l2pop/l2pop.db\"";
    let listen = "listen = \"127.0.0.1:9696\"";
    assert!(text.contains(store) && text.contains(listen), "{text}");
    text.replace(store, &format!("url = \"sqlite:{}\"", db.display()))
        .replace(listen, &format!("listen = \"127.0.0.1:{port}\""))
}

/// `l2pop server --config <config>` with no `L2POP_*` overrides, stderr to `stderr`.
fn server(config: &Path, stderr: &Path) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_l2pop"));
    command
        .arg("server")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("L2POP_") {
            command.env_remove(key);
        }
    }
    command.spawn().unwrap()
}

/// A client verb as the README runs it: `L2POP_URL` and `L2POP_TOKEN` in the environment.
async fn l2pop(url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_l2pop"))
        .args(args)
        .env("L2POP_URL", url)
        .env("L2POP_TOKEN", SHIPPED_ADMIN)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn readme_sequence_on_a_fresh_machine() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("var/lib/l2pop/l2pop.db");
    assert!(!db.parent().unwrap().exists());
    let port = free_port();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, shipped_config(&db, port)).unwrap();
    let stderr = dir.path().join("server.stderr");
    let mut child = server(&config, &stderr);

    let url = format!("http://127.0.0.1:{port}");
    let http = http_client();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status}\n{}", file_tail(&stderr, 40));
        }
        if let Ok(response) = http.get(format!("{url}/healthz")).send().await
            && let Ok(body) = response.json::<Value>().await
            && body["role"] == "active"
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not active within 30 s\n{}",
            file_tail(&stderr, 40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(db.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(db.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777 & !0o750, 0, "folder mode {mode:o}");
    }
    let log = std::fs::read_to_string(&stderr).unwrap();
    let listening = log.find("listening").unwrap_or_else(|| panic!("{log}"));
    let opened = log
        .find("leadership acquired")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        opened < listening,
        "\"listening\" before the store was open:\n{log}"
    );

    for args in [
        &["network", "create", "--name", "net1"][..],
        &["port", "list"],
        &["fdb", "show", "--host", "compute-1"],
    ] {
        let output = l2pop(&url, args).await;
        assert!(
            output.status.success(),
            "l2pop {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr),
            file_tail(&stderr, 20)
        );
    }
    let output = l2pop(&url, &["network", "list"]).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("net1"));
}

#[tokio::test]
async fn an_impossible_folder_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"").unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        shipped_config(&file.join("l2pop/l2pop.db"), free_port()),
    )
    .unwrap();
    let stderr = dir.path().join("server.stderr");
    let status = tokio::time::timeout(Duration::from_secs(30), server(&config, &stderr).wait())
        .await
        .unwrap()
        .unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(!status.success(), "{log}");
    for needed in [
        "store.url",
        "L2POP_STORE_URL",
        "cannot create the folder",
        "not-a-folder/l2pop",
    ] {
        assert!(log.contains(needed), "no {needed:?} in:\n{log}");
    }
    assert!(!log.contains("listening"), "{log}");
}

/// A zeroed database file (a failed restore) is refused with its path and what to do, instead
/// of silently starting a new, empty cluster; `--init` makes the new store explicitly.
#[tokio::test]
async fn an_empty_database_file_is_refused_unless_init() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l2pop.db");
    std::fs::write(&db, b"").unwrap();
    let port = free_port();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, shipped_config(&db, port)).unwrap();
    let stderr = dir.path().join("server.stderr");
    let status = tokio::time::timeout(Duration::from_secs(30), server(&config, &stderr).wait())
        .await
        .unwrap()
        .unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(!status.success(), "{log}");
    for needed in [&db.display().to_string()[..], "is empty", "--init"] {
        assert!(log.contains(needed), "no {needed:?} in:\n{log}");
    }
    assert!(!log.contains("listening"), "{log}");
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "the file was written"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("init = false", "init = true")).unwrap();
    let mut child = server(&config, &stderr);
    let http = http_client();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status}\n{}", file_tail(&stderr, 40));
        }
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && let Ok(body) = response.json::<Value>().await
            && body["role"] == "active"
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not active within 30 s\n{}",
            file_tail(&stderr, 40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

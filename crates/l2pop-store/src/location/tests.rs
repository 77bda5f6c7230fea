#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::{Location, redact};
use crate::StoreError;

#[test]
fn sqlite_forms() {
    assert_eq!(
        Location::parse("sqlite:state.db").unwrap(),
        Location::SqliteFile(PathBuf::from("state.db"))
    );
    assert_eq!(
        Location::parse("sqlite://var/l2pop/state.db").unwrap(),
        Location::SqliteFile(PathBuf::from("var/l2pop/state.db"))
    );
    assert_eq!(
        Location::parse("sqlite:///var/lib/l2pop/state.db").unwrap(),
        Location::SqliteFile(PathBuf::from("/var/lib/l2pop/state.db"))
    );
    assert_eq!(
        Location::parse("sqlite:/tmp/x.db").unwrap(),
        Location::SqliteFile(PathBuf::from("/tmp/x.db"))
    );
    assert_eq!(
        Location::parse("sqlite::memory:").unwrap(),
        Location::SqliteMemory
    );
}

#[test]
fn postgres_forms() {
    for url in [
        "postgres://postgres@127.0.0.1:5432/postgres",
        "postgresql://u:p@db.example/l2pop?sslmode=disable",
    ] {
        assert_eq!(
            Location::parse(url).unwrap(),
            Location::Postgres(url.to_owned())
        );
    }
}

#[test]
fn other_schemes_are_refused_naming_the_url() {
    for url in [
        "mysql://root@localhost/l2pop",
        "state.db",
        "",
        "sqlite:",
        "sqlite://",
        "SQLITE:x.db",
        "postgres:/x",
    ] {
        let err = Location::parse(url).unwrap_err();
        assert!(
            matches!(&err, StoreError::UnsupportedUrl { url: u } if u == url),
            "{url}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("{url:?}")), "{err}");
    }
}

#[test]
fn refused_url_hides_its_password() {
    let err = Location::parse("mysql://root:hunter2@localhost/l2pop").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("root:***@localhost"), "{err}");
}

#[test]
fn redaction() {
    assert_eq!(
        redact("postgres://u:secret@h:5432/db?x=1"),
        "postgres://u:***@h:5432/db?x=1"
    );
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    assert_eq!(redact("sqlite:a@b:c"), "sqlite:a@b:c");
    assert_eq!(
        redact("postgres://u:p@ss@h/db"),
        "postgres://u:***@h/db",
        "the last @ ends the userinfo"
    );
}

#[test]
fn lock_file_sits_next_to_the_database() {
    assert_eq!(
        Location::lock_path(Path::new("/var/lib/l2pop/state.db")),
        PathBuf::from("/var/lib/l2pop/state.db.lock")
    );
}

//! Store URLs: which backend a URL names, and how to print it without its password.
//!
//! Accepted forms: `sqlite:PATH`, `sqlite://PATH` (`sqlite:///abs/path` is the absolute
//! path `/abs/path`), `sqlite::memory:` (a private in-memory database, for tests), and
//! `postgres://…` / `postgresql://…` (any libpq-style URL sqlx understands).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::StoreError;

/// Where a store lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An SQLite database file (created if missing).
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database that lives as long as the [`crate::Store`].
    SqliteMemory,
    /// A PostgreSQL database; the URL is handed to sqlx unchanged.
    Postgres(String),
}

impl Location {
    /// Parses a store URL; any scheme other than the ones listed in the module doc is refused.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let unsupported = || StoreError::UnsupportedUrl { url: redact(url) };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(unsupported());
        };
        let path = rest.strip_prefix("//").unwrap_or(rest);
        match path {
            "" => Err(unsupported()),
            ":memory:" => Ok(Self::SqliteMemory),
            path => Ok(Self::SqliteFile(PathBuf::from(path))),
        }
    }

    /// The leader lock file of an SQLite database: `<db>.lock` next to it.
    pub(crate) fn lock_path(db: &std::path::Path) -> PathBuf {
        let mut name = OsString::from(db.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }
}

/// The URL with any password replaced by `***`, for error messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;

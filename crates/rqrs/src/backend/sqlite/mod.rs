//! The embedded backend: one SQLite database file, shared by any number of worker and producer
//! processes on one machine, with the behaviour of the Redis backend and no server.
//!
//! URLs: `sqlite:///absolute/path/jobs.db`, `sqlite://relative/path/jobs.db` (relative to the
//! working directory), or `sqlite::memory:` (a database of this process alone, for tests), with
//! optional settings in the query: `synchronous=normal` (the default: a commit survives a crash
//! of the process, not a power loss) or `synchronous=full` (it survives a power loss too), and
//! `busy_timeout=<milliseconds>` (default 5000: how long a write waits for another process's).
//!
//! The file is in WAL mode, so readers never wait for the writer. Every change of a job is one
//! transaction (`BEGIN IMMEDIATE`, which takes the write lock at once), and the writes that wait
//! while one runs share the next (`db.rs`). One file per trait of the seam, as the Redis backend
//! has; the tables are in `schema.rs`.
//!
//! What only Redis has is refused with a clear error: waiting for replicas, TLS, Sentinel, and
//! Python RQ (which reads only Redis).

mod changes;
mod codec;
mod db;
mod error;
mod groups;
mod jobs;
mod queues;
mod registries;
mod rows;
mod runs;
mod scheduler;
mod schema;
#[cfg(feature = "testing")]
mod testing;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Backend, ConnectOptions};
use crate::error::{Error, Result};
use changes::Changes;
use db::Db;

/// How many prepared statements a connection keeps: more than the backend has.
const STATEMENTS: usize = 256;

/// The database's default busy timeout.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    /// A database of this process alone.
    Memory,
}

/// How hard a commit is pushed to the disk (SQLite's `synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    /// A commit survives a crash of the process; the last ones may be lost with the power.
    Normal,
    /// A commit survives a power loss too: one fsync per commit.
    Full,
}

/// What a URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    location: Location,
    synchronous: Synchronous,
    busy_timeout: Duration,
}

impl Settings {
    /// Reads a `sqlite:` URL.
    fn parse(url: &str) -> Result<Settings> {
        let invalid = |reason: String| Error::invalid("url", format!("{url}: {reason}"));
        let syntax = "use sqlite:///absolute/path.db, sqlite://relative/path.db or sqlite::memory:";
        let (rest, query) = url.split_once('?').unwrap_or((url, ""));
        let location = if rest == "sqlite::memory:" {
            Location::Memory
        } else if let Some(path) = rest.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid(format!("no file named; {syntax}")));
            }
            Location::File(PathBuf::from(path))
        } else {
            return Err(invalid(syntax.to_owned()));
        };
        let mut settings = Settings {
            location,
            synchronous: Synchronous::Normal,
            busy_timeout: BUSY_TIMEOUT,
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "synchronous" => {
                    settings.synchronous = match value.to_ascii_lowercase().as_str() {
                        "normal" => Synchronous::Normal,
                        "full" => Synchronous::Full,
                        _ => {
                            return Err(invalid(format!(
                                "synchronous={value}: use normal (a commit survives a crash of \
                                 the process) or full (a power loss too)"
                            )));
                        }
                    }
                }
                "busy_timeout" => {
                    let millis: u64 = value
                        .parse()
                        .map_err(|_| invalid(format!("busy_timeout={value}: give milliseconds")))?;
                    settings.busy_timeout = Duration::from_millis(millis);
                }
                _ => {
                    return Err(invalid(format!(
                        "unknown setting {key:?}: the settings are synchronous and busy_timeout"
                    )));
                }
            }
        }
        Ok(settings)
    }
}

/// The SQLite backend.
pub(crate) struct SqliteBackend {
    url: String,
    settings: Settings,
    db: Arc<Db>,
    changes: Arc<Changes>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Whether a URL names a SQLite database.
    pub(crate) fn is_url(url: &str) -> bool {
        url.starts_with("sqlite:")
    }

    /// Opens the database a `sqlite:` URL names, creating it (and its tables) when it does not
    /// exist; `root_ca` must be `None` (no TLS here). The key prefix is Redis's and has no use
    /// here.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad URL, TLS, or a database of a newer rqrs or another
    /// program; a database error (a missing directory, a read-only or corrupt file, a lock held
    /// longer than the busy timeout) that says what to do.
    pub(crate) async fn connect(options: ConnectOptions) -> Result<Self> {
        let url = options.url.as_str();
        if options.root_ca.is_some() {
            return Err(Error::invalid(
                "url",
                format!("{url}: TLS is for Redis; a SQLite database is a local file"),
            ));
        }
        let settings = Settings::parse(url)?;
        let opened = settings.clone();
        let conn = tokio::task::spawn_blocking(move || open(&opened))
            .await
            .map_err(|error| Error::invalid("url", format!("{url}: {error}")))??;
        let file = match &settings.location {
            // Made absolute: the watch must not follow a change of the working directory.
            Location::File(path) => {
                Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
            }
            Location::Memory => None,
        };
        let changes = Arc::new(Changes::new(file.as_deref()));
        Ok(SqliteBackend {
            url: url.to_owned(),
            settings,
            db: Arc::new(Db::start(conn, Arc::clone(&changes))?),
            changes,
        })
    }

    fn db(&self) -> &Db {
        &self.db
    }
}

/// Opens a connection with rqrs's settings and prepares the tables.
fn open(settings: &Settings) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let (conn, what) = match &settings.location {
        Location::Memory => (
            Connection::open_in_memory_with_flags(flags)?,
            "the in-memory database".to_owned(),
        ),
        Location::File(path) => {
            let what = path.display().to_string();
            let directory = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or_else(|| std::path::Path::new("."));
            if !directory.is_dir() {
                return Err(Error::invalid(
                    "url",
                    format!(
                        "the directory of {what} does not exist: create {} first",
                        directory.display()
                    ),
                ));
            }
            (Connection::open_with_flags(path, flags)?, what)
        }
    };
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(Error::invalid(
            "url",
            format!("{what} is read-only: give this process write access to it and its directory"),
        ));
    }
    conn.busy_timeout(settings.busy_timeout)?;
    // Every statement the backend runs stays prepared (SQLite's default keeps 16).
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    if settings.location != Location::Memory {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::invalid(
                "url",
                format!(
                    "{what} cannot be put in WAL mode (it is in {mode} mode): is it on a network \
                     file system? rqrs needs a local file"
                ),
            ));
        }
    }
    conn.pragma_update(
        None,
        "synchronous",
        match settings.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        },
    )?;
    schema::prepare(&conn, &what)?;
    Ok(conn)
}

impl Backend for SqliteBackend {
    fn url(&self) -> String {
        self.url.clone()
    }

    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions::new(&self.url)
    }

    fn is_shared(&self) -> bool {
        self.settings.location != Location::Memory
    }

    /// The same thread and connection: they are this process's, not tied to an async runtime.
    async fn detached(&self) -> Result<Self> {
        Ok(SqliteBackend {
            url: self.url.clone(),
            settings: self.settings.clone(),
            db: Arc::clone(&self.db),
            changes: Arc::clone(&self.changes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_or_memory_and_settings() {
        let file = Settings::parse("sqlite:///var/lib/app/jobs.db").unwrap();
        assert_eq!(file.location, Location::File("/var/lib/app/jobs.db".into()));
        assert_eq!(file.synchronous, Synchronous::Normal);
        let relative =
            Settings::parse("sqlite://jobs.db?synchronous=FULL&busy_timeout=100").unwrap();
        assert_eq!(relative.location, Location::File("jobs.db".into()));
        assert_eq!(relative.synchronous, Synchronous::Full);
        assert_eq!(relative.busy_timeout, Duration::from_millis(100));
        assert_eq!(
            Settings::parse("sqlite::memory:").unwrap().location,
            Location::Memory
        );
        for bad in [
            "sqlite:jobs.db",
            "sqlite://",
            "sqlite://a.db?synchronous=off",
            "sqlite://a.db?cache=1",
        ] {
            assert!(Settings::parse(bad).is_err(), "{bad}");
        }
    }
}

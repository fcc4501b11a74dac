//! The database's tables, versioned with `PRAGMA user_version` and marked as rqrs's with
//! `PRAGMA application_id`: created on first open, migrated on open, and refused when a newer
//! rqrs made them.
//!
//! A job is one row of `jobs`, and where it is (its queue, or one of its queue's registries) is
//! that row's `place` and `score`, so a job is in exactly one place by construction. A job that
//! runs is in the place `started` with its run's execution id and its deadline as the score; its
//! results are a list in the row. So every step of a job's life (enqueue, start, heartbeat,
//! finish) writes its one row, and the rows of jobs enqueued together sit together (the table is
//! ordered by `seq`, not by the random ids), so that a batch of steps writes few pages. Times
//! are microseconds since the epoch; a row whose `expires_at` has passed is gone for every
//! reader, as a Redis key past its TTL.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The version of the tables below. Each change adds a step to [`MIGRATIONS`].
pub(super) const VERSION: i64 = 1;

/// `PRAGMA application_id` of rqrs's databases ("rqrs").
const APPLICATION_ID: i64 = 0x7271_7273;

/// The tables of version 1.
const TABLES: &str = "
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    -- queued, started, finished, failed, deferred, scheduled, canceled, or NULL (in no place)
    place TEXT,
    -- queued: the order on the queue; started: the run's deadline; finished, failed: when the
    -- entry expires (RQ's score); deferred, canceled: when it went there; scheduled: when due
    score REAL,
    expires_at INTEGER,
    -- what does not change after the enqueue: the call, its options, its lifecycle (JSON)
    spec TEXT NOT NULL,
    created_at INTEGER,
    enqueued_at INTEGER,
    started_at INTEGER,
    ended_at INTEGER,
    last_heartbeat INTEGER,
    worker_name TEXT,
    -- the run in progress (place started), whose outcome only this execution may record
    execution_id TEXT,
    retries_left INTEGER NOT NULL DEFAULT 0,
    repeats_left INTEGER NOT NULL DEFAULT 0,
    meta TEXT,
    group_id TEXT,
    -- the latest results, oldest first (JSON), and when they expire
    results TEXT,
    results_expire_at INTEGER
);
CREATE INDEX jobs_by_place ON jobs (place, origin, score) WHERE place IS NOT NULL;
CREATE INDEX jobs_by_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL;

-- Every queue that has had a job (RQ's rq:queues): never emptied.
CREATE TABLE queues (name TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE dependencies (
    job_id TEXT NOT NULL,
    parent TEXT NOT NULL,
    -- 1 while the job waits on the parent (RQ's dependents set of the parent)
    waiting INTEGER NOT NULL,
    PRIMARY KEY (job_id, parent)
) WITHOUT ROWID;
CREATE INDEX dependencies_by_parent ON dependencies (parent);

CREATE TABLE group_members (
    group_name TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (group_name, job_id)
) WITHOUT ROWID;

CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    queues TEXT NOT NULL,
    pid INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    birth INTEGER,
    last_heartbeat INTEGER,
    current_job TEXT,
    successful_job_count INTEGER NOT NULL DEFAULT 0,
    failed_job_count INTEGER NOT NULL DEFAULT 0,
    total_working_time REAL NOT NULL DEFAULT 0,
    death INTEGER,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The suspension, scheduler locks, maintenance locks: a name, who holds it, until when.
CREATE TABLE flags (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;

CREATE TABLE schedulers (
    name TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Control commands waiting for their worker to read them.
CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker TEXT NOT NULL,
    body TEXT NOT NULL
);
";

/// The steps from each version to the next: `MIGRATIONS[n]` goes from version `n + 1` to
/// `n + 2`. None yet.
const MIGRATIONS: &[&str] = &[];

/// Creates the tables of a new database, migrates an older one, and refuses one that a newer
/// rqrs made or that is not rqrs's. `what` names the database in errors.
///
/// # Errors
/// [`Error::Invalid`] for a database of a newer schema or of another program; a database error.
pub(super) fn prepare(conn: &Connection, what: &str) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let application: i64 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |row| row.get(0),
    )?;
    if version > VERSION {
        return Err(Error::invalid(
            "database",
            format!(
                "{what} has rqrs's schema {version}, newer than this rqrs's ({VERSION}): use a \
                 newer rqrs with it"
            ),
        ));
    }
    if application != APPLICATION_ID && tables > 0 {
        return Err(Error::invalid(
            "database",
            format!("{what} is a SQLite database of another program: give rqrs a file of its own"),
        ));
    }
    if version == VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = (|| -> Result<()> {
        // Read again under the write lock: another process may have prepared it meanwhile.
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == VERSION {
            return Ok(());
        }
        if version == 0 {
            conn.execute_batch(TABLES)?;
        } else {
            for step in MIGRATIONS
                .iter()
                .skip(usize::try_from(version - 1).unwrap_or(0))
            {
                conn.execute_batch(step)?;
            }
        }
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "user_version", VERSION)?;
        Ok(())
    })();
    match migrated {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

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
pub(super) const VERSION: i64 = 2;

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

/// Now in microseconds since the epoch, as SQL (for the triggers).
macro_rules! now_micros {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
    };
}

/// Moves the oldest job in line for a slot of `OLD`'s limit onto its queue (its head when it
/// asks to be), when the limit has a free slot, and notes that waiting workers may have work
/// (see [`TAKE_WAKES`]).
macro_rules! promote {
    () => {
        concat!(
            "UPDATE jobs SET place = 'queued', status = 'queued', enqueued_at = ",
            now_micros!(),
            ", score = CASE WHEN json_extract(spec, '$.enqueue_at_front') \
               THEN (SELECT coalesce(min(q.score), 1.0) - 1.0 FROM jobs q \
                     WHERE q.place = 'queued' AND q.origin = jobs.origin) \
               ELSE (SELECT coalesce(max(q.score), -1.0) + 1.0 FROM jobs q \
                     WHERE q.place = 'queued' AND q.origin = jobs.origin) END \
             WHERE seq = (SELECT w.seq FROM jobs w WHERE w.place = 'rate_limited' \
                          AND w.limit_key = OLD.limit_key ORDER BY w.score, w.seq LIMIT 1) \
               AND (SELECT count(*) FROM jobs h WHERE h.limit_key = OLD.limit_key \
                    AND h.place IN ('queued', 'started')) < OLD.limit_concurrency; \
             INSERT INTO limit_wakes VALUES (1);"
        )
    };
}

/// Puts `NEW`, just put on its queue, in line for a slot of its limit instead when the limit's
/// slots are all held (it is counted among them).
macro_rules! wait_for_slot {
    () => {
        concat!(
            "UPDATE jobs SET place = 'rate_limited', status = 'rate_limited', \
             enqueued_at = NULL, score = ",
            now_micros!(),
            " WHERE seq = NEW.seq AND (SELECT count(*) FROM jobs h \
               WHERE h.limit_key = NEW.limit_key AND h.place IN ('queued', 'started')) \
               > NEW.limit_concurrency;"
        )
    };
}

/// Version 2: rate limits (RQ 3.0's `RateLimit`). A job of a limit carries its key and
/// concurrency in `limit_key` and `limit_concurrency`; it holds a slot while it is queued or
/// running, and waits in the place `rate_limited` (scored by when it came) while every slot is
/// held. Triggers keep that true for every statement that moves a job, so every step (enqueue,
/// requeue, the scheduler, released dependents; finish, failure, a retry that waits, cancel,
/// delete) goes through the limiter in its own transaction: a job that comes onto its queue
/// without a free slot waits in line instead, and a job that leaves its queue or its run, or
/// is deleted, makes way for the oldest in line.
const LIMITS: &str = concat!(
    "ALTER TABLE jobs ADD COLUMN limit_key TEXT;
    CREATE TABLE limit_wakes (n INTEGER);
    ALTER TABLE jobs ADD COLUMN limit_concurrency INTEGER;
    CREATE INDEX jobs_by_limit ON jobs (limit_key, place, score) WHERE limit_key IS NOT NULL;
    CREATE TRIGGER limit_wait_on_insert AFTER INSERT ON jobs
    WHEN NEW.limit_key IS NOT NULL AND NEW.place = 'queued'
    BEGIN ",
    wait_for_slot!(),
    " END;
    CREATE TRIGGER limit_wait_on_move AFTER UPDATE OF place ON jobs
    WHEN NEW.limit_key IS NOT NULL AND NEW.place = 'queued'
      AND OLD.place IS NOT 'queued' AND OLD.place IS NOT 'started'
    BEGIN ",
    wait_for_slot!(),
    " END;
    CREATE TRIGGER limit_release_on_move AFTER UPDATE OF place ON jobs
    WHEN OLD.limit_key IS NOT NULL AND OLD.place IN ('queued', 'started')
      AND (NEW.place IS NULL OR NEW.place NOT IN ('queued', 'started'))
    BEGIN ",
    promote!(),
    " END;
    CREATE TRIGGER limit_release_on_delete AFTER DELETE ON jobs
    WHEN OLD.limit_key IS NOT NULL AND OLD.place IN ('queued', 'started')
    BEGIN ",
    promote!(),
    " END;"
);

/// Run before each commit: rows in `limit_wakes` mean a trigger put a job on a queue, so the
/// commit wakes waiting workers as a Rust step that queues a job does.
pub(super) const TAKE_WAKES: &str = "DELETE FROM limit_wakes";

/// The steps from each version to the next: `MIGRATIONS[n]` goes from version `n + 1` to
/// `n + 2`. A new database gets [`TABLES`] (version 1), then every step.
const MIGRATIONS: &[&str] = &[LIMITS];

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
        }
        for step in MIGRATIONS
            .iter()
            .skip(usize::try_from(version - 1).unwrap_or(0))
        {
            conn.execute_batch(step)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version reads")
    }

    #[test]
    fn a_version_1_database_is_migrated_and_a_new_one_made_at_the_latest() {
        // As the first release made it.
        let old = Connection::open_in_memory().unwrap();
        old.execute_batch(TABLES).unwrap();
        old.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute(
            "INSERT INTO jobs (id, origin, status, place, score, spec) \
             VALUES ('old', 'default', 'queued', 'queued', 0, '{}')",
            [],
        )
        .unwrap();
        prepare(&old, "the old database").unwrap();
        assert_eq!(version(&old), VERSION);
        let kept: String = old
            .query_row("SELECT status FROM jobs WHERE id = 'old'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(kept, "queued");
        let limited: Option<String> = old
            .query_row("SELECT limit_key FROM jobs WHERE id = 'old'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(limited, None);

        let new = Connection::open_in_memory().unwrap();
        prepare(&new, "a new database").unwrap();
        assert_eq!(version(&new), VERSION);
        let triggers: i64 = new
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 4);
        // Opened again, nothing changes.
        prepare(&new, "a new database").unwrap();

        new.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let error = prepare(&new, "a newer database").expect_err("refused");
        assert!(error.to_string().contains("newer"), "{error}");
    }
}

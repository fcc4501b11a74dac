//! The steps on rows that several operations share, each inside the caller's transaction: read
//! a job that has not expired, put a job on its queue, read what ending a run needs, add a
//! result, release a job's dependents, count a run on its worker, delete a job and its traces.
//! They are what `lib.lua`, `start.lua` and `unlist.lua` are to the Redis backend's scripts.

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{self, Entry, JOB_COLUMNS};
use super::db::Tx;
use crate::backend::types::JobRecord;
use crate::defaults::RESULTS_KEPT;
use crate::error::Result;
use crate::job::JobId;
use crate::registry::RegistryKind;

/// The value of `jobs.place` for a registry (`queued` is a job on its queue).
pub(super) fn place(kind: RegistryKind) -> &'static str {
    match kind {
        RegistryKind::Started => "started",
        RegistryKind::Finished => "finished",
        RegistryKind::Failed => "failed",
        RegistryKind::Deferred => "deferred",
        RegistryKind::Scheduled => "scheduled",
        RegistryKind::Canceled => "canceled",
    }
}

/// The job, unless it does not exist or has expired.
///
/// # Errors
/// As [`codec::job`]; a database error.
pub(super) fn job(conn: &Connection, id: &str, now: i64) -> Result<Option<JobRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)"
    ))?;
    let mut rows = statement.query(params![id, now])?;
    match rows.next()? {
        Some(row) => codec::job(row).map(Some),
        None => Ok(None),
    }
}

/// Whether the job exists and has not expired.
pub(super) fn exists(conn: &Connection, id: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM jobs WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .exists(params![id, now])?)
}

/// The job's status, unless it does not exist or has expired.
pub(super) fn status(conn: &Connection, id: &str, now: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT status FROM jobs WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .query_row(params![id, now], |row| row.get(0))
        .optional()?)
}

/// What ending a run (or failing a job) needs of the job's row.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) seq: i64,
    pub(super) origin: String,
    /// The run in progress, if any.
    pub(super) execution_id: Option<String>,
    /// The run's deadline, while it runs.
    pub(super) deadline: Option<f64>,
    /// The job's results, oldest first.
    pub(super) results: Vec<Entry>,
    pub(super) results_expire_at: Option<i64>,
}

/// The row of a job that has not expired, as ending a run reads it.
pub(super) fn held(conn: &Connection, id: &str, now: i64) -> Result<Option<Held>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, origin, execution_id, CASE WHEN place = 'started' THEN score END, \
             results, results_expire_at FROM jobs \
             WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .query_row(params![id, now], |row| {
            let results: Option<String> = row.get(4)?;
            Ok(Held {
                seq: row.get(0)?,
                origin: row.get(1)?,
                execution_id: row.get(2)?,
                deadline: row.get(3)?,
                results: codec::entries(results.as_deref()),
                results_expire_at: row.get(5)?,
            })
        })
        .optional()?)
}

impl Held {
    /// Adds a result, keeping about [`RESULTS_KEPT`] (the oldest go). The results of a job
    /// whose results expired start again from this one.
    pub(super) fn add_result(&mut self, entry: Entry, now: i64) {
        if self.results_expire_at.is_some_and(|at| at <= now) {
            self.results.clear();
            self.results_expire_at = None;
        }
        self.results.push(entry);
        let excess = self.results.len().saturating_sub(RESULTS_KEPT);
        self.results.drain(..excess);
    }

    /// The results as the row's column holds them.
    pub(super) fn results_column(&self) -> Result<Option<String>> {
        if self.results.is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::to_string(&self.results)?))
    }

    /// Whether the job's results hold one of execution `execution_id`: an earlier call whose
    /// reply was lost recorded this run's outcome.
    pub(super) fn recorded(&self, execution_id: &str) -> bool {
        self.results
            .iter()
            .any(|entry| entry.execution_id.as_deref() == Some(execution_id))
    }
}

/// The score that puts a job at the tail (or, with `at_front`, the head) of `queue`.
pub(super) fn queue_score(conn: &Connection, queue: &str, at_front: bool) -> Result<f64> {
    let sql = if at_front {
        "SELECT min(score) FROM jobs WHERE place = 'queued' AND origin = ?1"
    } else {
        "SELECT max(score) FROM jobs WHERE place = 'queued' AND origin = ?1"
    };
    let edge: Option<f64> = conn
        .prepare_cached(sql)?
        .query_row(params![queue], |row| row.get(0))?;
    Ok(match edge {
        None => 0.0,
        Some(edge) if at_front => edge - 1.0,
        Some(edge) => edge + 1.0,
    })
}

/// Puts the job on its queue (`origin`), at the tail or the head, as `queued` with a new
/// `enqueued_at`, and marks the transaction as waking waiting workers.
pub(super) fn enqueue(tx: &Tx<'_>, id: &str, origin: &str, at_front: bool, now: i64) -> Result<()> {
    know_queue(tx, origin)?;
    let score = queue_score(tx, origin, at_front)?;
    tx.prepare_cached(
        "UPDATE jobs SET place = 'queued', score = ?2, status = 'queued', enqueued_at = ?3, \
         execution_id = NULL WHERE id = ?1",
    )?
    .execute(params![id, score, now])?;
    tx.wake_waiters();
    Ok(())
}

/// Adds `queue` to the queues that have had a job.
pub(super) fn know_queue(conn: &Connection, queue: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO queues (name) VALUES (?1)")?
        .execute(params![queue])?;
    Ok(())
}

/// Moves the job into a registry of its queue, with `score`.
pub(super) fn file(conn: &Connection, id: &str, place: &str, score: f64) -> Result<()> {
    conn.prepare_cached("UPDATE jobs SET place = ?2, score = ?3 WHERE id = ?1")?
        .execute(params![id, place, score])?;
    Ok(())
}

/// Enqueues the deferred dependents of job `id`, which ended with `status`, whose other
/// dependencies are done too (RQ's rule: each one that still exists is finished, or failed when
/// the dependent allows failures). A failed parent releases only dependents that allow failures.
pub(super) fn release_dependents(tx: &Tx<'_>, id: &str, status: &str, now: i64) -> Result<()> {
    let dependents: Vec<String> = tx
        .prepare_cached("SELECT job_id FROM dependencies WHERE parent = ?1 AND waiting = 1")?
        .query_map(params![id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for dependent in dependents {
        let Some(job) = job(tx, &dependent, now)? else {
            continue;
        };
        let allow = job.lifecycle.allow_dependency_failures;
        let released_by = status == "finished" || (status == "failed" && allow);
        if job.status.as_str() != "deferred" || !released_by {
            continue;
        }
        let parents: Vec<String> = tx
            .prepare_cached("SELECT parent FROM dependencies WHERE job_id = ?1 AND parent != ?2")?
            .query_map(params![dependent, id], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut ready = true;
        for parent in parents {
            if let Some(other) = self::status(tx, &parent, now)?
                && other != "finished"
                && !(allow && other == "failed")
            {
                ready = false;
            }
        }
        if ready {
            enqueue(
                tx,
                &dependent,
                &job.origin,
                job.lifecycle.enqueue_at_front,
                now,
            )?;
            tx.prepare_cached(
                "UPDATE dependencies SET waiting = 0 WHERE job_id = ?1 AND parent = ?2",
            )?
            .execute(params![dependent, id])?;
        }
    }
    Ok(())
}

/// Clears the worker's `current_job` when it names this job.
pub(super) fn forget_current(conn: &Connection, worker: &str, id: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE workers SET current_job = NULL WHERE name = ?1 AND current_job = ?2",
    )?
    .execute(params![worker, id])?;
    Ok(())
}

/// Counts a run on the worker that ran it (`successful` or failed), with its working time, and
/// clears its `current_job` when it names this job. Only a live registration is updated.
pub(super) fn count_run(
    conn: &Connection,
    worker: &str,
    successful: bool,
    working_seconds: f64,
    id: &str,
    now: i64,
) -> Result<()> {
    let sql = if successful {
        "UPDATE workers SET successful_job_count = successful_job_count + 1, \
         total_working_time = total_working_time + ?2, \
         current_job = CASE WHEN current_job = ?4 THEN NULL ELSE current_job END \
         WHERE name = ?1 AND expires_at > ?3"
    } else {
        "UPDATE workers SET failed_job_count = failed_job_count + 1, \
         total_working_time = total_working_time + ?2, \
         current_job = CASE WHEN current_job = ?4 THEN NULL ELSE current_job END \
         WHERE name = ?1 AND expires_at > ?3"
    };
    conn.prepare_cached(sql)?
        .execute(params![worker, working_seconds, now, id])?;
    Ok(())
}

/// Deletes a job and its traces: its row (wherever it is, with its run and results), its
/// membership of its group and of its parents' dependents, and its own dependents' links to it.
/// Returns whether a row went, and the ids of its dependents.
pub(super) fn delete(conn: &Connection, id: &str) -> Result<(bool, Vec<String>)> {
    let dependents: Vec<String> = conn
        .prepare_cached("SELECT job_id FROM dependencies WHERE parent = ?1")?
        .query_map(params![id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let deleted = conn
        .prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute(params![id])?
        == 1;
    for sql in [
        "DELETE FROM group_members WHERE job_id = ?1",
        "DELETE FROM dependencies WHERE job_id = ?1 OR parent = ?1",
    ] {
        conn.prepare_cached(sql)?.execute(params![id])?;
    }
    Ok((deleted, dependents))
}

/// The id of a job as the library holds it.
pub(super) fn id(text: String) -> JobId {
    JobId::from_stored(text)
}

//! The steps on rows that several operations share, each inside the caller's transaction: read
//! a job that has not expired, put a job on its queue, add a result, release a job's
//! dependents, end a run, count a run on its worker, delete a job and its traces. They are what
//! `lib.lua`, `start.lua` and `unlist.lua` are to the Redis backend's scripts.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::codec::{self, JOB_COLUMNS};
use super::db::Tx;
use crate::backend::types::JobRecord;
use crate::defaults::RESULTS_KEPT;
use crate::error::Result;
use crate::job::JobId;
use crate::registry::RegistryKind;

/// The value of `jobs.place` for a registry (`queued` is a job on its queue; a started job's
/// runs are rows of `executions`).
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
        .query_row(params![id, now], |_| Ok(()))
        .optional()?
        .is_some())
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
/// `enqueued_at`, and marks the transaction as having made work ready.
pub(super) fn enqueue(tx: &Tx<'_>, id: &str, origin: &str, at_front: bool, now: i64) -> Result<()> {
    know_queue(tx, origin)?;
    let score = queue_score(tx, origin, at_front)?;
    tx.prepare_cached(
        "UPDATE jobs SET place = 'queued', score = ?2, status = 'queued', enqueued_at = ?3 \
         WHERE id = ?1",
    )?
    .execute(params![id, score, now])?;
    tx.made_work_ready();
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

/// Adds a result to the job's history (about [`RESULTS_KEPT`] are kept, the oldest dropped):
/// its type, the worker, the return value or error, and the run's execution id when known. The
/// entry expires with the job's other results.
#[expect(
    clippy::too_many_arguments,
    reason = "one result entry's fields, as lib.lua's add_result takes them"
)]
pub(super) fn add_result(
    conn: &Connection,
    id: &str,
    result_type: u8,
    worker: &str,
    return_value: Option<&Value>,
    exc_string: Option<&str>,
    execution_id: Option<&str>,
    now: i64,
) -> Result<()> {
    let (seq, expires_at): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT coalesce(max(seq), 0) + 1, max(expires_at) FROM results WHERE job_id = ?1",
        )?
        .query_row(params![id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let return_value = return_value.map(ToString::to_string);
    conn.prepare_cached(
        "INSERT INTO results (job_id, seq, type, created_at, return_value, exc_string, \
         worker_name, execution_id, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id,
        seq,
        result_type,
        now,
        return_value,
        exc_string,
        worker,
        execution_id,
        expires_at
    ])?;
    let kept = i64::try_from(RESULTS_KEPT).unwrap_or(i64::MAX);
    conn.prepare_cached("DELETE FROM results WHERE job_id = ?1 AND seq <= ?2")?
        .execute(params![id, seq - kept])?;
    Ok(())
}

/// Sets when the job's results expire (`None`: never).
pub(super) fn expire_results(conn: &Connection, id: &str, expires_at: Option<i64>) -> Result<()> {
    conn.prepare_cached("UPDATE results SET expires_at = ?2 WHERE job_id = ?1")?
        .execute(params![id, expires_at])?;
    Ok(())
}

/// Whether the job's last results hold one of execution `execution_id`: an earlier call whose
/// reply was lost recorded this run's outcome.
pub(super) fn recorded_before(conn: &Connection, id: &str, execution_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM results WHERE job_id = ?1 AND execution_id = ?2")?
        .query_row(params![id, execution_id], |_| Ok(()))
        .optional()?
        .is_some())
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

/// Ends a run: its row of `executions` goes. `false` when it was not there (the run was
/// recovered and handed out again, or its job canceled or deleted).
pub(super) fn end_execution(conn: &Connection, id: &str, execution_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM executions WHERE job_id = ?1 AND execution_id = ?2")?
        .execute(params![id, execution_id])?
        == 1)
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
         total_working_time = total_working_time + ?2 WHERE name = ?1 AND expires_at > ?3"
    } else {
        "UPDATE workers SET failed_job_count = failed_job_count + 1, \
         total_working_time = total_working_time + ?2 WHERE name = ?1 AND expires_at > ?3"
    };
    conn.prepare_cached(sql)?
        .execute(params![worker, working_seconds, now])?;
    forget_current(conn, worker, id)
}

/// Deletes a job and its traces: its row (wherever it is), its runs, its results, its
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
        "DELETE FROM executions WHERE job_id = ?1",
        "DELETE FROM results WHERE job_id = ?1",
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

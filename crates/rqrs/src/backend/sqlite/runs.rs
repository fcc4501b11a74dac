//! Runs ([`RunStore`]): the dequeue that starts them, the watch for work, heartbeats, and the
//! outcome (finish, fail, retry, release), each one transaction, fenced as on Redis: an outcome
//! whose run is no longer in `executions` (recovered, canceled, deleted) writes nothing.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};
use tokio::task::JoinSet;

use super::SqliteBackend;
use super::codec::{self, micros, seconds};
use super::db::{Db, Tx};
use super::rows;
use crate::backend::RunStore;
use crate::backend::types::{
    Dequeued, Ending, Execution, Failed, Finished, HeartbeatReply, Liveness, Recorded, Retried,
    RunId, Started, Watch,
};
use crate::defaults::{DEFAULT_FAILURE_TTL, MAX_TTL};
use crate::error::Result;
use crate::ttl::Ttl;

/// How often a waiting worker looks whether another process put a job on its queues: a read
/// of `PRAGMA data_version`, which changes when another connection commits, and only then a
/// look at the queues. Commits of this process wake it at once.
const POLL: Duration = Duration::from_millis(5);

/// The score of a finished job kept forever (RQ's `+inf`).
const FOREVER: f64 = 1e300;

/// Who ends a run.
#[derive(Debug, Clone, Copy)]
pub(super) enum By<'a> {
    Worker {
        name: &'a str,
        started_at: i64,
    },
    Abandoned,
    /// A job that did not run, failed by hand.
    Hand,
}

/// Starts run `execution_id` of job `id` on `queue` for `worker`, with a deadline `ttl` from
/// now: a row of `executions`, and the job `started` (no longer expiring by its ttl).
pub(super) fn start(
    tx: &Tx<'_>,
    id: &str,
    queue: &str,
    execution_id: &str,
    worker: &str,
    ttl: i64,
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO executions (job_id, execution_id, queue, worker, deadline, \
         started_at, last_heartbeat) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![id, execution_id, queue, worker, now + ttl, now])?;
    tx.prepare_cached(
        "UPDATE jobs SET status = 'started', started_at = ?2, ended_at = NULL, worker_name = ?3, \
         last_heartbeat = ?2, place = 'started', score = NULL, expires_at = NULL WHERE id = ?1",
    )?
    .execute(params![id, now, worker])?;
    Ok(())
}

/// A TTL in microseconds, `-1` for forever, at most [`MAX_TTL`].
fn ttl_micros(ttl: Ttl) -> i64 {
    match ttl.duration() {
        None => -1,
        Some(duration) => seconds(duration.min(MAX_TTL).as_secs()),
    }
}

/// Seconds between two times in microseconds.
fn working_seconds(started_at: i64, now: i64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "seconds with microseconds")]
    let seconds = (now - started_at).max(0) as f64 / 1e6;
    seconds
}

/// Ends a fenced run for an outcome: `Err(answer)` when the outcome must not be recorded (the
/// run is gone, or an abandoned run's heartbeat landed late); `Ok(())` when the run ended here.
fn end_run(tx: &Tx<'_>, run: &RunId, by: By<'_>, now: i64) -> Result<Result<(), Recorded>> {
    let id = run.job_id.as_str();
    let deadline: Option<i64> = tx
        .prepare_cached("SELECT deadline FROM executions WHERE job_id = ?1 AND execution_id = ?2")?
        .query_row(params![id, run.execution_id], |row| row.get(0))
        .optional()?;
    let Some(deadline) = deadline else {
        if let By::Worker { name, .. } = by {
            rows::forget_current(tx, name, id)?;
            if rows::recorded_before(tx, id, &run.execution_id)? {
                return Ok(Err(Recorded::Before));
            }
        }
        return Ok(Err(Recorded::Refused));
    };
    // An abandoned run's deadline must still be past: a late heartbeat saves it.
    if matches!(by, By::Abandoned) && deadline > now {
        return Ok(Err(Recorded::Refused));
    }
    rows::end_execution(tx, id, &run.execution_id)?;
    Ok(Ok(()))
}

/// Records a failure that does not run again: of a run (`by` its worker, or abandoned), or of a
/// job that did not run (`by` hand, with no run).
pub(super) fn record_failure(
    tx: &Tx<'_>,
    id: &str,
    run: Option<&RunId>,
    by: By<'_>,
    failed: &Failed,
) -> Result<Recorded> {
    let now = codec::now();
    if let Some(run) = run
        && let Err(answer) = end_run(tx, run, by, now)?
    {
        return Ok(answer);
    }
    let worker = match by {
        By::Worker { name, started_at } => {
            rows::count_run(tx, name, false, working_seconds(started_at, now), id, now)?;
            name
        }
        By::Abandoned | By::Hand => "",
    };
    if !rows::exists(tx, id, now)? {
        return Ok(Recorded::Refused);
    }
    // RQ: kept a year unless the job says; its results expire only when it says.
    let explicit = failed.failure_ttl.is_some();
    let ttl = ttl_micros(failed.failure_ttl.unwrap_or(DEFAULT_FAILURE_TTL));
    let status = if failed.stopped { "stopped" } else { "failed" };
    tx.prepare_cached("UPDATE jobs SET status = ?2, ended_at = ?3 WHERE id = ?1")?
        .execute(params![id, status, now])?;
    // A stopped job's dependents stay deferred (RQ 2.8+); a failed one's go on if they allow it.
    if !failed.stopped {
        rows::release_dependents(tx, id, "failed", now)?;
    }
    let execution_id = match by {
        By::Worker { .. } => run.map(|run| run.execution_id.as_str()),
        By::Abandoned | By::Hand => None,
    };
    rows::add_result(
        tx,
        id,
        2,
        worker,
        None,
        Some(&failed.exc_info),
        execution_id,
        now,
    )?;
    #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
    let score = if ttl < 0 {
        ttl as f64
    } else {
        (now + ttl) as f64
    };
    rows::file(tx, id, "failed", score)?;
    if ttl == 0 {
        delete_job_row(tx, id)?;
    } else if ttl > 0 {
        tx.prepare_cached("UPDATE jobs SET expires_at = ?2 WHERE id = ?1")?
            .execute(params![id, now + ttl])?;
    }
    if explicit {
        match ttl {
            0 => {
                tx.prepare_cached("DELETE FROM results WHERE job_id = ?1")?
                    .execute(params![id])?;
            }
            ttl if ttl > 0 => rows::expire_results(tx, id, Some(now + ttl))?,
            _ => rows::expire_results(tx, id, None)?,
        }
    }
    Ok(Recorded::Now)
}

/// Deletes a job's row and its dependency links, as RQ deletes a job whose TTL is 0 (its
/// results and its group membership stay).
fn delete_job_row(tx: &Tx<'_>, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM jobs WHERE id = ?1",
        "DELETE FROM dependencies WHERE job_id = ?1 OR parent = ?1",
    ] {
        tx.prepare_cached(sql)?.execute(params![id])?;
    }
    Ok(())
}

/// Ends a run that did not end and puts its job back at the head of its queue.
fn release_run(tx: &Tx<'_>, run: &RunId, worker: &str, now: i64) -> Result<bool> {
    let id = run.job_id.as_str();
    let ended = rows::end_execution(tx, id, &run.execution_id)?;
    rows::forget_current(tx, worker, id)?;
    if !ended {
        return Ok(false);
    }
    if let Some(job) = rows::job(tx, id, now)? {
        tx.prepare_cached("UPDATE jobs SET started_at = NULL WHERE id = ?1")?
            .execute(params![id])?;
        rows::enqueue(tx, id, &job.origin, true, now)?;
    }
    Ok(true)
}

impl RunStore for SqliteBackend {
    async fn dequeue(
        &self,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
        liveness: Liveness,
    ) -> Result<Dequeued> {
        let worker = worker.to_owned();
        let queues = queues.to_vec();
        let execution_ids = execution_ids.to_vec();
        let ttl = seconds(liveness.execution_ttl.as_secs());
        self.db()
            .write(move |tx| {
                let now = codec::now();
                if super::workers::suspended(tx, now)? {
                    return Ok(Dequeued::Suspended);
                }
                let mut started = Vec::new();
                let mut ids = execution_ids.iter();
                'queues: for queue in &queues {
                    loop {
                        let room = execution_ids.len() - started.len();
                        if room == 0 {
                            break 'queues;
                        }
                        // Read loosely: a row whose id or expiry has the wrong type must not
                        // stop every dequeue.
                        let waiting: Vec<(Value, Value)> = tx
                            .prepare_cached(
                                "SELECT id, expires_at FROM jobs WHERE place = 'queued' \
                                 AND origin = ?1 ORDER BY score LIMIT ?2",
                            )?
                            .query_map(params![queue, i64::try_from(room).unwrap_or(1)], |row| {
                                Ok((row.get(0)?, row.get(1)?))
                            })?
                            .collect::<rusqlite::Result<_>>()?;
                        if waiting.is_empty() {
                            break;
                        }
                        for (id, expires_at) in waiting {
                            let Value::Text(id) = id else {
                                tracing::warn!(?id, %queue, "a queued row whose id is not text \
                                    cannot be a job: deleted");
                                tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                                    .execute(params![id])?;
                                continue;
                            };
                            // Gone by its ttl while it waited: dropped, as RQ's workers drop it.
                            if matches!(expires_at, Value::Integer(at) if at <= now) {
                                rows::delete(tx, &id)?;
                                continue;
                            }
                            let Some(execution_id) = ids.next() else {
                                break 'queues;
                            };
                            start(tx, &id, queue, execution_id, &worker, ttl, now)?;
                            let job = match rows::job(tx, &id, now) {
                                Ok(Some(job)) => job,
                                Ok(None) => continue,
                                Err(error) => crate::backend::types::JobRecord::unreadable(
                                    rows::id(id.clone()),
                                    queue,
                                    error.to_string(),
                                ),
                            };
                            started.push(Started {
                                job,
                                execution: Execution {
                                    run: RunId {
                                        job_id: rows::id(id),
                                        execution_id: execution_id.clone(),
                                        queue: queue.clone(),
                                    },
                                    started_at: codec::time(Some(now)).unwrap_or_default(),
                                },
                            });
                        }
                    }
                }
                if let Some(last) = started.last() {
                    tx.prepare_cached(
                        "UPDATE workers SET state = 'busy', current_job = ?2, last_heartbeat = ?3 \
                         WHERE name = ?1 AND expires_at > ?3",
                    )?
                    .execute(params![worker, last.job.id.as_str(), now])?;
                }
                Ok(Dequeued::Jobs(started))
            })
            .await
    }

    async fn reclaim(
        &self,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
    ) -> Result<usize> {
        let worker = worker.to_owned();
        let queues = queues.to_vec();
        let execution_ids = execution_ids.to_vec();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let mut reclaimed = 0;
                for execution_id in &execution_ids {
                    let run: Option<(String, String)> = tx
                        .prepare_cached(
                            "SELECT job_id, queue FROM executions WHERE execution_id = ?1",
                        )?
                        .query_row(params![execution_id], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()?;
                    let Some((job_id, queue)) = run.filter(|(_, queue)| queues.contains(queue))
                    else {
                        continue;
                    };
                    let run = RunId {
                        job_id: rows::id(job_id),
                        execution_id: execution_id.clone(),
                        queue,
                    };
                    if release_run(tx, &run, &worker, now)? {
                        reclaimed += 1;
                    }
                }
                Ok(reclaimed)
            })
            .await
    }

    async fn heartbeat(
        &self,
        worker: &str,
        running: &[Execution],
        liveness: Liveness,
    ) -> Result<HeartbeatReply> {
        let worker = worker.to_owned();
        let running: Vec<RunId> = running
            .iter()
            .map(|execution| execution.run.clone())
            .collect();
        let ttl = seconds(liveness.execution_ttl.as_secs());
        let worker_ttl = seconds(liveness.worker_ttl.as_secs());
        self.db()
            .write(move |tx| {
                let now = codec::now();
                // An expired registration is not brought back piecemeal: the worker is told, and
                // registers again in full.
                let beat = tx
                    .prepare_cached(
                        "UPDATE workers SET last_heartbeat = ?2, expires_at = ?3 \
                         WHERE name = ?1 AND expires_at > ?2",
                    )?
                    .execute(params![worker, now, now + worker_ttl])?;
                let mut lost = Vec::new();
                for run in &running {
                    let renewed = tx
                        .prepare_cached(
                            "UPDATE executions SET deadline = ?3, last_heartbeat = ?4 \
                             WHERE job_id = ?1 AND execution_id = ?2",
                        )?
                        .execute(params![
                            run.job_id.as_str(),
                            run.execution_id,
                            now + ttl,
                            now
                        ])?;
                    if renewed == 0 {
                        lost.push(run.execution_id.clone());
                    } else {
                        tx.prepare_cached("UPDATE jobs SET last_heartbeat = ?2 WHERE id = ?1")?
                            .execute(params![run.job_id.as_str(), now])?;
                    }
                }
                Ok(HeartbeatReply {
                    worker_missing: beat == 0,
                    lost,
                })
            })
            .await
    }

    async fn finish(
        &self,
        execution: &Execution,
        worker: &str,
        finished: &Finished,
    ) -> Result<Recorded> {
        let run = execution.run.clone();
        let started_at = micros(execution.started_at);
        let worker = worker.to_owned();
        let value = (!finished.return_value.is_null()).then(|| finished.return_value.clone());
        let ttl = ttl_micros(finished.result_ttl);
        let repeat_in = finished.repeat_in.map(seconds);
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let by = By::Worker {
                    name: &worker,
                    started_at,
                };
                if let Err(answer) = end_run(tx, &run, by, now)? {
                    return Ok(answer);
                }
                let id = run.job_id.as_str();
                rows::count_run(tx, &worker, true, working_seconds(started_at, now), id, now)?;
                let Some(job) = rows::job(tx, id, now)? else {
                    return Ok(Recorded::Now);
                };
                rows::release_dependents(tx, id, "finished", now)?;
                if ttl == 0 && repeat_in.is_none() {
                    // RQ deletes the job at once and records no result.
                    delete_job_row(tx, id)?;
                    return Ok(Recorded::Now);
                }
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'finished', ended_at = ?2, last_heartbeat = ?2 \
                     WHERE id = ?1",
                )?
                .execute(params![id, now])?;
                if ttl != 0 {
                    rows::add_result(
                        tx,
                        id,
                        1,
                        &worker,
                        value.as_ref(),
                        None,
                        Some(&run.execution_id),
                        now,
                    )?;
                }
                if ttl > 0 {
                    rows::expire_results(tx, id, Some(now + ttl))?;
                    #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
                    rows::file(tx, id, "finished", (now + ttl) as f64)?;
                    // A repeating job keeps no TTL, as in RQ.
                    if repeat_in.is_none() {
                        tx.prepare_cached("UPDATE jobs SET expires_at = ?2 WHERE id = ?1")?
                            .execute(params![id, now + ttl])?;
                    }
                } else if ttl < 0 {
                    rows::expire_results(tx, id, None)?;
                    rows::file(tx, id, "finished", FOREVER)?;
                }
                if let Some(wait) = repeat_in {
                    tx.prepare_cached(
                        "UPDATE jobs SET repeats_left = max(repeats_left - 1, 0) WHERE id = ?1",
                    )?
                    .execute(params![id])?;
                    if wait > 0 {
                        tx.prepare_cached("UPDATE jobs SET status = 'scheduled' WHERE id = ?1")?
                            .execute(params![id])?;
                        #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
                        rows::file(tx, id, "scheduled", (now + wait) as f64)?;
                    } else {
                        rows::enqueue(tx, id, &job.origin, false, now)?;
                    }
                }
                Ok(Recorded::Now)
            })
            .await
    }

    async fn fail(&self, run: &RunId, ending: Ending<'_>, failed: &Failed) -> Result<Recorded> {
        let run = run.clone();
        let failed = Failed {
            exc_info: failed.exc_info.clone(),
            failure_ttl: failed.failure_ttl,
            stopped: failed.stopped,
        };
        let (worker, by) = owned_ending(ending);
        self.db()
            .write(move |tx| {
                record_failure(tx, run.job_id.as_str(), Some(&run), by.of(&worker), &failed)
            })
            .await
    }

    async fn retry(&self, run: &RunId, ending: Ending<'_>, retried: &Retried) -> Result<Recorded> {
        let run = run.clone();
        let exc_info = retried.exc_info.clone();
        let delay = seconds(retried.delay);
        let at_front = retried.at_front;
        let (worker, by) = owned_ending(ending);
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let by = by.of(&worker);
                if let Err(answer) = end_run(tx, &run, by, now)? {
                    return Ok(answer);
                }
                let id = run.job_id.as_str();
                let (worker, execution_id) = match by {
                    By::Worker { name, started_at } => {
                        rows::count_run(
                            tx,
                            name,
                            false,
                            working_seconds(started_at, now),
                            id,
                            now,
                        )?;
                        (name, Some(run.execution_id.as_str()))
                    }
                    By::Abandoned | By::Hand => ("", None),
                };
                let Some(job) = rows::job(tx, id, now)? else {
                    return Ok(Recorded::Refused);
                };
                tx.prepare_cached(
                    "UPDATE jobs SET retries_left = max(retries_left - 1, 0), ended_at = ?2 \
                     WHERE id = ?1",
                )?
                .execute(params![id, now])?;
                rows::add_result(tx, id, 4, worker, None, Some(&exc_info), execution_id, now)?;
                if delay > 0 {
                    tx.prepare_cached("UPDATE jobs SET status = 'scheduled' WHERE id = ?1")?
                        .execute(params![id])?;
                    #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
                    rows::file(tx, id, "scheduled", (now + delay) as f64)?;
                } else {
                    rows::enqueue(tx, id, &job.origin, at_front, now)?;
                }
                Ok(Recorded::Now)
            })
            .await
    }

    async fn release(&self, run: &RunId, worker: &str) -> Result<bool> {
        let run = run.clone();
        let worker = worker.to_owned();
        self.db()
            .write(move |tx| release_run(tx, &run, &worker, codec::now()))
            .await
    }

    fn watch_queues(&self, queues: &[String], watch: Watch) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        tasks.spawn(watch_queues(Arc::clone(&self.db), queues.to_vec(), watch));
        tasks
    }
}

/// Who ends a run, owned, to move into a write.
#[derive(Debug, Clone, Copy)]
enum OwnedBy {
    Worker { started_at: i64 },
    Abandoned,
}

impl OwnedBy {
    fn of(self, worker: &str) -> By<'_> {
        match self {
            OwnedBy::Worker { started_at } => By::Worker {
                name: worker,
                started_at,
            },
            OwnedBy::Abandoned => By::Abandoned,
        }
    }
}

fn owned_ending(ending: Ending<'_>) -> (String, OwnedBy) {
    match ending {
        Ending::Worker { name, started_at } => (
            name.to_owned(),
            OwnedBy::Worker {
                started_at: micros(started_at),
            },
        ),
        Ending::Abandoned => (String::new(), OwnedBy::Abandoned),
    }
}

/// Wakes a waiting worker when one of `queues` may hold a job: at once after a commit of this
/// process that queued a job, and within [`POLL`] after another process's.
async fn watch_queues(db: Arc<Db>, queues: Vec<String>, mut watch: Watch) {
    let mut local = db.work_ready();
    let mut seen_version: Option<i64> = None;
    loop {
        if watch.waiting.wait_for(|waiting| *waiting).await.is_err() {
            return;
        }
        let ready = tokio::select! {
            changed = local.changed() => {
                if changed.is_err() {
                    return;
                }
                true
            }
            () = tokio::time::sleep(POLL) => {
                let queues = queues.clone();
                let last = seen_version;
                match db.read(move |conn| {
                    let version: i64 = conn.pragma_query_value(None, "data_version", |row| row.get(0))?;
                    if last == Some(version) {
                        return Ok((version, false));
                    }
                    Ok((version, any_queued(conn, &queues)?))
                }).await {
                    Ok((version, ready)) => {
                        seen_version = Some(version);
                        ready
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot look at the queues");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        false
                    }
                }
            }
        };
        if ready {
            watch.ready.notify_one();
            // Let the worker take the job before looking again.
            let _ = watch.waiting.wait_for(|waiting| !*waiting).await;
        }
    }
}

/// Whether one of `queues` holds a job.
fn any_queued(conn: &rusqlite::Connection, queues: &[String]) -> Result<bool> {
    let mut statement =
        conn.prepare_cached("SELECT 1 FROM jobs WHERE place = 'queued' AND origin = ?1 LIMIT 1")?;
    for queue in queues {
        if statement.exists(params![queue])? {
            return Ok(true);
        }
    }
    Ok(false)
}

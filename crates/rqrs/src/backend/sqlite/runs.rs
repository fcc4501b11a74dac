//! Runs ([`RunStore`]): the dequeue that starts them, the watch for work, heartbeats, and the
//! outcome (finish, fail, retry, release), each one transaction on the job's row, fenced as on
//! Redis: an outcome whose execution is no longer the row's (recovered, canceled, deleted)
//! writes nothing.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;
use rusqlite::types::Value;
use tokio::task::JoinSet;

use super::SqliteBackend;
use super::changes::{Waiter, data_version};
use super::codec::{self, Entry, JOB_COLUMNS, micros, seconds};
use super::db::{Db, Tx};
use super::rows::{self, Held};
use crate::backend::RunStore;
use crate::backend::types::{
    Dequeued, Ending, Execution, Failed, Finishing, HeartbeatReply, JobRecord, Liveness, Recorded,
    Retried, RunId, Started, Watch, Worked,
};
use crate::defaults::{DEFAULT_FAILURE_TTL, MAX_TTL};
use crate::error::Result;
use crate::results::ResultType;
use crate::ttl::Ttl;

/// How often a waiting worker looks whether another process put a job on its queues when the
/// database's changes cannot be watched.
const POLL: Duration = Duration::from_millis(5);

/// The score of a finished job kept forever (RQ's `+inf`).
const FOREVER: f64 = 1e300;

/// What a start writes: the run's execution id, its worker, its deadline as the score in the
/// place `started`; the job no longer expires by its ttl.
const START: &str = "UPDATE jobs SET status = 'started', started_at = ?2, ended_at = NULL, \
    worker_name = ?3, last_heartbeat = ?2, place = 'started', score = ?4, expires_at = NULL, \
    execution_id = ?5";

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

impl By<'_> {
    /// The worker and execution a result of this ending names (RQ records neither for an
    /// abandoned run).
    fn result_of(self, run: Option<&RunId>) -> (Option<String>, Option<String>) {
        match self {
            By::Worker { name, .. } => (
                Some(name.to_owned()),
                run.map(|run| run.execution_id.clone()),
            ),
            By::Abandoned | By::Hand => (None, None),
        }
    }
}

/// Starts run `execution_id` of job `id` for `worker`, with a deadline `ttl` from now.
pub(super) fn start(
    tx: &Tx<'_>,
    id: &str,
    execution_id: &str,
    worker: &str,
    ttl: i64,
    now: i64,
) -> Result<()> {
    #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
    let deadline = (now + ttl) as f64;
    tx.prepare_cached(&format!("{START} WHERE id = ?1"))?
        .execute(params![id, now, worker, deadline, execution_id])?;
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

/// A score in microseconds.
#[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
fn score(micros: i64) -> f64 {
    micros as f64
}

/// Reads the row of a run that ends: `Err(answer)` when the outcome must not be recorded (the
/// job is gone, its execution is another's, or an abandoned run's heartbeat landed late).
fn end_run(tx: &Tx<'_>, run: &RunId, by: By<'_>, now: i64) -> Result<Result<Held, Recorded>> {
    let id = run.job_id.as_str();
    match rows::held(tx, id, now)? {
        Some(held) if held.execution_id.as_deref() == Some(run.execution_id.as_str()) => {
            // An abandoned run's deadline must still be past: a late heartbeat saves it.
            if matches!(by, By::Abandoned) && held.deadline.is_some_and(|at| at > score(now)) {
                return Ok(Err(Recorded::Refused));
            }
            Ok(Ok(held))
        }
        other => {
            if let By::Worker { name, .. } = by {
                rows::forget_current(tx, name, id)?;
                if other.is_some_and(|held| held.recorded(&run.execution_id)) {
                    return Ok(Err(Recorded::Before));
                }
            }
            Ok(Err(Recorded::Refused))
        }
    }
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
    let held = match run {
        Some(run) => end_run(tx, run, by, now)?,
        None => rows::held(tx, id, now)?.ok_or(Recorded::Refused),
    };
    let mut held = match held {
        Ok(held) => held,
        Err(answer) => return Ok(answer),
    };
    if let By::Worker { name, started_at } = by {
        rows::count_run(tx, name, false, working_seconds(started_at, now), id, now)?;
    }
    // RQ: kept a year unless the job says; its results expire only when it says.
    let explicit = failed.failure_ttl.is_some();
    let ttl = ttl_micros(failed.failure_ttl.unwrap_or(DEFAULT_FAILURE_TTL));
    let (worker_name, execution_id) = by.result_of(run);
    held.add_result(
        Entry {
            result_type: ResultType::Failed.code(),
            created_at: now,
            return_value: None,
            exc_string: Some(failed.exc_info.clone()),
            worker_name,
            execution_id,
        },
        now,
    );
    if explicit {
        match ttl {
            0 => held.results.clear(),
            ttl if ttl > 0 => held.results_expire_at = Some(now + ttl),
            _ => held.results_expire_at = None,
        }
    }
    // A negative failure_ttl is kept as the raw score, which cleanup never reaches (as RQ).
    let entry_score = if ttl < 0 {
        score(ttl)
    } else {
        score(now + ttl)
    };
    tx.prepare_cached(
        "UPDATE jobs SET status = ?2, ended_at = ?3, place = 'failed', score = ?4, \
         expires_at = ?5, execution_id = NULL, results = ?6, results_expire_at = ?7 \
         WHERE seq = ?1",
    )?
    .execute(params![
        held.seq,
        if failed.stopped { "stopped" } else { "failed" },
        now,
        entry_score,
        (ttl > 0).then_some(now + ttl),
        held.results_column()?,
        held.results_expire_at
    ])?;
    // A stopped job's dependents stay deferred (RQ 2.8+); a failed one's go on if they allow it.
    if !failed.stopped {
        rows::release_dependents(tx, id, "failed", now)?;
    }
    if ttl == 0 {
        delete_job_row(tx, id)?;
    }
    Ok(Recorded::Now)
}

/// Deletes a job's row and its dependency links, as RQ deletes a job whose TTL is 0 (its group
/// membership stays).
fn delete_job_row(tx: &Tx<'_>, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM jobs WHERE id = ?1",
        "DELETE FROM dependencies WHERE job_id = ?1 OR parent = ?1",
    ] {
        tx.prepare_cached(sql)?.execute(params![id])?;
    }
    Ok(())
}

/// Ends a run that did not end and puts its job back at the head of its queue; `false` when the
/// run was no longer the job's.
fn release_run(tx: &Tx<'_>, run: &RunId, worker: &str, now: i64) -> Result<bool> {
    let id = run.job_id.as_str();
    rows::forget_current(tx, worker, id)?;
    let origin: Option<String> = rusqlite::OptionalExtension::optional(
        tx.prepare_cached(
            "UPDATE jobs SET started_at = NULL, execution_id = NULL \
             WHERE id = ?1 AND execution_id = ?2 RETURNING origin",
        )?
        .query_row(params![id, run.execution_id], |row| row.get(0)),
    )?;
    let Some(origin) = origin else {
        return Ok(false);
    };
    rows::enqueue(tx, id, &origin, true, now)?;
    Ok(true)
}

/// Takes up to `room` jobs of `queue` for `worker`, starting each with one of `ids`.
fn take(
    tx: &Tx<'_>,
    queue: &str,
    ids: &mut std::slice::Iter<'_, String>,
    worker: &str,
    ttl: i64,
    now: i64,
    started: &mut Vec<Started>,
) -> Result<()> {
    loop {
        let room = ids.len();
        if room == 0 {
            return Ok(());
        }
        // Read loosely: a row whose id or expiry has the wrong type must not stop every
        // dequeue.
        let waiting: Vec<(i64, Value, Value)> = tx
            .prepare_cached(
                "SELECT seq, id, expires_at FROM jobs WHERE place = 'queued' AND origin = ?1 \
                 ORDER BY score LIMIT ?2",
            )?
            .query_map(params![queue, i64::try_from(room).unwrap_or(1)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if waiting.is_empty() {
            return Ok(());
        }
        for (seq, id, expires_at) in waiting {
            let Value::Text(id) = id else {
                tracing::warn!(?id, %queue, "a queued row whose id is not text cannot be a job: deleted");
                tx.prepare_cached("DELETE FROM jobs WHERE seq = ?1")?
                    .execute(params![seq])?;
                continue;
            };
            // Gone by its ttl while it waited: dropped, as RQ's workers drop it.
            if matches!(expires_at, Value::Integer(at) if at <= now) {
                rows::delete(tx, &id)?;
                continue;
            }
            let Some(execution_id) = ids.next() else {
                return Ok(());
            };
            let mut statement =
                tx.prepare_cached(&format!("{START} WHERE seq = ?1 RETURNING {JOB_COLUMNS}"))?;
            let mut rows =
                statement.query(params![seq, now, worker, score(now + ttl), execution_id])?;
            let job = match rows.next()?.map(codec::job) {
                Some(Ok(job)) => job,
                Some(Err(error)) => {
                    JobRecord::unreadable(rows::id(id.clone()), queue, error.to_string())
                }
                None => continue,
            };
            started.push(Started {
                job,
                execution: Execution {
                    run: RunId {
                        job_id: rows::id(id),
                        execution_id: execution_id.clone(),
                        queue: queue.to_owned(),
                    },
                    started_at: codec::time(Some(now)).unwrap_or_default(),
                },
            });
        }
    }
}

/// A success as the transaction records it (see [`Finishing`]).
struct Success {
    run: RunId,
    started_at: i64,
    value: Option<serde_json::Value>,
    ttl: i64,
    repeat_in: Option<i64>,
}

impl Success {
    fn of(finishing: &Finishing) -> Self {
        let finished = &finishing.finished;
        Success {
            run: finishing.execution.run.clone(),
            started_at: micros(finishing.execution.started_at),
            value: (!finished.return_value.is_null()).then(|| finished.return_value.clone()),
            ttl: ttl_micros(finished.result_ttl),
            repeat_in: finished.repeat_in.map(seconds),
        }
    }
}

/// Records a success of `worker`'s at `now` (see [`RunStore::work`]).
fn record_success(tx: &Tx<'_>, success: &Success, worker: &str, now: i64) -> Result<Recorded> {
    let Success {
        ref run,
        started_at,
        ref value,
        ttl,
        repeat_in,
    } = *success;
    let by = By::Worker {
        name: worker,
        started_at,
    };
    let mut held = match end_run(tx, run, by, now)? {
        Ok(held) => held,
        Err(answer) => return Ok(answer),
    };
    let id = run.job_id.as_str();
    rows::count_run(tx, worker, true, working_seconds(started_at, now), id, now)?;
    rows::release_dependents(tx, id, "finished", now)?;
    if ttl == 0 && repeat_in.is_none() {
        // RQ deletes the job at once and records no result.
        delete_job_row(tx, id)?;
        return Ok(Recorded::Now);
    }
    if ttl != 0 {
        held.add_result(
            Entry {
                result_type: ResultType::Successful.code(),
                created_at: now,
                return_value: value.clone(),
                exc_string: None,
                worker_name: Some(worker.to_owned()),
                execution_id: Some(run.execution_id.clone()),
            },
            now,
        );
        held.results_expire_at = (ttl > 0).then_some(now + ttl);
    }
    // Where it goes: the finished registry until its result expires, or, when it
    // repeats, the scheduled registry or its queue (a repeating job keeps no TTL).
    let (status, place, entry_score, expires_at) = match repeat_in {
        Some(wait) if wait > 0 => (
            "scheduled",
            Some("scheduled"),
            Some(score(now + wait)),
            None,
        ),
        Some(_) => ("queued", None, None, None),
        None if ttl > 0 => (
            "finished",
            Some("finished"),
            Some(score(now + ttl)),
            Some(now + ttl),
        ),
        None => ("finished", Some("finished"), Some(FOREVER), None),
    };
    tx.prepare_cached(
        "UPDATE jobs SET status = ?2, ended_at = ?3, last_heartbeat = ?3, place = ?4, \
         score = ?5, expires_at = ?6, execution_id = NULL, results = ?7, \
         results_expire_at = ?8, \
         repeats_left = CASE WHEN ?9 THEN max(repeats_left - 1, 0) ELSE repeats_left END \
         WHERE seq = ?1",
    )?
    .execute(params![
        held.seq,
        status,
        now,
        place,
        entry_score,
        expires_at,
        held.results_column()?,
        held.results_expire_at,
        repeat_in.is_some()
    ])?;
    if repeat_in == Some(0) {
        rows::enqueue(tx, id, &held.origin, false, now)?;
    }
    Ok(Recorded::Now)
}

/// Takes up to one job per execution id from `queues`, in order, for `worker` at `now` (see
/// [`RunStore::work`]); nothing while workers are suspended.
fn take_all(
    tx: &Tx<'_>,
    worker: &str,
    queues: &[String],
    execution_ids: &[String],
    ttl: i64,
    now: i64,
) -> Result<Dequeued> {
    if super::workers::suspended(tx, now)? {
        return Ok(Dequeued::Suspended);
    }
    let mut started = Vec::new();
    let mut ids = execution_ids.iter();
    for queue in queues {
        take(tx, queue, &mut ids, worker, ttl, now, &mut started)?;
    }
    if let Some(last) = started.last() {
        tx.prepare_cached(
            "UPDATE workers SET state = 'busy', current_job = ?2, last_heartbeat = ?3 \
             WHERE name = ?1 AND expires_at > ?3",
        )?
        .execute(params![worker, last.job.id.as_str(), now])?;
    }
    Ok(Dequeued::Jobs(started))
}

impl RunStore for SqliteBackend {
    async fn work(
        &self,
        worker: &str,
        finishing: &[&Finishing],
        queues: &[String],
        execution_ids: &[String],
        liveness: Liveness,
    ) -> Result<Worked> {
        let worker = worker.to_owned();
        let successes: Vec<Success> = finishing
            .iter()
            .map(|success| Success::of(success))
            .collect();
        let queues = queues.to_vec();
        let execution_ids = execution_ids.to_vec();
        let ttl = seconds(liveness.execution_ttl.as_secs());
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let recorded = successes
                    .iter()
                    .map(|success| record_success(tx, success, &worker, now))
                    .collect::<Result<Vec<_>>>()?;
                let dequeued = if execution_ids.is_empty() {
                    Dequeued::Jobs(Vec::new())
                } else {
                    take_all(tx, &worker, &queues, &execution_ids, ttl, now)?
                };
                Ok(Worked { recorded, dequeued })
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
                for queue in &queues {
                    let runs: Vec<(String, String)> = tx
                        .prepare_cached(
                            "SELECT id, execution_id FROM jobs WHERE place = 'started' \
                             AND origin = ?1",
                        )?
                        .query_map(params![queue], |row| Ok((row.get(0)?, row.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    for (job_id, execution_id) in runs {
                        if !execution_ids.contains(&execution_id) {
                            continue;
                        }
                        let run = RunId {
                            job_id: rows::id(job_id),
                            execution_id,
                            queue: queue.clone(),
                        };
                        if release_run(tx, &run, &worker, now)? {
                            reclaimed += 1;
                        }
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
                let mut renew = tx.prepare_cached(
                    "UPDATE jobs SET score = ?3, last_heartbeat = ?4 \
                     WHERE id = ?1 AND execution_id = ?2 AND place = 'started'",
                )?;
                for run in &running {
                    let renewed = renew.execute(params![
                        run.job_id.as_str(),
                        run.execution_id,
                        score(now + ttl),
                        now
                    ])?;
                    if renewed == 0 {
                        lost.push(run.execution_id.clone());
                    }
                }
                Ok(HeartbeatReply {
                    worker_missing: beat == 0,
                    lost,
                })
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
                let mut held = match end_run(tx, &run, by, now)? {
                    Ok(held) => held,
                    Err(answer) => return Ok(answer),
                };
                let id = run.job_id.as_str();
                if let By::Worker { name, started_at } = by {
                    rows::count_run(tx, name, false, working_seconds(started_at, now), id, now)?;
                }
                let (worker_name, execution_id) = by.result_of(Some(&run));
                held.add_result(
                    Entry {
                        result_type: ResultType::Retried.code(),
                        created_at: now,
                        return_value: None,
                        exc_string: Some(exc_info),
                        worker_name,
                        execution_id,
                    },
                    now,
                );
                let (status, place, entry_score) = if delay > 0 {
                    ("scheduled", Some("scheduled"), Some(score(now + delay)))
                } else {
                    ("queued", None, None)
                };
                tx.prepare_cached(
                    "UPDATE jobs SET retries_left = max(retries_left - 1, 0), ended_at = ?2, \
                     status = ?3, place = ?4, score = ?5, execution_id = NULL, results = ?6, \
                     results_expire_at = ?7 WHERE seq = ?1",
                )?
                .execute(params![
                    held.seq,
                    now,
                    status,
                    place,
                    entry_score,
                    held.results_column()?,
                    held.results_expire_at
                ])?;
                if delay == 0 {
                    rows::enqueue(tx, id, &held.origin, at_front, now)?;
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
        tasks.spawn(watch_queues(
            Arc::clone(&self.db),
            queues.to_vec(),
            watch,
            self.changes.local(),
            self.changes.waiter(POLL),
        ));
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

/// Wakes a waiting worker when one of `queues` may hold a job: at once after a commit that
/// queued a job, of this connection (`local`) or of another process (`changes`); the queues are
/// looked at only when `PRAGMA data_version` says that another connection committed.
async fn watch_queues(
    db: Arc<Db>,
    queues: Vec<String>,
    mut watch: Watch,
    mut local: tokio::sync::watch::Receiver<u64>,
    mut changes: Waiter,
) {
    let mut seen_version: Option<i64> = None;
    let queues = Arc::new(queues);
    loop {
        if watch.waiting.wait_for(|waiting| *waiting).await.is_err() {
            return;
        }
        // Seen before the look: a commit after it wakes the wait below.
        changes.seen();
        let last = seen_version;
        let look = Arc::clone(&queues);
        let ready = match db
            .read(move |conn| {
                let version = data_version(conn)?;
                if last == Some(version) {
                    return Ok((version, false));
                }
                Ok((version, any_queued(conn, &look)?))
            })
            .await
        {
            Ok((version, ready)) => {
                seen_version = Some(version);
                ready
            }
            Err(error) => {
                tracing::warn!(%error, "cannot look at the queues");
                tokio::time::sleep(Duration::from_secs(1)).await;
                false
            }
        };
        let ready = ready
            || tokio::select! {
                changed = local.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    true
                }
                () = changes.changed() => false,
            };
        if ready {
            watch.ready.notify_one();
            // Let the worker take the job before looking again: wait until it stops waiting
            // (a change, not the value: it may be waiting again already, and would then never
            // be woken).
            let _ = watch.waiting.changed().await;
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

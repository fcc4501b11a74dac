//! Jobs ([`JobStore`]): the enqueue of any number of jobs in one transaction, reads, meta, the
//! result history, cancel and delete.

use chrono::DateTime;
use rusqlite::params;
use serde_json::{Map, Value};

use super::SqliteBackend;
use super::codec::{self, micros, seconds};
use super::rows;
use crate::backend::JobStore;
use crate::backend::types::{JobRecord, NewJob, Placement, Replicas};
use crate::error::{Error, Result};
use crate::job::{JobId, JobStatus};
use crate::results::{JobResult, ResultType};

/// A new job as the transaction writes it: its columns, owned.
struct NewRow {
    id: String,
    spec: String,
    placement: Placement,
    unique: bool,
    created_at: Option<i64>,
    expires_in: Option<i64>,
    meta: Option<String>,
    retries_left: i64,
    repeats_left: i64,
    dependencies: Vec<String>,
    allow_dependency_failures: bool,
    group_id: Option<String>,
    /// The rate limit's key and concurrency, for the limiter's triggers (`schema.rs`).
    limit: Option<(String, u32)>,
}

impl NewRow {
    fn of(job: &NewJob) -> Result<Self> {
        let record = &job.record;
        let lifecycle = &record.lifecycle;
        Ok(NewRow {
            id: record.id.as_str().to_owned(),
            spec: codec::spec(record)?,
            placement: job.placement.clone(),
            unique: job.unique,
            created_at: record.created_at.map(micros),
            expires_in: record
                .ttl
                .map(|ttl| seconds(crate::ttl::whole_seconds(ttl))),
            meta: if record.meta.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&record.meta)?)
            },
            retries_left: i64::try_from(lifecycle.retries_left).unwrap_or(i64::MAX),
            repeats_left: i64::try_from(lifecycle.repeats_left).unwrap_or(i64::MAX),
            dependencies: lifecycle
                .dependency_ids
                .iter()
                .map(|id| id.as_str().to_owned())
                .collect(),
            allow_dependency_failures: lifecycle.allow_dependency_failures,
            group_id: record.group_id.clone(),
            limit: lifecycle
                .rate_limit
                .as_ref()
                .map(|limit| (limit.key().to_owned(), limit.concurrency())),
        })
    }
}

impl JobStore for SqliteBackend {
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[NewJob],
        group: Option<&str>,
        replicas: Option<Replicas>,
    ) -> Result<Vec<JobStatus>> {
        if replicas.is_some() {
            return Err(Error::invalid(
                "replicas",
                "waiting for replicas is Redis's (WAIT): a SQLite database has none; a commit \
                 is on disk when the enqueue returns (with synchronous=full, safe from a power \
                 loss too)",
            ));
        }
        let rows = jobs.iter().map(NewRow::of).collect::<Result<Vec<_>>>()?;
        let queue = queue.to_owned();
        let group = group.map(str::to_owned);
        let statuses = self
            .db()
            .write(move |tx| {
                let now = codec::now();
                let at = rows.first().and_then(|row| row.created_at).unwrap_or(now);
                for row in rows.iter().filter(|row| row.unique) {
                    if rows::exists(tx, &row.id, now)? {
                        return Err(Error::DuplicateJob(JobId::from_stored(row.id.clone())));
                    }
                }
                rows::know_queue(tx, &queue)?;
                let mut statuses = Vec::with_capacity(rows.len());
                let mut edges = Edges::default();
                for row in &rows {
                    statuses.push(insert(
                        tx,
                        &queue,
                        row,
                        group.as_deref(),
                        (at, now),
                        &mut edges,
                    )?);
                }
                Ok(statuses)
            })
            .await?;
        Ok(statuses)
    }

    async fn fetch_job(&self, id: &JobId) -> Result<Option<JobRecord>> {
        let id = id.as_str().to_owned();
        self.db()
            .read(move |conn| rows::job(conn, &id, codec::now()))
            .await
    }

    async fn fetch_jobs(&self, ids: &[JobId]) -> Result<Vec<Option<JobRecord>>> {
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        self.db()
            .read(move |conn| {
                let now = codec::now();
                ids.iter().map(|id| rows::job(conn, id, now)).collect()
            })
            .await
    }

    async fn save_meta(&self, id: &JobId, meta: &Map<String, Value>) -> Result<()> {
        let id = id.clone();
        let meta = serde_json::to_string(meta)?;
        self.db()
            .write(move |tx| {
                let written = tx
                    .prepare_cached(
                        "UPDATE jobs SET meta = ?2 WHERE id = ?1 \
                         AND (expires_at IS NULL OR expires_at > ?3)",
                    )?
                    .execute(params![id.as_str(), meta, codec::now()])?;
                if written == 0 {
                    return Err(Error::NoSuchJob(id));
                }
                Ok(())
            })
            .await
    }

    async fn latest_result(&self, id: &JobId) -> Result<Option<JobResult>> {
        Ok(self.results_of(id, Some(1)).await?.pop())
    }

    async fn results(&self, id: &JobId) -> Result<Vec<JobResult>> {
        self.results_of(id, None).await
    }

    async fn cancel(&self, id: &JobId, origin: &str) -> Result<()> {
        let id = id.clone();
        let origin = origin.to_owned();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let Some(job) = rows::job(tx, id.as_str(), now)? else {
                    return Err(Error::NoSuchJob(id));
                };
                if job.status == JobStatus::Canceled {
                    return Err(Error::AlreadyCanceled(id));
                }
                let origin = if job.origin.is_empty() {
                    origin
                } else {
                    job.origin
                };
                // A running job is not stopped; its run ends here, so its outcome is refused.
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'canceled', place = 'canceled', score = ?2, \
                     origin = ?3, execution_id = NULL WHERE id = ?1",
                )?
                .execute(params![id.as_str(), now as f64, origin])?;
                Ok(())
            })
            .await
    }

    async fn delete(&self, id: &JobId, _origin: &str, dependents: bool) -> Result<usize> {
        let id = id.as_str().to_owned();
        self.db()
            .write(move |tx| {
                let mut pending = vec![id.clone()];
                let mut seen = std::collections::HashSet::from([id]);
                let mut deleted = 0;
                while let Some(id) = pending.pop() {
                    let (gone, waiting) = rows::delete(tx, &id)?;
                    deleted += usize::from(gone);
                    if dependents {
                        for dependent in waiting {
                            if seen.insert(dependent.clone()) {
                                pending.push(dependent);
                            }
                        }
                    }
                }
                Ok(deleted)
            })
            .await
    }
}

/// The scores of the head and the tail of the queue a batch goes on, read once per batch.
#[derive(Debug, Default)]
struct Edges {
    head: Option<f64>,
    tail: Option<f64>,
}

impl Edges {
    /// The score of the next job at the head (or the tail) of `queue`.
    fn next(&mut self, tx: &super::db::Tx<'_>, queue: &str, at_front: bool) -> Result<f64> {
        let edge = if at_front {
            &mut self.head
        } else {
            &mut self.tail
        };
        let score = match *edge {
            Some(last) if at_front => last - 1.0,
            Some(last) => last + 1.0,
            None => rows::queue_score(tx, queue, at_front)?,
        };
        *edge = Some(score);
        Ok(score)
    }
}

/// Writes one new job: queued, scheduled, started (test mode) or deferred while a dependency is
/// not done; returns its status. `at` is the batch's enqueue time.
fn insert(
    tx: &super::db::Tx<'_>,
    queue: &str,
    row: &NewRow,
    group: Option<&str>,
    (at, now): (i64, i64),
    edges: &mut Edges,
) -> Result<JobStatus> {
    let mut waiting = false;
    for parent in &row.dependencies {
        if let Some(status) = rows::status(tx, parent, now)?
            && status != "finished"
            && !(row.allow_dependency_failures && status == "failed")
        {
            waiting = true;
        }
    }
    let status = match (&row.placement, waiting) {
        (_, true) => JobStatus::Deferred,
        (Placement::Scheduled(_), false) => JobStatus::Scheduled,
        (Placement::Started { .. }, false) => JobStatus::Started,
        (Placement::Queue { .. }, false) => JobStatus::Queued,
    };
    // A queued job is written on its queue at once; the others are filed below.
    let queued = match (&row.placement, status) {
        (Placement::Queue { at_front }, JobStatus::Queued) => {
            Some(edges.next(tx, queue, *at_front)?)
        }
        _ => None,
    };
    // A job enqueued again under its id is written over, whole, as RQ overwrites the hash
    // (its results stay, as RQ's stream does).
    tx.prepare_cached(
        "INSERT INTO jobs (id, origin, status, place, score, expires_at, spec, created_at, \
         enqueued_at, retries_left, repeats_left, meta, group_id, limit_key, \
         limit_concurrency) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, status = excluded.status, \
         place = excluded.place, score = excluded.score, expires_at = excluded.expires_at, \
         spec = excluded.spec, created_at = excluded.created_at, \
         enqueued_at = excluded.enqueued_at, started_at = NULL, ended_at = NULL, \
         last_heartbeat = NULL, worker_name = NULL, execution_id = NULL, \
         retries_left = excluded.retries_left, repeats_left = excluded.repeats_left, \
         meta = excluded.meta, group_id = excluded.group_id, \
         limit_key = excluded.limit_key, limit_concurrency = excluded.limit_concurrency",
    )?
    .execute(params![
        row.id,
        queue,
        status.as_str(),
        queued.map(|_| "queued"),
        queued,
        row.expires_in.map(|ttl| now.saturating_add(ttl)),
        row.spec,
        row.created_at,
        queued.map(|_| at),
        row.retries_left,
        row.repeats_left,
        row.meta,
        row.group_id,
        row.limit.as_ref().map(|(key, _)| key),
        row.limit.as_ref().map(|(_, concurrency)| concurrency)
    ])?;
    if queued.is_some() {
        tx.wake_waiters();
    }
    // The limiter's trigger may have put a queued job in line for a slot instead.
    let status = match (status, &row.limit) {
        (JobStatus::Queued, Some(_)) => rows::status(tx, &row.id, now)?
            .and_then(|status| status.parse().ok())
            .unwrap_or(status),
        _ => status,
    };
    match (&row.placement, status) {
        (_, JobStatus::Deferred) => {
            for parent in &row.dependencies {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO dependencies (job_id, parent, waiting) \
                     VALUES (?1, ?2, 1)",
                )?
                .execute(params![row.id, parent])?;
            }
            rows::file(tx, &row.id, "deferred", now as f64)?;
        }
        (Placement::Scheduled(due), _) => {
            rows::file(tx, &row.id, "scheduled", micros(*due) as f64)?;
        }
        (
            Placement::Started {
                worker,
                execution_id,
                liveness,
            },
            _,
        ) => {
            super::runs::start(
                tx,
                &row.id,
                execution_id,
                worker,
                seconds(liveness.execution_ttl.as_secs()),
                now,
            )?;
            tx.prepare_cached("UPDATE jobs SET enqueued_at = ?2 WHERE id = ?1")?
                .execute(params![row.id, at])?;
        }
        (Placement::Queue { .. }, _) => {}
    }
    if let Some(group) = group {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO group_members (group_name, job_id) VALUES (?1, ?2)",
        )?
        .execute(params![group, row.id])?;
    }
    Ok(status)
}

impl SqliteBackend {
    /// The job's results that have not expired, newest first, `limit` at most.
    async fn results_of(&self, id: &JobId, limit: Option<usize>) -> Result<Vec<JobResult>> {
        let id = id.clone();
        self.db()
            .read(move |conn| {
                let now = codec::now();
                let Some(held) = rows::held(conn, id.as_str(), now)? else {
                    return Ok(Vec::new());
                };
                if held.results_expire_at.is_some_and(|at| at <= now) {
                    return Ok(Vec::new());
                }
                let mut results = Vec::new();
                for entry in held
                    .results
                    .into_iter()
                    .rev()
                    .take(limit.unwrap_or(usize::MAX))
                {
                    let code = entry.result_type;
                    let result_type =
                        ResultType::from_code(code).ok_or_else(|| Error::MalformedJob {
                            id: id.clone(),
                            reason: format!("a result has the type {code}"),
                        })?;
                    results.push(JobResult {
                        result_type,
                        created_at: DateTime::from_timestamp_micros(entry.created_at),
                        return_value: entry.return_value,
                        exc_string: entry.exc_string,
                        worker_name: entry.worker_name.filter(|name| !name.is_empty()),
                        execution_id: entry.execution_id,
                    });
                }
                Ok(results)
            })
            .await
    }
}

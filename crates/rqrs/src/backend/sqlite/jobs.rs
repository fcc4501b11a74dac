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
                for row in &rows {
                    statuses.push(insert(tx, &queue, row, group.as_deref(), at, now)?);
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
                // A running job is not stopped; its run ends here, so its outcome is refused.
                tx.prepare_cached("DELETE FROM executions WHERE job_id = ?1")?
                    .execute(params![id.as_str()])?;
                let origin = if job.origin.is_empty() {
                    origin
                } else {
                    job.origin
                };
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'canceled', place = 'canceled', score = ?2, \
                     origin = ?3 WHERE id = ?1",
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

/// Writes one new job: queued, scheduled, started (test mode) or deferred while a dependency is
/// not done; returns its status.
fn insert(
    tx: &super::db::Tx<'_>,
    queue: &str,
    row: &NewRow,
    group: Option<&str>,
    at: i64,
    now: i64,
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
    tx.prepare_cached(
        "INSERT OR REPLACE INTO jobs (id, origin, status, place, score, expires_at, spec, \
         created_at, retries_left, repeats_left, meta, group_id) \
         VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        row.id,
        queue,
        status.as_str(),
        row.expires_in.map(|ttl| now.saturating_add(ttl)),
        row.spec,
        row.created_at,
        row.retries_left,
        row.repeats_left,
        row.meta,
        row.group_id
    ])?;
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
                queue,
                execution_id,
                worker,
                seconds(liveness.execution_ttl.as_secs()),
                now,
            )?;
            tx.prepare_cached("UPDATE jobs SET enqueued_at = ?2 WHERE id = ?1")?
                .execute(params![row.id, at])?;
        }
        (Placement::Queue { at_front }, _) => {
            rows::enqueue(tx, &row.id, queue, *at_front, at)?;
        }
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
                let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
                let mut statement = conn.prepare_cached(
                    "SELECT type, created_at, return_value, exc_string, worker_name, execution_id \
                     FROM results WHERE job_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) \
                     ORDER BY seq DESC LIMIT ?3",
                )?;
                let mut rows = statement.query(params![id.as_str(), codec::now(), limit])?;
                let mut results = Vec::new();
                while let Some(row) = rows.next()? {
                    let code: u8 = row.get(0)?;
                    let malformed = |reason: String| Error::MalformedJob {
                        id: id.clone(),
                        reason,
                    };
                    let result_type = ResultType::from_code(code)
                        .ok_or_else(|| malformed(format!("a result has the type {code}")))?;
                    let return_value: Option<String> = row.get(2)?;
                    let worker_name: Option<String> = row.get(4)?;
                    results.push(JobResult {
                        result_type,
                        created_at: row
                            .get::<_, Option<i64>>(1)?
                            .and_then(DateTime::from_timestamp_micros),
                        return_value: return_value
                            .map(|text| serde_json::from_str(&text))
                            .transpose()
                            .map_err(|error| {
                                malformed(format!("a return value is not JSON: {error}"))
                            })?,
                        exc_string: row.get(3)?,
                        worker_name: worker_name.filter(|name| !name.is_empty()),
                        execution_id: row.get(5)?,
                    });
                }
                Ok(results)
            })
            .await
    }
}

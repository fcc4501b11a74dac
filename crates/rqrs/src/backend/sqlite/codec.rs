//! Rows to and from the library's records: a job's row (its columns, and `spec`, the JSON of
//! what does not change after its enqueue), a worker's row, times as microseconds.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::RateLimit;
use crate::backend::types::JobRecord;
use crate::error::{Error, Result};
use crate::job::{Call, Callback, JobId, JobStatus, Lifecycle, Webhook};
use crate::ttl::{Timeout, Ttl};
use crate::worker::{WorkerInfo, WorkerState};

/// Microseconds since the epoch.
pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// A time from microseconds since the epoch.
pub(super) fn time(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(DateTime::from_timestamp_micros)
}

/// Now, in microseconds since the epoch.
pub(super) fn now() -> i64 {
    micros(Utc::now())
}

/// Microseconds in `seconds`.
pub(super) fn seconds(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000)
}

/// What does not change in a job after its enqueue. Fields at their default are left out, to
/// keep rows small.
#[derive(Debug, Serialize, Deserialize)]
struct Spec {
    func_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    kwargs: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// RQ's seconds: `-1` for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<i64>,
    /// RQ's seconds: `0` not kept, `-1` forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure_ttl: Option<i64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retry_intervals: Vec<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    retry_at_front: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    repeat_intervals: Vec<u64>,
    /// Name and RQ's seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_success: Option<(String, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_failure: Option<(String, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_stopped: Option<(String, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dependency_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    allow_dependency_failures: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    enqueue_at_front: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    webhooks: Vec<Webhook>,
    /// Key and concurrency (the row's `limit_key` and `limit_concurrency` too, for the
    /// limiter's triggers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<(String, u32)>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The `spec` of a new job.
///
/// # Errors
/// [`Error::Invalid`] for a job whose call is not known (only jobs read back have none).
pub(super) fn spec(job: &JobRecord) -> Result<String> {
    let call = job
        .call
        .as_ref()
        .map_err(|reason| Error::invalid("job", reason.clone()))?;
    let lifecycle = &job.lifecycle;
    let callback = |callback: &Option<Callback>| {
        callback.as_ref().map(|callback| {
            (
                callback.name().to_owned(),
                callback.time_limit().to_seconds(),
            )
        })
    };
    let spec = Spec {
        func_name: call.func_name.clone(),
        args: call.args.clone(),
        kwargs: call.kwargs.clone(),
        description: job.description.clone(),
        timeout: job.timeout.map(Timeout::to_seconds),
        result_ttl: job.result_ttl.map(Ttl::to_seconds),
        failure_ttl: job.failure_ttl.map(Ttl::to_seconds),
        ttl: job.ttl.map(crate::ttl::whole_seconds),
        retry_intervals: lifecycle.retry_intervals.clone(),
        retry_at_front: lifecycle.retry_at_front,
        repeat_intervals: lifecycle.repeat_intervals.clone(),
        on_success: callback(&lifecycle.on_success),
        on_failure: callback(&lifecycle.on_failure),
        on_stopped: callback(&lifecycle.on_stopped),
        dependency_ids: lifecycle
            .dependency_ids
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect(),
        allow_dependency_failures: lifecycle.allow_dependency_failures,
        enqueue_at_front: lifecycle.enqueue_at_front,
        webhooks: lifecycle.webhooks.clone(),
        rate_limit: lifecycle
            .rate_limit
            .as_ref()
            .map(|limit| (limit.key().to_owned(), limit.concurrency())),
    };
    Ok(serde_json::to_string(&spec)?)
}

/// The columns a job's record is read from, in the order [`job`] reads them.
pub(super) const JOB_COLUMNS: &str = "id, origin, status, spec, created_at, enqueued_at, \
    started_at, ended_at, last_heartbeat, worker_name, retries_left, repeats_left, meta, group_id";

/// A job from a row of [`JOB_COLUMNS`]. A `spec` that cannot be read makes a job whose call
/// says why, which a worker that takes it fails with that reason.
///
/// # Errors
/// [`Error::MalformedJob`] for a column that holds what it cannot (text where a time is, a
/// status that is not one of RQ's); a database error for an id that cannot be read.
pub(super) fn job(row: &Row<'_>) -> Result<JobRecord> {
    let id = JobId::from_stored(row.get::<_, String>(0)?);
    let malformed = |reason: String| Error::MalformedJob {
        id: id.clone(),
        reason,
    };
    let column = |error: rusqlite::Error| match error {
        rusqlite::Error::InvalidColumnType(_, name, kind) => {
            malformed(format!("its column {name} holds a {kind} value"))
        }
        rusqlite::Error::FromSqlConversionFailure(index, kind, error) => {
            malformed(format!("its column {index} holds a {kind} value ({error})"))
        }
        rusqlite::Error::IntegralValueOutOfRange(index, value) => {
            malformed(format!("its column {index} holds {value}, out of range"))
        }
        error => malformed(error.to_string()),
    };
    let status: String = row.get(2).map_err(column)?;
    let status: JobStatus = status
        .parse()
        .map_err(|_| malformed(format!("unknown status {status:?}")))?;
    let spec: String = row.get(3).map_err(column)?;
    let meta: Option<String> = row.get(12).map_err(column)?;
    let meta = match meta.map(|meta| serde_json::from_str::<Value>(&meta)) {
        Some(Ok(Value::Object(map))) => map,
        Some(_) | None => Map::new(),
    };
    let time_at = |index: usize| -> Result<Option<DateTime<Utc>>> {
        Ok(time(row.get(index).map_err(column)?))
    };
    let mut job = JobRecord {
        id: id.clone(),
        call: Err(String::new()),
        status,
        origin: row.get(1).map_err(column)?,
        description: None,
        created_at: time_at(4)?,
        enqueued_at: time_at(5)?,
        started_at: time_at(6)?,
        ended_at: time_at(7)?,
        last_heartbeat: time_at(8)?,
        worker_name: row.get(9).map_err(column)?,
        timeout: None,
        result_ttl: None,
        failure_ttl: None,
        ttl: None,
        meta,
        legacy_exc_info: None,
        lifecycle: Lifecycle::default(),
        group_id: row.get(13).map_err(column)?,
    };
    let retries_left: i64 = row.get(10).map_err(column)?;
    let repeats_left: i64 = row.get(11).map_err(column)?;
    match serde_json::from_str::<Spec>(&spec) {
        Ok(spec) => apply(&mut job, spec, retries_left, repeats_left),
        Err(error) => job.call = Err(format!("the job's row cannot be read: {error}")),
    }
    Ok(job)
}

/// Fills in a job from its spec and counts.
fn apply(job: &mut JobRecord, spec: Spec, retries_left: i64, repeats_left: i64) {
    let callback = |callback: Option<(String, i64)>| {
        callback.map(|(name, seconds)| Callback::new(name).timeout(Timeout::from_seconds(seconds)))
    };
    job.call = if spec.func_name.is_empty() {
        Err("the job's function name is empty".to_owned())
    } else {
        Ok(Call {
            func_name: spec.func_name,
            args: spec.args,
            kwargs: spec.kwargs,
        })
    };
    job.description = spec.description;
    job.timeout = spec.timeout.map(Timeout::from_seconds);
    job.result_ttl = spec.result_ttl.map(Ttl::from_seconds);
    job.failure_ttl = spec.failure_ttl.map(Ttl::from_seconds);
    job.ttl = spec
        .ttl
        .filter(|seconds| *seconds > 0)
        .map(std::time::Duration::from_secs);
    job.lifecycle = Lifecycle {
        retries_left: u64::try_from(retries_left).unwrap_or(0),
        retry_intervals: spec.retry_intervals,
        retry_at_front: spec.retry_at_front,
        repeats_left: u64::try_from(repeats_left).unwrap_or(0),
        repeat_intervals: spec.repeat_intervals,
        on_success: callback(spec.on_success),
        on_failure: callback(spec.on_failure),
        on_stopped: callback(spec.on_stopped),
        dependency_ids: spec
            .dependency_ids
            .into_iter()
            .map(JobId::from_stored)
            .collect(),
        allow_dependency_failures: spec.allow_dependency_failures,
        enqueue_at_front: spec.enqueue_at_front,
        webhooks: spec.webhooks,
        rate_limit: spec
            .rate_limit
            .map(|(key, concurrency)| RateLimit::new(key, concurrency)),
    };
}

/// One result of a job, as its row's `results` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entry {
    /// RQ's result type code.
    #[serde(rename = "type")]
    pub(super) result_type: u8,
    /// Microseconds since the epoch.
    pub(super) created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) return_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) exc_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) worker_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) execution_id: Option<String>,
}

/// The results of a row's `results` column, oldest first; a column that cannot be read holds
/// none (a job's history is not worth failing the job for).
pub(super) fn entries(column: Option<&str>) -> Vec<Entry> {
    column
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// The columns a worker is read from, in the order [`worker`] reads them.
pub(super) const WORKER_COLUMNS: &str = "name, queues, pid, hostname, version, state, birth, \
    last_heartbeat, current_job, successful_job_count, failed_job_count, total_working_time";

/// A worker from a row of [`WORKER_COLUMNS`].
///
/// # Errors
/// A database error.
pub(super) fn worker(row: &Row<'_>) -> Result<WorkerInfo> {
    let queues: String = row.get(1)?;
    let state: String = row.get(5)?;
    let count =
        |index: usize| -> Result<u64> { Ok(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0)) };
    Ok(WorkerInfo {
        name: row.get(0)?,
        queues: queues
            .split(',')
            .filter(|queue| !queue.is_empty())
            .map(str::to_owned)
            .collect(),
        state: match state.as_str() {
            "busy" => WorkerState::Busy,
            "suspended" => WorkerState::Suspended,
            "started" => WorkerState::Started,
            _ => WorkerState::Idle,
        },
        current_job: row.get(8)?,
        hostname: row.get(3)?,
        pid: u32::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        ip_address: None,
        birth: time(row.get(6)?),
        last_heartbeat: time(row.get(7)?),
        successful_job_count: count(9)?,
        failed_job_count: count(10)?,
        total_working_time: row.get(11)?,
        version: row.get(4)?,
    })
}

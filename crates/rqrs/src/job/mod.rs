//! A job: its id, status, call, options and outcome, as stored in `rq:job:<id>`.

mod operations;
mod options;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use options::{Callback, Dependency, Enqueue, EnqueueOptions, Repeat, Webhook, WebhookStatus};

use crate::Connection;
use crate::error::{Error, Result};
use crate::results::{JobResult, ResultType};

/// A job's id: a UUID by default, or any `[A-Za-z0-9_-]+` the producer chooses.
///
/// # Examples
/// ```
/// use rqrs::JobId;
///
/// let id: JobId = "report-2026-11".parse()?;
/// assert_eq!(id.as_str(), "report-2026-11");
/// assert!("a:b".parse::<JobId>().is_err());
/// assert_eq!(JobId::random().as_str().len(), 36);
/// # Ok::<(), rqrs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// A new random id (`uuid4`, as RQ makes them).
    pub fn random() -> Self {
        JobId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the backend. RQ before 2.8 allowed more characters, so ids that
    /// are already stored are taken as they are.
    pub(crate) fn from_stored(id: impl Into<String>) -> Self {
        JobId(id.into())
    }
}

impl FromStr for JobId {
    type Err = Error;

    /// Checks RQ 2.8's rule: one or more of `[A-Za-z0-9_-]`. A `:` would break the
    /// `<id>:<execution id>` members of the started registry.
    fn from_str(id: &str) -> Result<Self> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::invalid(
                "job id",
                format!("{id:?}: use one or more of A-Z, a-z, 0-9, '-' and '_'"),
            ));
        }
        Ok(JobId(id.to_owned()))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Where a job is in its life, with RQ's names and strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobStatus {
    /// Created, not yet on a queue.
    Created,
    /// Waiting on its queue.
    Queued,
    /// Running on a worker.
    Started,
    /// Ran and succeeded.
    Finished,
    /// Ran and failed, or was moved to the failed registry by hand.
    Failed,
    /// Waiting for the jobs it depends on.
    Deferred,
    /// Waiting for its time to be enqueued.
    Scheduled,
    /// Stopped on purpose while it ran.
    Stopped,
    /// Canceled before it ran.
    Canceled,
}

impl JobStatus {
    /// RQ's string for the status, as stored in the job hash.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Queued => "queued",
            JobStatus::Started => "started",
            JobStatus::Finished => "finished",
            JobStatus::Failed => "failed",
            JobStatus::Deferred => "deferred",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Stopped => "stopped",
            JobStatus::Canceled => "canceled",
        }
    }

    /// Whether the job will not run again by itself.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Failed | JobStatus::Stopped | JobStatus::Canceled
        )
    }
}

impl FromStr for JobStatus {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Ok(match text {
            "created" => JobStatus::Created,
            "queued" => JobStatus::Queued,
            "started" => JobStatus::Started,
            "finished" => JobStatus::Finished,
            "failed" => JobStatus::Failed,
            "deferred" => JobStatus::Deferred,
            "scheduled" => JobStatus::Scheduled,
            "stopped" => JobStatus::Stopped,
            "canceled" => JobStatus::Canceled,
            other => return Err(Error::invalid("job status", format!("{other:?}"))),
        })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The call a job makes: a function name with JSON arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Call {
    pub(crate) func_name: String,
    pub(crate) args: Vec<Value>,
    pub(crate) kwargs: Map<String, Value>,
}

/// A job as read from the backend.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use rqrs::{Job, JobStatus};
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let job = Job::fetch(&conn, &"some-id".parse()?).await?;
/// if job.status() == JobStatus::Finished {
///     println!("{:?}", job.return_value().await?);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) conn: Connection,
    pub(crate) id: JobId,
    /// The decoded call, or why `data` cannot be decoded.
    pub(crate) call: std::result::Result<Call, String>,
    pub(crate) status: JobStatus,
    pub(crate) origin: String,
    pub(crate) description: Option<String>,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) enqueued_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
    pub(crate) last_heartbeat: Option<DateTime<Utc>>,
    pub(crate) worker_name: Option<String>,
    pub(crate) timeout: Option<i64>,
    pub(crate) result_ttl: Option<i64>,
    pub(crate) failure_ttl: Option<i64>,
    pub(crate) ttl: Option<i64>,
    pub(crate) meta: Map<String, Value>,
    /// The legacy `exc_info` field of the hash (RQ 1.x, or a requeue's empty marker).
    pub(crate) legacy_exc_info: Option<String>,
    /// What happens around its runs: retries, repeats, callbacks, dependencies.
    pub(crate) lifecycle: Lifecycle,
    /// The group the job belongs to (RQ's `group_id`).
    pub(crate) group_id: Option<String>,
}

/// The settings of a job that decide what happens after a run, as stored in its hash.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Lifecycle {
    pub(crate) retries_left: u64,
    pub(crate) retry_intervals: Vec<u64>,
    pub(crate) retry_at_front: bool,
    pub(crate) repeats_left: u64,
    pub(crate) repeat_intervals: Vec<u64>,
    pub(crate) on_success: Option<Callback>,
    pub(crate) on_failure: Option<Callback>,
    pub(crate) on_stopped: Option<Callback>,
    pub(crate) dependency_ids: Vec<JobId>,
    pub(crate) allow_dependency_failures: bool,
    pub(crate) webhooks: Vec<Webhook>,
}

impl Job {
    /// A started job whose hash cannot be read: the worker fails it with `reason`.
    pub(crate) fn unreadable(conn: &Connection, id: JobId, origin: &str, reason: String) -> Job {
        Job {
            conn: conn.clone(),
            id,
            call: Err(reason),
            status: JobStatus::Started,
            origin: origin.to_owned(),
            description: None,
            created_at: None,
            enqueued_at: None,
            started_at: None,
            ended_at: None,
            last_heartbeat: None,
            worker_name: None,
            timeout: None,
            result_ttl: None,
            failure_ttl: None,
            ttl: None,
            meta: Map::new(),
            legacy_exc_info: None,
            lifecycle: Lifecycle::default(),
            group_id: None,
        }
    }

    /// Reads the job with this id.
    ///
    /// # Errors
    /// [`Error::NoSuchJob`] if it does not exist (never created, deleted, or expired);
    /// [`Error::MalformedJob`] if its hash is not a job; a backend error.
    pub async fn fetch(conn: &Connection, id: &JobId) -> Result<Job> {
        conn.backend()
            .fetch_job(conn, id)
            .await?
            .ok_or_else(|| Error::NoSuchJob(id.clone()))
    }

    /// Reads several jobs in one round trip (RQ's `Job.fetch_many`), in the order of `ids`:
    /// `None` for each id whose job does not exist.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// use rqrs::{Job, JobId};
    ///
    /// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
    /// let ids: Vec<JobId> = vec!["a".parse()?, "b".parse()?];
    /// for (id, job) in ids.iter().zip(Job::fetch_many(&conn, &ids).await?) {
    ///     match job {
    ///         Some(job) => println!("{id}: {}", job.status()),
    ///         None => println!("{id}: gone"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::MalformedJob`] if a hash is not a job; a backend error.
    pub async fn fetch_many(conn: &Connection, ids: &[JobId]) -> Result<Vec<Option<Job>>> {
        conn.backend().fetch_jobs(conn, ids).await
    }

    /// Reads the job again, so that status, meta and timestamps are current.
    ///
    /// # Errors
    /// As [`Job::fetch`].
    pub async fn refresh(&mut self) -> Result<()> {
        *self = Job::fetch(&self.conn, &self.id).await?;
        Ok(())
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The function the job calls (empty when the job's data cannot be decoded).
    pub fn func_name(&self) -> &str {
        self.call.as_ref().map_or("", |call| &call.func_name)
    }

    /// The positional arguments.
    pub fn args(&self) -> &[Value] {
        self.call.as_ref().map_or(&[], |call| &call.args)
    }

    /// The keyword arguments.
    pub fn kwargs(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.call
            .as_ref()
            .map_or_else(|_| EMPTY.get_or_init(Map::new), |call| &call.kwargs)
    }

    /// Why the job's `data` cannot be decoded, if it cannot (a pickled job, bad JSON...).
    pub fn data_error(&self) -> Option<&str> {
        self.call.as_ref().err().map(String::as_str)
    }

    /// The status as last read.
    pub fn status(&self) -> JobStatus {
        self.status
    }

    /// The name of the queue the job was enqueued on.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The description (RQ's default is the call as Python would write it).
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// When the job was created.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }

    /// When the job was last put on a queue.
    pub fn enqueued_at(&self) -> Option<DateTime<Utc>> {
        self.enqueued_at
    }

    /// When the job last started.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.started_at
    }

    /// When the job last ended.
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.ended_at
    }

    /// The last heartbeat of the worker that runs or ran the job.
    pub fn last_heartbeat(&self) -> Option<DateTime<Utc>> {
        self.last_heartbeat
    }

    /// The name of the worker that runs or ran the job.
    pub fn worker_name(&self) -> Option<&str> {
        self.worker_name.as_deref()
    }

    /// The timeout in seconds (`-1`: none; `None`: the worker's default).
    pub fn timeout(&self) -> Option<i64> {
        self.timeout
    }

    /// How long a result is kept, in seconds (`0`: not kept, `-1`: forever; `None`: the
    /// worker's default, 500 s).
    pub fn result_ttl(&self) -> Option<i64> {
        self.result_ttl
    }

    /// How long a failed job is kept, in seconds (`None`: one year).
    pub fn failure_ttl(&self) -> Option<i64> {
        self.failure_ttl
    }

    /// How long the job may wait on its queue before it is dropped, in seconds.
    pub fn ttl(&self) -> Option<i64> {
        self.ttl
    }

    /// How many more times the job runs after a failure.
    pub fn retries_left(&self) -> u64 {
        self.lifecycle.retries_left
    }

    /// How many more times the job runs after a success.
    pub fn repeats_left(&self) -> u64 {
        self.lifecycle.repeats_left
    }

    /// The jobs this one waits for.
    pub fn dependency_ids(&self) -> &[JobId] {
        &self.lifecycle.dependency_ids
    }

    /// The name of the group the job was enqueued in (see [`Group`](crate::Group)).
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// Where the job is on its queue (0 is the head, the next to run), or `None` when it is not
    /// on it: not queued, or taken by a worker already (RQ's `get_position`).
    ///
    /// # Errors
    /// A backend error.
    pub async fn position(&self) -> Result<Option<usize>> {
        if self.origin.is_empty() {
            return Ok(None);
        }
        self.conn
            .backend()
            .queue_position(&self.origin, &self.id)
            .await
    }

    /// The job's free-form metadata.
    pub fn meta(&self) -> &Map<String, Value> {
        &self.meta
    }

    /// The metadata, to change before [`Job::save_meta`].
    pub fn meta_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.meta
    }

    /// Writes [`Job::meta`] to the backend, replacing what is stored.
    ///
    /// # Errors
    /// A backend error.
    pub async fn save_meta(&self) -> Result<()> {
        self.conn.backend().save_meta(&self.id, &self.meta).await
    }

    /// The latest result of the job (success or failure), if any is kept.
    ///
    /// # Errors
    /// A backend error, or a result entry that cannot be read.
    pub async fn latest_result(&self) -> Result<Option<JobResult>> {
        self.conn.backend().latest_result(&self.id).await
    }

    /// Every result kept for the job, newest first (RQ's `results()`): one per run that
    /// ended, as RQ keeps them (about the last ten).
    ///
    /// # Errors
    /// A backend error, or a result entry that cannot be read.
    pub async fn results(&self) -> Result<Vec<JobResult>> {
        self.conn.backend().results(&self.id).await
    }

    /// The return value of the last run, if it succeeded (`Some(Value::Null)` for a function
    /// that returned nothing).
    ///
    /// # Errors
    /// As [`Job::latest_result`].
    pub async fn return_value(&self) -> Result<Option<Value>> {
        Ok(self
            .latest_result()
            .await?
            .filter(|result| result.result_type() == ResultType::Successful)
            .and_then(|result| result.return_value().cloned().or(Some(Value::Null))))
    }

    /// The error text of the last failure, if the job failed.
    ///
    /// # Errors
    /// As [`Job::latest_result`].
    pub async fn exc_info(&self) -> Result<Option<String>> {
        let latest = self.latest_result().await?;
        Ok(match latest {
            Some(result) if result.result_type() == ResultType::Failed => {
                result.exc_string().map(str::to_owned)
            }
            _ => self.legacy_exc_info.clone().filter(|text| !text.is_empty()),
        })
    }
}

//! A job: its id, status, call, options and outcome, as stored in `rq:job:<id>`.

mod call;
mod callback;
mod dependency;
mod enqueue;
mod operations;
mod options;
mod webhook;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(crate) use call::Call;
pub use callback::Callback;
pub use dependency::Dependency;
pub use enqueue::Enqueue;
pub use options::EnqueueOptions;
pub use webhook::{Webhook, WebhookStatus};

use std::time::Duration;

use crate::Connection;
use crate::backend::types::JobRecord;
use crate::backend::{JobStore, QueueStore};
use crate::error::{Error, Result};
use crate::rate_limit::RateLimit;
use crate::results::{JobResult, ResultType};
use crate::retry::Retry;
use crate::ttl::{Timeout, Ttl};

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
    /// A new unique id: a UUID, as RQ makes them, of version 7 (RQ's are version 4): it starts
    /// with the time it was made, so the ids of jobs enqueued one after another sort together,
    /// which keeps an index of them (SQLite's) compact; 74 random bits keep it unique.
    pub fn random() -> Self {
        JobId(uuid::Uuid::now_v7().to_string())
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
    /// Waiting for a free slot of its rate limit before it goes on its queue (RQ 3.0's
    /// `RateLimit`; written by Python RQ 3.0).
    RateLimited,
    /// Its dependencies are done and it is on its way to its queue (RQ 3.0's ready registry,
    /// `rq:ready:<queue>`; written by Python RQ 3.0).
    ReadyToEnqueue,
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
            JobStatus::RateLimited => "rate_limited",
            JobStatus::ReadyToEnqueue => "ready_to_enqueue",
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
            "rate_limited" => JobStatus::RateLimited,
            "ready_to_enqueue" => JobStatus::ReadyToEnqueue,
            other => return Err(Error::invalid("job status", format!("{other:?}"))),
        })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    conn: Connection,
    record: JobRecord,
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
    /// Go to the head of the queue when released by its dependencies or due (RQ's
    /// `enqueue_at_front`).
    pub(crate) enqueue_at_front: bool,
    pub(crate) webhooks: Vec<Webhook>,
    /// RQ 3.0's `rate_limit_key` and `rate_limit_concurrency`.
    pub(crate) rate_limit: Option<RateLimit>,
}

impl Lifecycle {
    /// What an enqueue with `options` asks of the job's runs.
    pub(crate) fn of(options: &EnqueueOptions) -> Self {
        let retry = options.retry.as_ref();
        let repeat = options.repeat.as_ref();
        let dependency = options.depends_on.as_ref();
        Lifecycle {
            retries_left: retry.map_or(0, |retry| u64::from(retry.max())),
            retry_intervals: retry
                .map(|retry| retry.intervals_secs().to_vec())
                .unwrap_or_default(),
            retry_at_front: retry.is_some_and(Retry::is_at_front),
            repeats_left: repeat.map_or(0, |repeat| u64::from(repeat.times())),
            repeat_intervals: repeat
                .map(|repeat| repeat.intervals_secs().to_vec())
                .unwrap_or_default(),
            on_success: options.on_success.clone(),
            on_failure: options.on_failure.clone(),
            on_stopped: options.on_stopped.clone(),
            dependency_ids: dependency
                .map(|dependency| dependency.jobs.clone())
                .unwrap_or_default(),
            allow_dependency_failures: dependency
                .is_some_and(|dependency| dependency.allow_failure),
            enqueue_at_front: dependency.is_some_and(|dependency| dependency.enqueue_at_front)
                || (options.scheduled_at.is_some() && options.at_front),
            webhooks: options.webhooks.clone(),
            rate_limit: options.rate_limit.clone(),
        }
    }
}

impl Job {
    /// A handle on the job that `record` describes.
    pub(crate) fn new(conn: &Connection, record: JobRecord) -> Self {
        Job {
            conn: conn.clone(),
            record,
        }
    }

    /// The job as stored when it was read.
    pub(crate) fn record(&self) -> &JobRecord {
        &self.record
    }

    /// Reads the job with this id.
    ///
    /// # Errors
    /// [`Error::NoSuchJob`] if it does not exist (never created, deleted, or expired);
    /// [`Error::MalformedJob`] if its hash is not a job; a backend error.
    pub async fn fetch(conn: &Connection, id: &JobId) -> Result<Job> {
        let record = conn.backend().fetch_job(id).await?;
        record
            .map(|record| Job::new(conn, record))
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
        let records = conn.backend().fetch_jobs(ids).await?;
        Ok(records
            .into_iter()
            .map(|record| record.map(|record| Job::new(conn, record)))
            .collect())
    }

    /// Reads the job again, so that status, meta and timestamps are current.
    ///
    /// # Errors
    /// As [`Job::fetch`].
    pub async fn refresh(&mut self) -> Result<()> {
        *self = Job::fetch(&self.conn, &self.record.id).await?;
        Ok(())
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.record.id
    }

    /// The function the job calls (empty when the job's data cannot be decoded).
    pub fn func_name(&self) -> &str {
        self.record.call.as_ref().map_or("", |call| &call.func_name)
    }

    /// The positional arguments.
    pub fn args(&self) -> &[Value] {
        self.record.call.as_ref().map_or(&[], |call| &call.args)
    }

    /// The keyword arguments.
    pub fn kwargs(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.record
            .call
            .as_ref()
            .map_or_else(|_| EMPTY.get_or_init(Map::new), |call| &call.kwargs)
    }

    /// Why the job's `data` cannot be decoded, if it cannot (a pickled job, bad JSON...).
    pub fn data_error(&self) -> Option<&str> {
        self.record.call.as_ref().err().map(String::as_str)
    }

    /// The status as last read.
    pub fn status(&self) -> JobStatus {
        self.record.status
    }

    /// The name of the queue the job was enqueued on.
    pub fn origin(&self) -> &str {
        &self.record.origin
    }

    /// The description (RQ's default is the call as Python would write it).
    pub fn description(&self) -> Option<&str> {
        self.record.description.as_deref()
    }

    /// When the job was created.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.record.created_at
    }

    /// When the job was last put on a queue.
    pub fn enqueued_at(&self) -> Option<DateTime<Utc>> {
        self.record.enqueued_at
    }

    /// When the job last started.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.record.started_at
    }

    /// When the job last ended.
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.record.ended_at
    }

    /// The last heartbeat of the worker that runs or ran the job.
    pub fn last_heartbeat(&self) -> Option<DateTime<Utc>> {
        self.record.last_heartbeat
    }

    /// The name of the worker that runs or ran the job.
    pub fn worker_name(&self) -> Option<&str> {
        self.record.worker_name.as_deref()
    }

    /// How long the job may run (`None`: the worker's default).
    pub fn timeout(&self) -> Option<Timeout> {
        self.record.timeout
    }

    /// How long a result is kept (`None`: the worker's default, 500 s).
    pub fn result_ttl(&self) -> Option<Ttl> {
        self.record.result_ttl
    }

    /// How long a failed job is kept (`None`: one year).
    pub fn failure_ttl(&self) -> Option<Ttl> {
        self.record.failure_ttl
    }

    /// How long the job may wait on its queue before it is dropped (`None`: no limit).
    pub fn ttl(&self) -> Option<Duration> {
        self.record.ttl
    }

    /// How many more times the job runs after a failure.
    pub fn retries_left(&self) -> u64 {
        self.record.lifecycle.retries_left
    }

    /// How many more times the job runs after a success.
    pub fn repeats_left(&self) -> u64 {
        self.record.lifecycle.repeats_left
    }

    /// The jobs this one waits for.
    pub fn dependency_ids(&self) -> &[JobId] {
        &self.record.lifecycle.dependency_ids
    }

    /// The concurrency limit the job shares with the other jobs of its key (RQ 3.0's
    /// `rate_limit`).
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        self.record.lifecycle.rate_limit.as_ref()
    }

    /// The name of the group the job was enqueued in (see [`Group`](crate::Group)).
    pub fn group_id(&self) -> Option<&str> {
        self.record.group_id.as_deref()
    }

    /// Where the job is on its queue (0 is the head, the next to run), or `None` when it is not
    /// on it: not queued, or taken by a worker already (RQ's `get_position`).
    ///
    /// # Errors
    /// A backend error.
    pub async fn position(&self) -> Result<Option<usize>> {
        if self.record.origin.is_empty() {
            return Ok(None);
        }
        self.conn
            .backend()
            .queue_position(&self.record.origin, &self.record.id)
            .await
    }

    /// The job's free-form metadata.
    pub fn meta(&self) -> &Map<String, Value> {
        &self.record.meta
    }

    /// The metadata, to change before [`Job::save_meta`].
    pub fn meta_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.record.meta
    }

    /// Writes [`Job::meta`] to the backend, replacing what is stored.
    ///
    /// # Errors
    /// A backend error.
    pub async fn save_meta(&self) -> Result<()> {
        self.conn
            .backend()
            .save_meta(&self.record.id, &self.record.meta)
            .await
    }

    /// The latest result of the job (success or failure), if any is kept.
    ///
    /// # Errors
    /// A backend error, or a result entry that cannot be read.
    pub async fn latest_result(&self) -> Result<Option<JobResult>> {
        self.conn.backend().latest_result(&self.record.id).await
    }

    /// Every result kept for the job, newest first (RQ's `results()`): one per run that
    /// ended, as RQ keeps them (about the last ten).
    ///
    /// # Errors
    /// A backend error, or a result entry that cannot be read.
    pub async fn results(&self) -> Result<Vec<JobResult>> {
        self.conn.backend().results(&self.record.id).await
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
            _ => self
                .record
                .legacy_exc_info
                .clone()
                .filter(|text| !text.is_empty()),
        })
    }
}

//! The options of an enqueue, and the builder that sends it.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use chrono::{DateTime, Utc};

use super::{Call, Job, JobId, Lifecycle};
use crate::error::{Error, Result};
use crate::{Queue, Retry};

/// The options RQ's `enqueue` takes, with RQ's names and meanings.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct EnqueueOptions {
    /// The job's id; a random UUID when `None`.
    pub job_id: Option<JobId>,
    /// Seconds the job may wait on its queue before it is dropped.
    pub ttl: Option<i64>,
    /// Seconds a success is kept: `0` not at all, `-1` forever; the worker's default (500) if
    /// `None`.
    pub result_ttl: Option<i64>,
    /// Seconds a failure is kept; one year if `None`.
    pub failure_ttl: Option<i64>,
    /// Seconds the job may run (`-1`: no limit); RQ's default (180) if `None`.
    pub timeout: Option<i64>,
    /// A description; the call written as Python would write it if `None`.
    pub description: Option<String>,
    /// Initial metadata.
    pub meta: Map<String, Value>,
    /// Put the job at the head of the queue instead of the tail.
    pub at_front: bool,
    /// Jobs that must end first (RQ's `depends_on` / `Dependency`).
    pub depends_on: Option<Dependency>,
    /// When to enqueue the job (RQ's `enqueue_at`); at once if `None`.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Refuse the enqueue if a job with this id exists (RQ's `unique=True`; needs `job_id`).
    pub unique: bool,
    /// Runs again after failures.
    pub retry: Option<Retry>,
    /// Runs again after successes (RQ's `Repeat`).
    pub repeat: Option<Repeat>,
    /// Called after a success.
    pub on_success: Option<Callback>,
    /// Called after a failure.
    pub on_failure: Option<Callback>,
    /// Called after the job is stopped.
    pub on_stopped: Option<Callback>,
    /// HTTP requests sent when the job finishes or fails (RQ 2.10's `webhooks`).
    pub webhooks: Vec<Webhook>,
}

/// An HTTP request a worker sends when a job reaches a final state (RQ 2.10's `Webhook`): a
/// GET, or a POST of `{"job_id", "func_name", "status", "enqueued_at", "ended_at"}` (and
/// `"exc_info"` for a failure). Errors are logged, never raised: an endpoint that is down cannot
/// fail the job.
///
/// # Examples
/// ```
/// use rqrs::{Webhook, WebhookStatus};
///
/// let hook = Webhook::new("https://example.com/jobs", WebhookStatus::Failed)
///     .post()
///     .header("Authorization", "Bearer token")
///     .timeout(5);
/// assert_eq!(hook.url(), "https://example.com/jobs");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    url: String,
    job_status: WebhookStatus,
    #[serde(default = "Webhook::default_method")]
    method: String,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default = "Webhook::default_timeout")]
    timeout: u64,
}

/// When a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// After a success.
    Finished,
    /// After a failure (a stopped job included, as in RQ).
    Failed,
}

impl Webhook {
    /// A GET of `url` (http:// or https://) when the job reaches `status`, with RQ's 10 s timeout.
    pub fn new(url: impl Into<String>, status: WebhookStatus) -> Self {
        Webhook {
            url: url.into(),
            job_status: status,
            method: Self::default_method(),
            headers: None,
            timeout: Self::default_timeout(),
        }
    }

    fn default_method() -> String {
        "GET".to_owned()
    }

    fn default_timeout() -> u64 {
        10
    }

    /// POST the job's summary as JSON instead of a bare GET.
    pub fn post(mut self) -> Self {
        self.method = "POST".to_owned();
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .insert(name.into(), value.into());
        self
    }

    /// Seconds the request may take.
    pub fn timeout(mut self, seconds: u64) -> Self {
        self.timeout = seconds;
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// When it is sent.
    pub fn status(&self) -> WebhookStatus {
        self.job_status
    }

    /// Whether it is a POST (else a GET).
    pub fn is_post(&self) -> bool {
        self.method.eq_ignore_ascii_case("POST")
    }

    /// The extra request headers.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .flatten()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The timeout in seconds.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::invalid(
                "webhook",
                format!("{:?} is not an http:// or https:// URL", self.url),
            ));
        }
        if !(self.method.eq_ignore_ascii_case("GET") || self.is_post()) || self.timeout == 0 {
            return Err(Error::invalid(
                "webhook",
                "the method is GET or POST and the timeout positive",
            ));
        }
        Ok(())
    }
}

/// What a job waits for before it is enqueued (RQ's `Dependency`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dependency {
    /// The jobs that must end first.
    pub jobs: Vec<JobId>,
    /// Enqueue the job even when one of them failed.
    pub allow_failure: bool,
    /// Put the job at the head of its queue once they have ended.
    pub enqueue_at_front: bool,
}

impl Dependency {
    /// Waits for `jobs` to finish.
    pub fn new(jobs: impl IntoIterator<Item = JobId>) -> Self {
        Dependency {
            jobs: jobs.into_iter().collect(),
            allow_failure: false,
            enqueue_at_front: false,
        }
    }

    /// Also go ahead when a dependency failed.
    pub fn allow_failure(mut self, allow: bool) -> Self {
        self.allow_failure = allow;
        self
    }

    /// Go to the head of the queue once released.
    pub fn enqueue_at_front(mut self, at_front: bool) -> Self {
        self.enqueue_at_front = at_front;
        self
    }
}

/// A function called when a job ends, named as registered in the worker's functions (RQ's
/// `Callback`, which stores only the name and a timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    name: String,
    timeout: i64,
}

impl Callback {
    /// RQ's default callback timeout in seconds.
    pub const DEFAULT_TIMEOUT: i64 = 60;

    /// Calls the function registered as `name`, with RQ's default timeout (60 s).
    pub fn new(name: impl Into<String>) -> Self {
        Callback {
            name: name.into(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// How long the callback may run, in seconds.
    pub fn timeout(mut self, seconds: i64) -> Self {
        self.timeout = seconds;
        self
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The timeout in seconds.
    pub fn timeout_secs(&self) -> i64 {
        self.timeout
    }
}

/// Runs a job again after it succeeds (RQ 2.3's `Repeat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    times: u32,
    intervals: Vec<u64>,
}

impl Repeat {
    /// `times` more runs, each at once.
    pub fn new(times: u32) -> Self {
        Repeat {
            times,
            intervals: vec![0],
        }
    }

    /// Seconds between runs (a list: one per run; see RQ's indexing in the worker).
    pub fn intervals(mut self, seconds: impl IntoIterator<Item = u64>) -> Self {
        self.intervals = crate::retry::interval_list(seconds);
        self
    }

    /// The number of repeats.
    pub fn times(&self) -> u32 {
        self.times
    }

    /// The intervals in seconds.
    pub fn intervals_secs(&self) -> &[u64] {
        &self.intervals
    }
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
            webhooks: options.webhooks.clone(),
        }
    }
}

impl EnqueueOptions {
    /// Checks the values as RQ does: `ttl` and `timeout` are positive or `-1`.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(ttl) = self.ttl
            && ttl <= 0
            && ttl != -1
        {
            return Err(Error::invalid(
                "ttl",
                format!("{ttl}: give a positive number of seconds or -1"),
            ));
        }
        if let Some(timeout) = self.timeout
            && timeout <= 0
            && timeout != -1
        {
            return Err(Error::invalid(
                "timeout",
                format!("{timeout}: give a positive number of seconds, or -1 for none"),
            ));
        }
        for (what, seconds) in [
            ("ttl", self.ttl),
            ("result_ttl", self.result_ttl),
            ("failure_ttl", self.failure_ttl),
        ] {
            if seconds.is_some_and(|seconds| seconds > crate::backend::redis::MAX_TTL) {
                return Err(Error::invalid(
                    what,
                    format!(
                        "at most 100 years ({} seconds)",
                        crate::backend::redis::MAX_TTL
                    ),
                ));
            }
        }
        if let Some(retry) = &self.retry {
            retry.validate()?;
        }
        for webhook in &self.webhooks {
            webhook.validate()?;
        }
        if self.repeat.as_ref().is_some_and(|repeat| repeat.times == 0) {
            return Err(Error::invalid("repeat", "times must be 1 or more"));
        }
        if self.unique && self.job_id.is_none() {
            return Err(Error::invalid("unique", "a unique job needs a job_id"));
        }
        if self.unique && self.depends_on.is_some() {
            return Err(Error::invalid(
                "unique",
                "a unique job cannot have dependencies (as in RQ)",
            ));
        }
        for (what, ttl) in [
            ("result_ttl", self.result_ttl),
            ("failure_ttl", self.failure_ttl),
        ] {
            if let Some(ttl) = ttl
                && ttl < -1
            {
                return Err(Error::invalid(
                    what,
                    format!("{ttl}: give 0 or more seconds, or -1"),
                ));
            }
        }
        Ok(())
    }
}

/// An enqueue being built: set options, then [`send`](Enqueue::send) it.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use std::time::Duration;
/// use rqrs::Queue;
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let queue = Queue::new(&conn, "default");
/// let job = queue
///     .enqueue("tasks.add", (1, 2))
///     .ttl(Duration::from_secs(60))
///     .result_ttl(600)
///     .send()
///     .await?;
/// println!("enqueued {}", job.id());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an enqueue does nothing until it is sent"]
pub struct Enqueue<'q> {
    queue: &'q Queue,
    call: Result<Call>,
    options: EnqueueOptions,
}

impl<'q> Enqueue<'q> {
    pub(crate) fn new(queue: &'q Queue, func_name: &str, args: Result<Vec<Value>>) -> Self {
        let call = args.map(|args| Call {
            func_name: func_name.to_owned(),
            args,
            kwargs: Map::new(),
        });
        Enqueue {
            queue,
            call,
            options: EnqueueOptions::default(),
        }
    }

    /// Keyword arguments: any value that serializes to a JSON object.
    pub fn kwargs(mut self, kwargs: impl Serialize) -> Self {
        self.call = self.call.and_then(|mut call| {
            match serde_json::to_value(kwargs)? {
                Value::Object(map) => call.kwargs = map,
                Value::Null => call.kwargs.clear(),
                other => {
                    return Err(Error::invalid(
                        "kwargs",
                        format!("{other} is not a JSON object"),
                    ));
                }
            }
            Ok(call)
        });
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: EnqueueOptions) -> Self {
        self.options = options;
        self
    }

    /// The job's id, instead of a random one.
    pub fn job_id(mut self, id: JobId) -> Self {
        self.options.job_id = Some(id);
        self
    }

    /// How long the job may wait on its queue; it is dropped if it has not started by then.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = Some(whole_seconds(ttl));
        self
    }

    /// Seconds a success is kept: `0` not at all (the job is deleted), `-1` forever.
    pub fn result_ttl(mut self, seconds: i64) -> Self {
        self.options.result_ttl = Some(seconds);
        self
    }

    /// Seconds a failure is kept, `-1` forever.
    pub fn failure_ttl(mut self, seconds: i64) -> Self {
        self.options.failure_ttl = Some(seconds);
        self
    }

    /// How long the job may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(whole_seconds(timeout));
        self
    }

    /// No limit on how long the job may run (RQ's `job_timeout=-1`).
    pub fn no_timeout(mut self) -> Self {
        self.options.timeout = Some(-1);
        self
    }

    /// A description, shown by `rq info` and dashboards.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.options.description = Some(description.into());
        self
    }

    /// Initial metadata: any value that serializes to a JSON object.
    pub fn meta(mut self, meta: impl Serialize) -> Self {
        match serde_json::to_value(meta) {
            Ok(Value::Object(map)) => self.options.meta = map,
            Ok(other) => {
                self.call = Err(Error::invalid(
                    "meta",
                    format!("{other} is not a JSON object"),
                ));
            }
            Err(error) => self.call = Err(error.into()),
        }
        self
    }

    /// Put the job at the head of the queue.
    pub fn at_front(mut self, at_front: bool) -> Self {
        self.options.at_front = at_front;
        self
    }

    /// Wait for other jobs first: the job is deferred until they have finished.
    pub fn depends_on(mut self, dependency: Dependency) -> Self {
        self.options.depends_on = Some(dependency);
        self
    }

    /// Enqueue at `time` instead of now (RQ's `enqueue_at`; a scheduler must run).
    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.options.scheduled_at = Some(time);
        self
    }

    /// Enqueue after `delay` instead of now (RQ's `enqueue_in`; a scheduler must run).
    pub fn delay(self, delay: Duration) -> Self {
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let time = Utc::now()
            .checked_add_signed(delay)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.at(time)
    }

    /// Refuse the enqueue if a job with this id exists, instead of overwriting it.
    pub fn unique(mut self, unique: bool) -> Self {
        self.options.unique = unique;
        self
    }

    /// Run again after a failure.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.options.retry = Some(retry);
        self
    }

    /// Run again after a success.
    pub fn repeat(mut self, repeat: Repeat) -> Self {
        self.options.repeat = Some(repeat);
        self
    }

    /// Call a registered function after a success.
    pub fn on_success(mut self, callback: Callback) -> Self {
        self.options.on_success = Some(callback);
        self
    }

    /// Call a registered function after a failure.
    pub fn on_failure(mut self, callback: Callback) -> Self {
        self.options.on_failure = Some(callback);
        self
    }

    /// Send an HTTP request when the job finishes or fails.
    pub fn webhook(mut self, webhook: Webhook) -> Self {
        self.options.webhooks.push(webhook);
        self
    }

    /// Call a registered function after the job is stopped.
    pub fn on_stopped(mut self, callback: Callback) -> Self {
        self.options.on_stopped = Some(callback);
        self
    }

    /// Enqueues the job in one atomic step and returns it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an option or argument RQ would refuse; a backend error.
    pub async fn send(self) -> Result<Job> {
        let (queue, call, options) = self.into_parts()?;
        queue.enqueue_call(call, options).await
    }

    /// The queue, the call and its checked options.
    pub(crate) fn into_parts(self) -> Result<(&'q Queue, Call, EnqueueOptions)> {
        let call = self.call?;
        self.options.validate()?;
        Ok((self.queue, call, self.options))
    }
}

/// Seconds, rounded up so that a sub-second duration never becomes 0 ("no time at all").
fn whole_seconds(duration: Duration) -> i64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

//! The builder of an enqueue: a call, its options, and the step that sends it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Call, Callback, Dependency, EnqueueOptions, Job, JobId, Webhook};
use crate::error::{Error, Result};
use crate::retry::{Repeat, Retry};
use crate::ttl::{Timeout, Ttl};
use crate::{Queue, RateLimit};

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
///     .result_ttl(Duration::from_secs(600))
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
        self.options.ttl = Some(ttl);
        self
    }

    /// How long a success is kept: a duration, [`Ttl::NOT_KEPT`] (the job is deleted when it
    /// finishes) or [`Ttl::FOREVER`].
    pub fn result_ttl(mut self, ttl: impl Into<Ttl>) -> Self {
        self.options.result_ttl = Some(ttl.into());
        self
    }

    /// How long a failure is kept: a duration, [`Ttl::NOT_KEPT`] or [`Ttl::FOREVER`].
    pub fn failure_ttl(mut self, ttl: impl Into<Ttl>) -> Self {
        self.options.failure_ttl = Some(ttl.into());
        self
    }

    /// How long the job may run: a duration, or [`Timeout::UNLIMITED`].
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.options.timeout = Some(timeout.into());
        self
    }

    /// No limit on how long the job may run (RQ's `job_timeout=-1`).
    pub fn no_timeout(self) -> Self {
        self.timeout(Timeout::UNLIMITED)
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

    /// Share a concurrency limit with the other jobs of its key (RQ 3.0's `rate_limit`): the
    /// job waits, status `rate_limited`, while the limit's jobs fill every slot (on Redis in RQ
    /// 3.0's keys, shared with its workers; on SQLite in the job rows).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.options.rate_limit = Some(limit);
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

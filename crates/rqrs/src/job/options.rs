//! The options of an enqueue, and the builder that sends it.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Call, Job, JobId};
use crate::Queue;
use crate::error::{Error, Result};

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

//! The options of an enqueue, with RQ's names and meanings, and the checks RQ makes on them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Callback, Dependency, JobId, Webhook};
use crate::RateLimit;
use crate::defaults::MAX_TTL;
use crate::error::{Error, Result};
use crate::retry::{Repeat, Retry};
use crate::ttl::{Timeout, Ttl};

/// The options RQ's `enqueue` takes, with RQ's names and meanings.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct EnqueueOptions {
    /// The job's id; a random UUID when `None`.
    pub job_id: Option<JobId>,
    /// How long the job may wait on its queue before it is dropped; no limit if `None`.
    pub ttl: Option<Duration>,
    /// How long a success is kept; the worker's default (500 s) if `None`.
    pub result_ttl: Option<Ttl>,
    /// How long a failure is kept; one year if `None`.
    pub failure_ttl: Option<Ttl>,
    /// How long the job may run; RQ's default (180 s) if `None`.
    pub timeout: Option<Timeout>,
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
    /// A concurrency limit shared with the other jobs of its key (RQ 3.0's `rate_limit`).
    pub rate_limit: Option<RateLimit>,
}

impl EnqueueOptions {
    /// Checks the values as RQ does: a `ttl` and a `timeout` are more than nothing; TTLs fit
    /// the store's range.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(limit) = &self.rate_limit {
            limit.validate()?;
        }
        if self.ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(Error::invalid(
                "ttl",
                "0: give a positive duration, or none for no limit",
            ));
        }
        if self.timeout == Some(Timeout::seconds(0)) {
            return Err(Error::invalid(
                "timeout",
                "0: give a positive duration, or Timeout::UNLIMITED for none",
            ));
        }
        let too_long = |duration: Option<Duration>| duration.is_some_and(|d| d > MAX_TTL);
        for (what, duration) in [
            ("ttl", self.ttl),
            ("result_ttl", self.result_ttl.and_then(Ttl::duration)),
            ("failure_ttl", self.failure_ttl.and_then(Ttl::duration)),
        ] {
            if too_long(duration) {
                return Err(Error::invalid(
                    what,
                    format!("at most 100 years ({} seconds)", MAX_TTL.as_secs()),
                ));
            }
        }
        if let Some(retry) = &self.retry {
            retry.validate()?;
        }
        if let Some(repeat) = &self.repeat {
            repeat.validate()?;
        }
        for webhook in &self.webhooks {
            webhook.validate()?;
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
        Ok(())
    }
}

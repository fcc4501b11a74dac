//! What a run's end becomes, decided here once for every backend: finished (and maybe repeated),
//! retried, or failed, with RQ's rules and words. A run ends either by its worker (the
//! function returned, failed, timed out or was stopped) or by maintenance, when its worker
//! stopped heartbeating ([`abandoned`]); both follow the job's retry settings.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::backend::types::{Failed, Finished, JobRecord, Retried};
use crate::error::JobErrorKind;
use crate::retry;
use crate::ttl::Ttl;

/// The error of a stopped job (RQ's words, which Python users may look for).
pub(super) const STOPPED: &str = "Job stopped by user, work-horse terminated.";

/// What to record for a run.
#[derive(Debug)]
pub(super) enum Outcome {
    Finish(Finished),
    Retry(Retried),
    Fail(Failed),
}

/// What a failed run becomes: a retry, or a failure.
#[derive(Debug)]
pub(super) enum Failure {
    Retry(Retried),
    Fail(Failed),
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Retry(retried) => Outcome::Retry(retried),
            Failure::Fail(failed) => Outcome::Fail(failed),
        }
    }
}

/// A run that returned `value` (and whose success callback, if any, passed): kept for the
/// job's `result_ttl` (else `default_result_ttl`), and run again if it repeats.
pub(super) fn success(job: &JobRecord, value: Value, default_result_ttl: Ttl) -> Outcome {
    let lifecycle = &job.lifecycle;
    Outcome::Finish(Finished {
        return_value: value,
        result_ttl: job.result_ttl.unwrap_or(default_result_ttl),
        repeat_in: (lifecycle.repeats_left > 0)
            .then(|| retry::repeat_interval(&lifecycle.repeat_intervals, lifecycle.repeats_left)),
    })
}

/// A run that failed with `exc_info`: retried while the job has retries left, unless the
/// function asked not to be (`Abort`); after the delay the function asked for, else after the
/// job's next interval, as RQ picks it.
pub(super) fn failure(job: &JobRecord, exc_info: String, kind: JobErrorKind) -> Failure {
    let lifecycle = &job.lifecycle;
    let delay = match kind {
        _ if lifecycle.retries_left == 0 => None,
        JobErrorKind::Abort => None,
        JobErrorKind::RetryAfter(delay) => Some(crate::ttl::whole_seconds(delay)),
        JobErrorKind::Fail => Some(retry::next_interval(
            &lifecycle.retry_intervals,
            lifecycle.retries_left,
        )),
    };
    match delay {
        Some(delay) => Failure::Retry(Retried {
            exc_info,
            delay,
            at_front: lifecycle.retry_at_front,
        }),
        None => Failure::Fail(Failed {
            exc_info,
            failure_ttl: job.failure_ttl,
            stopped: false,
        }),
    }
}

/// A run stopped by a command: it ends as `stopped`, never retried.
pub(super) fn stopped(job: &JobRecord, exc_info: String) -> Outcome {
    Outcome::Fail(Failed {
        exc_info,
        failure_ttl: job.failure_ttl,
        stopped: true,
    })
}

/// A run whose worker stopped heartbeating, found by maintenance at `now`: retried while the
/// job has retries left, else failed, in RQ's words (Python's maintenance treats its own
/// abandoned runs the same way). A job that is gone, or cannot be read, has no retries known:
/// it is failed, which ends its run.
pub(super) fn abandoned(job: Option<&JobRecord>, now: DateTime<Utc>) -> Failure {
    let at = now.to_rfc3339_opts(SecondsFormat::Micros, true);
    if let Some(lifecycle) = job
        .map(|job| &job.lifecycle)
        .filter(|lifecycle| lifecycle.retries_left > 0)
    {
        Failure::Retry(Retried {
            exc_info: format!(
                "AbandonedJobError: its worker stopped heartbeating; retried at {at}"
            ),
            delay: retry::next_interval(&lifecycle.retry_intervals, lifecycle.retries_left),
            at_front: lifecycle.retry_at_front,
        })
    } else {
        Failure::Fail(Failed {
            exc_info: format!("Moved to FailedJobRegistry, due to AbandonedJobError, at {at}"),
            failure_ttl: job.and_then(|job| job.failure_ttl),
            stopped: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;

    fn job(retries_left: u64, intervals: &[u64]) -> JobRecord {
        let mut job = JobRecord::unreadable(JobId::random(), "default", String::new());
        job.lifecycle.retries_left = retries_left;
        job.lifecycle.retry_intervals = intervals.to_vec();
        job
    }

    #[test]
    fn a_failure_is_retried_while_retries_are_left_unless_aborted() {
        let retried = failure(&job(2, &[10, 30]), "boom".into(), JobErrorKind::Fail);
        assert!(matches!(retried, Failure::Retry(Retried { delay: 10, .. })));
        let snoozed = failure(
            &job(2, &[10]),
            "later".into(),
            JobErrorKind::RetryAfter(std::time::Duration::from_millis(1500)),
        );
        assert!(matches!(snoozed, Failure::Retry(Retried { delay: 2, .. })));
        let aborted = failure(&job(2, &[10]), "no".into(), JobErrorKind::Abort);
        assert!(matches!(
            aborted,
            Failure::Fail(Failed { stopped: false, .. })
        ));
        let exhausted = failure(&job(0, &[10]), "done".into(), JobErrorKind::Fail);
        assert!(matches!(exhausted, Failure::Fail(_)));
    }

    #[test]
    fn an_abandoned_run_is_retried_or_failed_in_rqs_words() {
        let now = DateTime::from_timestamp(1_764_379_353, 966_393_000).unwrap_or_default();
        let Failure::Retry(retried) = abandoned(Some(&job(1, &[0])), now) else {
            panic!("retries are left");
        };
        assert_eq!(
            retried.exc_info,
            "AbandonedJobError: its worker stopped heartbeating; retried at \
             2025-11-29T01:22:33.966393Z"
        );
        let Failure::Fail(failed) = abandoned(Some(&job(0, &[])), now) else {
            panic!("no retries are left");
        };
        assert_eq!(
            failed.exc_info,
            "Moved to FailedJobRegistry, due to AbandonedJobError, at 2025-11-29T01:22:33.966393Z"
        );
        assert!(
            matches!(abandoned(None, now), Failure::Fail(_)),
            "a job that is gone"
        );
    }
}

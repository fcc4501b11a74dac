//! The pipe between a worker and its work horses: one JSON line each way per call. The worker
//! opens with a [`Hello`] (where the backend is, for whom the horse works), then sends a
//! [`Request`] per call and reads a [`Reply`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{JobError, JobErrorKind};

/// Set in a work horse's environment to the worker's pid. A process is a horse only if its
/// parent is that pid, so a program that a job starts (and that inherits the variable) is not.
pub(super) const HORSE_ENV: &str = "RQRS_WORK_HORSE";
/// The first line a horse reads: where its jobs' backend is, and for whom it works.
#[derive(Serialize, Deserialize)]
pub(super) struct Hello {
    pub(super) url: String,
    /// The PEM roots of a TLS connection made with `connect_tls`.
    pub(super) root_ca: Option<Vec<u8>>,
    /// The worker's Redis key prefix.
    pub(super) key_prefix: Option<String>,
    pub(super) worker_name: String,
}

/// One call: the job's context, and the function to call with its arguments (the job's own,
/// or a callback's).
#[derive(Serialize, Deserialize)]
pub(super) struct Request {
    pub(super) job_id: String,
    pub(super) origin: String,
    pub(super) execution_id: String,
    pub(super) job_args: Vec<Value>,
    pub(super) job_kwargs: Map<String, Value>,
    pub(super) meta: Map<String, Value>,
    pub(super) func_name: String,
    pub(super) args: Vec<Value>,
    pub(super) kwargs: Map<String, Value>,
}

/// A call's outcome, and the job's meta as the call left it.
#[derive(Serialize, Deserialize)]
pub(super) struct Reply {
    pub(super) outcome: Returned,
    pub(super) meta: Map<String, Value>,
}

/// A [`JobError`] crosses the pipe as its `exc_info` text and its kind.
#[derive(Serialize, Deserialize)]
pub(super) enum Returned {
    Return(Value),
    Fail(String),
    Abort(String),
    RetryAfter(String, Duration),
}

impl Returned {
    pub(super) fn new(outcome: Result<Value, JobError>) -> Self {
        match outcome {
            Ok(value) => Returned::Return(value),
            Err(error) => match error.kind() {
                JobErrorKind::Fail => Returned::Fail(error.to_exc_info()),
                JobErrorKind::Abort => Returned::Abort(error.to_exc_info()),
                JobErrorKind::RetryAfter(delay) => Returned::RetryAfter(error.to_exc_info(), delay),
            },
        }
    }

    pub(super) fn into_result(self) -> Result<Value, JobError> {
        match self {
            Returned::Return(value) => Ok(value),
            Returned::Fail(text) => Err(JobError::new(text)),
            Returned::Abort(text) => Err(JobError::abort(text)),
            Returned::RetryAfter(text, delay) => Err(JobError::retry_after(text, delay)),
        }
    }
}

pub(super) fn json_line<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// Whether a worker started this process as its work horse.
pub(crate) fn is_horse() -> bool {
    std::env::var(HORSE_ENV)
        .ok()
        .and_then(|parent| parent.parse::<u32>().ok())
        .is_some_and(|parent| parent == std::os::unix::process::parent_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_the_pipe_with_their_kind() {
        let cases = [
            JobError::new("boom"),
            JobError::abort("no retry"),
            JobError::retry_after("later", Duration::from_millis(1500)),
        ];
        for error in cases {
            let (text, kind) = (error.to_exc_info(), error.kind());
            let line = json_line(&Returned::new(Err(error))).unwrap();
            let outcome: Returned = serde_json::from_slice(&line).unwrap();
            let back = outcome.into_result().unwrap_err();
            assert_eq!((back.to_exc_info(), back.kind()), (text, kind));
        }
        let line = json_line(&Returned::new(Ok(serde_json::json!({"a": [1, 2.5]})))).unwrap();
        let outcome: Returned = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            outcome.into_result().unwrap(),
            serde_json::json!({"a": [1, 2.5]})
        );
    }
}

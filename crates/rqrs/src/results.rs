//! The results of a job's runs, kept in the stream `rq:results:<id>` as RQ 2.x keeps them
//! (up to about ten entries; the newest is the job's outcome).

use chrono::{DateTime, Utc};
use serde_json::Value;

/// What kind of outcome a result records (RQ's `Result.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResultType {
    /// The function returned a value.
    Successful,
    /// The function failed, or the job was stopped or abandoned.
    Failed,
    /// The job was stopped (RQ defines it but writes `Failed` for stopped jobs).
    Stopped,
    /// The run failed and the job was retried.
    Retried,
    /// The job asked for a retry once more than allowed.
    MaxRetriesExceeded,
}

impl ResultType {
    /// RQ's number for the type, as stored in the stream's `type` field.
    pub fn code(self) -> u8 {
        match self {
            ResultType::Successful => 1,
            ResultType::Failed => 2,
            ResultType::Stopped => 3,
            ResultType::Retried => 4,
            ResultType::MaxRetriesExceeded => 5,
        }
    }

    /// The type of an RQ type number.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => ResultType::Successful,
            2 => ResultType::Failed,
            3 => ResultType::Stopped,
            4 => ResultType::Retried,
            5 => ResultType::MaxRetriesExceeded,
            _ => return None,
        })
    }
}

/// One recorded outcome of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    pub(crate) result_type: ResultType,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) return_value: Option<Value>,
    pub(crate) exc_string: Option<String>,
    pub(crate) worker_name: Option<String>,
    pub(crate) execution_id: Option<String>,
}

impl JobResult {
    /// Success, failure, ...
    pub fn result_type(&self) -> ResultType {
        self.result_type
    }

    /// When the result was recorded (from the stream entry's id).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }

    /// The return value of a success (`None` when the function returned nothing).
    pub fn return_value(&self) -> Option<&Value> {
        self.return_value.as_ref()
    }

    /// The error text of a failure.
    pub fn exc_string(&self) -> Option<&str> {
        self.exc_string.as_deref()
    }

    /// The worker that recorded the result (`None` for abandoned-job cleanup).
    pub fn worker_name(&self) -> Option<&str> {
        self.worker_name.as_deref()
    }

    /// The execution the result belongs to.
    pub fn execution_id(&self) -> Option<&str> {
        self.execution_id.as_deref()
    }
}

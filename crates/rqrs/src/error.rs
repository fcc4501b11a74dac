//! Errors: [`Error`] for the library's callers, [`JobError`] for what a job function returns.

use std::fmt;
use std::time::Duration;

use crate::job::JobId;

/// An error from an rqrs operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend could not be reached, or refused an operation.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// No job with this id exists (never created, deleted, or expired by its TTL).
    #[error("no such job: {0}")]
    NoSuchJob(JobId),
    /// The job exists but its data cannot be read.
    #[error("job {id} cannot be read: {reason}")]
    MalformedJob {
        /// The job's id.
        id: JobId,
        /// What is wrong with it.
        reason: String,
    },
    /// A job id, queue name, URL or option value is not acceptable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was given (e.g. "job id").
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The job is not in the registry the operation needs it in.
    #[error("job {id} is not in the {registry} registry")]
    NotInRegistry {
        /// The job's id.
        id: JobId,
        /// The registry's name (e.g. "failed").
        registry: &'static str,
    },
    /// A unique job was enqueued with the id of a job that exists.
    #[error("a job with id {0} exists already (unique enqueue)")]
    DuplicateJob(JobId),
    /// The job cannot be canceled: it was canceled already (RQ's `InvalidJobOperation`).
    #[error("job {0} is canceled already")]
    AlreadyCanceled(JobId),
    /// No group with this name exists (never made, or all its jobs are gone).
    #[error("no such group: {0}")]
    NoSuchGroup(String),
    /// A worker with this name is alive already.
    #[error("there is an active worker named {0} already")]
    WorkerExists(String),
    /// An enqueue that was to wait for replicas
    /// ([`Queue::wait_for_replicas`](crate::Queue::wait_for_replicas)) was not acknowledged by
    /// enough of them in time. The jobs are on the master, but a failover now could lose them.
    #[error(
        "{} job(s) enqueued on the master, but acknowledged by {acknowledged} of {replicas} \
         replicas in time: a failover now could lose them",
        jobs.len()
    )]
    NotReplicated {
        /// The jobs enqueued.
        jobs: Vec<JobId>,
        /// How many replicas acknowledged them.
        acknowledged: usize,
        /// How many were asked for.
        replicas: usize,
    },
    /// A value could not be encoded as JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Whether the error is a lost or refused connection to the backend, which a retry may cure
    /// (see [`BackendError::is_connection`]).
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Backend(error) if error.is_connection())
    }

    /// Whether the backend did not answer in time (see [`BackendError::is_timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Backend(error) if error.is_timeout())
    }

    /// Whether the error says that the job does not exist.
    pub fn is_no_such_job(&self) -> bool {
        matches!(self, Error::NoSuchJob(_))
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// An error of the backend: the store could not be reached, or refused an operation. It says
/// which backend (`redis: ...`) and what went wrong; [`is_connection`](Self::is_connection)
/// tells whether trying again later may cure it.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// match rqrs::Queue::new(&conn, "default").count().await {
///     Ok(count) => println!("{count} jobs waiting"),
///     Err(rqrs::Error::Backend(error)) if error.is_connection() => println!("down: {error}"),
///     Err(error) => return Err(error),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BackendError {
    backend: &'static str,
    kind: BackendErrorKind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What kind of failure a [`BackendError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackendErrorKind {
    /// The connection was refused or lost, or the server cannot serve now (loading its data,
    /// demoted to a replica by a failover).
    Connection,
    /// No answer in time.
    Timeout,
    /// The backend refused the operation.
    Refused,
}

impl BackendError {
    /// An error of `backend` (its name, as in URLs: `redis`).
    pub(crate) fn new(
        backend: &'static str,
        kind: BackendErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError {
            backend,
            kind,
            source: source.into(),
        }
    }

    /// Whether the connection to the backend was refused or lost, or the backend cannot serve
    /// now (a server loading its data, or demoted to a replica by a failover): a retry may cure
    /// it. A timeout is one too.
    pub fn is_connection(&self) -> bool {
        matches!(
            self.kind,
            BackendErrorKind::Connection | BackendErrorKind::Timeout
        )
    }

    /// Whether the backend did not answer in time (for SQLite: the database stayed locked by
    /// another process for the whole busy timeout).
    pub fn is_timeout(&self) -> bool {
        self.kind == BackendErrorKind::Timeout
    }

    pub(crate) fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The backend's name, as in URLs (`redis`, `sqlite`).
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend, self.source)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// The result type of rqrs operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a job function returns when it fails.
///
/// Any error converts into a `JobError` with `?`; its message and its chain of causes end up
/// in the job's `exc_info`.
///
/// # Examples
/// ```
/// use rqrs::JobError;
///
/// fn parse(text: &str) -> Result<i64, JobError> {
///     let n: i64 = text.trim().parse()?;
///     if n < 0 {
///         return Err(JobError::new(format!("{n} is negative")));
///     }
///     Ok(n)
/// }
/// assert!(parse("x").is_err());
/// assert_eq!(parse(" 4").ok(), Some(4));
/// ```
#[derive(Debug)]
pub struct JobError {
    message: String,
    causes: Vec<String>,
    kind: JobErrorKind,
}

/// What the worker should do after a [`JobError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobErrorKind {
    /// Fail the job; retry it if its retry policy allows.
    Fail,
    /// Fail the job with no retry, whatever its retry policy.
    Abort,
    /// Run the job again after this delay.
    RetryAfter(Duration),
}

impl JobError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            causes: Vec::new(),
            kind: JobErrorKind::Fail,
        }
    }

    /// A failure that must not be retried.
    pub fn abort(message: impl Into<String>) -> Self {
        JobError {
            kind: JobErrorKind::Abort,
            ..JobError::new(message)
        }
    }

    /// A failure that asks to run the job again after `delay`.
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        JobError {
            kind: JobErrorKind::RetryAfter(delay),
            ..JobError::new(message)
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the worker should do next.
    pub fn kind(&self) -> JobErrorKind {
        self.kind
    }

    /// The message followed by its causes, one per line, as stored in `exc_info`.
    pub fn to_exc_info(&self) -> String {
        let mut text = if self.message.is_empty() {
            "the job failed with an empty message".to_owned()
        } else {
            self.message.clone()
        };
        for cause in &self.causes {
            text.push_str("\nCaused by: ");
            text.push_str(cause);
        }
        text
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(error: E) -> Self {
        let mut causes = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        JobError {
            message: error.to_string(),
            causes,
            kind: JobErrorKind::Fail,
        }
    }
}

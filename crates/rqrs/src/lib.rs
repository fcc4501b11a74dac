//! rqrs: background jobs for Rust in Python RQ's Redis format.
//!
//! Functions are registered by name and become jobs on named queues; workers run them; the
//! registries keep track. The Redis layout is Python RQ 2.12's with its JSON serializer, so
//! Python producers, workers and `rq info` work side by side with rqrs.
//!
//! ```no_run
//! use rqrs::{Functions, JobContext, JobError, Queue, Worker};
//!
//! async fn add(ctx: JobContext, (x, y): (i64, i64)) -> Result<i64, JobError> {
//!     ctx.set_meta("handled_by", "rqrs");
//!     ctx.save_meta().await?; // visible to anyone who fetches the job now
//!     Ok(x + y)
//! }
//!
//! # async fn example() -> rqrs::Result<()> {
//! let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
//! let queue = Queue::new(&conn, "default");
//! let job = queue
//!     .enqueue("tasks.add", (1, 2))
//!     .result_ttl(std::time::Duration::from_secs(600))
//!     .send()
//!     .await?;
//!
//! let functions = Functions::new().register("tasks.add", add);
//! Worker::builder(&conn).queues(["default"]).functions(functions).burst(true).build()?.work().await?;
//!
//! let job = rqrs::Job::fetch(&conn, job.id()).await?;
//! assert_eq!(job.return_value().await?, Some(3.into()));
//! # Ok(()) }
//! ```
//!
//! # Modules
//! - [`Job`], [`JobId`], [`JobStatus`], [`Enqueue`]: a job and the options it is enqueued with;
//!   cancel, delete, requeue.
//! - [`Queue`]: enqueue (now, at a time, after a delay), count, list, position, empty.
//! - [`Group`]: jobs enqueued together under one name.
//! - [`StartedJobRegistry`], [`FinishedJobRegistry`], [`FailedJobRegistry`]: jobs by state;
//!   requeue from failed.
//! - [`JobResult`]: the results of a job's runs.
//! - [`Functions`]: the function table (async and blocking functions, typed arguments).
//! - [`current_job`], [`JobContext`]: the running job, its meta.
//! - [`Worker`]: the worker (concurrency, burst, heartbeats, shutdown); [`Isolation`] and
//!   [`run_work_horse_if_child`]: jobs in work horses, killed at their timeout.
//! - [`suspend`], [`resume`], [`is_suspended`]: pause every worker (RQ's `rq suspend`).
//! - [`send_stop_job_command`], [`send_stop_execution_command`], [`send_shutdown_command`],
//!   [`send_kill_horse_command`]: control
//!   running workers, Python's and rqrs's.
//! - [`Scheduler`]: enqueues scheduled jobs when they are due; one per queue at a time.
//! - [`connect`], [`Connection`]: the backend (Redis, in RQ's layout).
//! - [`Error`], [`JobError`]: what can go wrong.

mod backend;
mod command;
mod context;
mod defaults;
mod error;
mod functions;
mod group;
mod job;
mod queue;
mod rate_limit;
mod registry;
mod results;
mod retry;
mod scheduler;
mod suspension;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod ttl;
mod worker;

pub use backend::{ConnectOptions, Connection, KEY_PREFIX_ENV, connect, connect_tls, redact_url};
pub use command::{
    send_kill_horse_command, send_shutdown_command, send_stop_execution_command,
    send_stop_job_command,
};
pub use context::{JobContext, current_job};
pub use defaults::{
    CALLBACK_TIMEOUT, DEFAULT_FAILURE_TTL, DEFAULT_JOB_TIMEOUT, DEFAULT_RESULT_TTL,
    DEFAULT_WORKER_TTL, WEBHOOK_TIMEOUT,
};
pub use error::{BackendError, Error, JobError, JobErrorKind, Result};
pub use functions::Functions;
pub use group::Group;
pub use job::{
    Callback, Dependency, Enqueue, EnqueueOptions, Job, JobId, JobStatus, Webhook, WebhookStatus,
};
pub use queue::Queue;
pub use rate_limit::RateLimit;
pub use registry::{
    CanceledJobRegistry, DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, RegistryKind,
    ScheduledJobRegistry, StartedJobRegistry,
};
pub use results::{JobResult, ResultType};
pub use retry::{Repeat, Retry};
pub use scheduler::{Scheduler, SchedulerBuilder};
pub use suspension::{is_suspended, resume, suspend};
pub use ttl::{Timeout, Ttl};
pub use worker::{
    DequeueStrategy, Isolation, ShutdownHandle, Worker, WorkerBuilder, WorkerInfo, WorkerState,
    run_work_horse_if_child,
};

//! Building a worker: its queues, functions and settings, checked once by `build`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::task::TaskTracker;

use super::{DequeueStrategy, Isolation, Shared, Stop, Worker};
use crate::Connection;
use crate::backend::types::Liveness;
use crate::defaults::{
    DEFAULT_JOB_TIMEOUT, DEFAULT_RESULT_TTL, DEFAULT_WORKER_TTL, WORKER_TTL_GRACE,
};
use crate::error::{Error, Result};
use crate::functions::Functions;
use crate::ttl::{Timeout, Ttl};

/// How many heartbeat intervals after its last heartbeat a run counts as abandoned: four
/// heartbeats may be lost in a row before a live run looks abandoned.
const DEADLINE_HEARTBEATS: u32 = 5;
/// How often a worker heartbeats when not told: with five intervals to the deadline and
/// maintenance every two seconds, a dead worker's runs are back on their queue within about
/// 12 s of its death (RQ: heartbeats every 30 s, deadline 90 s, maintenance every 600 s).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// Builds a [`Worker`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct WorkerBuilder {
    conn: Connection,
    queues: Vec<String>,
    functions: Functions,
    name: Option<String>,
    concurrency: usize,
    burst: bool,
    default_result_ttl: Ttl,
    worker_ttl: Duration,
    heartbeat_interval: Duration,
    handle_signals: bool,
    with_scheduler: bool,
    limits: Limits,
    default_job_timeout: Timeout,
    isolation: Isolation,
    max_memory_per_job: Option<u64>,
}

/// When a worker stops by itself, and how it orders its queues.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Limits {
    pub(super) max_jobs: Option<u64>,
    pub(super) max_idle_time: Option<Duration>,
    pub(super) dequeue_strategy: DequeueStrategy,
}

impl WorkerBuilder {
    /// The queues to listen on, highest priority first.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// The functions the worker can run.
    pub fn functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    /// The worker's name (default: a random hex string, as RQ's).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many jobs may run at once (default 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Return once the queues are empty and running jobs are done, instead of waiting for more.
    pub fn burst(mut self, burst: bool) -> Self {
        self.burst = burst;
        self
    }

    /// How long a success is kept when the job does not say (default 500 s; RQ's
    /// `--results-ttl`).
    pub fn default_result_ttl(mut self, ttl: impl Into<Ttl>) -> Self {
        self.default_result_ttl = ttl.into();
        self
    }

    /// How long the worker's registration outlives its last heartbeat, less 60 s (default
    /// 420 s, RQ's).
    pub fn worker_ttl(mut self, ttl: Duration) -> Self {
        self.worker_ttl = ttl;
        self
    }

    /// How often the worker and its running jobs are marked alive (default 2 s). A run counts
    /// as abandoned five intervals after its last heartbeat (10 s by default), and is
    /// recovered by the next maintenance of a live worker on its queue.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Stop on SIGINT/SIGTERM: warm on the first, cold on the second (default off; the CLI
    /// turns it on).
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
        self
    }

    /// Stop after starting this many jobs (RQ's `--max-jobs`).
    pub fn max_jobs(mut self, jobs: u64) -> Self {
        self.limits.max_jobs = Some(jobs);
        self
    }

    /// Stop after waiting this long without a job (RQ's `--max-idle-time`).
    pub fn max_idle_time(mut self, idle: Duration) -> Self {
        self.limits.max_idle_time = Some(idle);
        self
    }

    /// The order in which queues are looked at (RQ's `--dequeue-strategy`; default: priority).
    pub fn dequeue_strategy(mut self, strategy: DequeueStrategy) -> Self {
        self.limits.dequeue_strategy = strategy;
        self
    }

    /// How long a job may run when it does not say (RQ's `--job-timeout`; default 180 s;
    /// [`Timeout::UNLIMITED`] for no limit). Jobs enqueued by rqrs or Python always carry their
    /// own.
    pub fn default_job_timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.default_job_timeout = timeout.into();
        self
    }

    /// Also run a [`Scheduler`] for the worker's queues, which enqueues scheduled jobs (and
    /// retries and repeats with an interval) when they are due (default off; RQ's
    /// `--with-scheduler`). In burst mode it enqueues the jobs due at start, once, then the
    /// worker works until the queues are empty, as RQ's does.
    pub fn with_scheduler(mut self, with_scheduler: bool) -> Self {
        self.with_scheduler = with_scheduler;
        self
    }

    /// Where job functions run (default [`Isolation::InProcess`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Kill a work horse whose resident memory passes `bytes` while it runs a job, failing the
    /// job with `killed: memory cap (N bytes)` (Linux; needs [`Isolation::Process`]).
    pub fn max_memory_per_job(mut self, bytes: u64) -> Self {
        self.max_memory_per_job = Some(bytes);
        self
    }

    /// Checks the settings and builds the worker.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no queues, a concurrency of 0, a name RQ cannot use, a memory cap
    /// without process isolation, process isolation on a system other than Unix, or in a work
    /// horse whose binary did not call [`run_work_horse_if_child`].
    pub fn build(mut self) -> Result<Worker> {
        if self.queues.is_empty() {
            return Err(Error::invalid("worker", "give at least one queue"));
        }
        if self.concurrency == 0 {
            return Err(Error::invalid("concurrency", "it must be 1 or more"));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(Error::invalid(
                "heartbeat interval",
                "it must be more than 0",
            ));
        }
        let name = self
            .name
            .take()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Error::invalid("worker name", format!("{name:?}")));
        }
        // A binary that does not call run_work_horse_if_child would otherwise run a whole
        // worker in each horse, which would start horses of its own.
        #[cfg(unix)]
        if super::isolation::is_horse() {
            return Err(Error::invalid(
                "worker",
                "this process was started as a work horse: call \
                 rqrs::run_work_horse_if_child(&functions) first in main",
            ));
        }
        if self.max_memory_per_job.is_some() && self.isolation != Isolation::Process {
            return Err(Error::invalid(
                "max memory per job",
                "it needs process isolation",
            ));
        }
        if self.isolation == Isolation::Process
            && !crate::backend::Backend::is_shared(self.conn.backend())
        {
            return Err(Error::invalid(
                "isolation",
                "process isolation needs a store that work horses can open by its URL; an \
                 in-memory database is this process's alone: use a database file \
                 (sqlite:///path/to/jobs.db)",
            ));
        }
        #[cfg(unix)]
        let horses = (self.isolation == Isolation::Process)
            .then(|| super::isolation::Horses::new(&self.conn, &name, self.max_memory_per_job));
        #[cfg(not(unix))]
        if self.isolation == Isolation::Process {
            return Err(Error::invalid("isolation", "process isolation needs Unix"));
        }
        let (shutdown, _) = watch::channel(Stop::Running);
        let concurrency = self.concurrency;
        let burst = self.burst;
        let heartbeat_interval = self.heartbeat_interval;
        let handle_signals = self.handle_signals;
        let limits = self.limits;
        let with_scheduler = self.with_scheduler;
        #[cfg_attr(not(unix), expect(unused_mut, reason = "only Unix has work horses"))]
        let mut shared = self.into_shared(name);
        #[cfg(unix)]
        {
            shared.horses = horses;
        }
        Ok(Worker {
            concurrency,
            burst,
            heartbeat_interval,
            handle_signals,
            limits,
            with_scheduler,
            shutdown: Arc::new(shutdown),
            shared: Arc::new(shared),
        })
    }

    /// What the worker's tasks share, as these settings make it (with no work horses).
    pub(super) fn into_shared(self, name: String) -> Shared {
        // Whole seconds, at least one: the store keeps deadlines in seconds.
        let interval = Duration::from_secs(self.heartbeat_interval.as_secs().max(1));
        Shared {
            conn: self.conn,
            #[cfg(unix)]
            horses: None,
            name,
            queues: self.queues,
            functions: self.functions,
            default_result_ttl: self.default_result_ttl,
            default_job_timeout: self.default_job_timeout,
            liveness: Liveness {
                execution_ttl: interval * DEADLINE_HEARTBEATS,
                worker_ttl: self.worker_ttl + WORKER_TTL_GRACE,
            },
            running: Mutex::new(HashMap::new()),
            finished: Notify::new(),
            ended: AtomicU64::new(0),
            webhooks: TaskTracker::new(),
            inbox: Mutex::new(None),
        }
    }
}

impl Worker {
    /// A builder for a worker on `conn`.
    pub fn builder(conn: &Connection) -> WorkerBuilder {
        WorkerBuilder {
            conn: conn.clone(),
            queues: Vec::new(),
            functions: Functions::new(),
            name: None,
            concurrency: 1,
            burst: false,
            default_result_ttl: DEFAULT_RESULT_TTL,
            worker_ttl: DEFAULT_WORKER_TTL,
            heartbeat_interval: HEARTBEAT_INTERVAL,
            handle_signals: false,
            limits: Limits::default(),
            default_job_timeout: DEFAULT_JOB_TIMEOUT,
            with_scheduler: false,
            isolation: Isolation::InProcess,
            max_memory_per_job: None,
        }
    }
}

//! The worker: takes jobs from its queues in priority order and runs up to `concurrency` of
//! them at once.
//!
//! 1. Registers itself as RQ does (`rq:worker:<name>`, `rq:workers`, `rq:workers:<q>`), so
//!    `rq info` lists it.
//! 2. Loop: with `n` free slots, one atomic dequeue takes up to `n` jobs and starts them (each
//!    moves from its queue into the started registry with an execution and a deadline). When
//!    the queues are empty it waits on them without taking anything (see [`waiter`]), or, in
//!    burst mode, returns once running jobs are done and the queues are still empty.
//! 3. Each job runs in its own task ([`run`]); its outcome is recorded in one atomic step. A
//!    success goes to the dequeue loop, which records every success that came since its last
//!    call and takes the next jobs for the slots they free in one round trip. The function
//!    itself runs in the worker's process, or in a work horse under process isolation
//!    ([`isolation`]).
//! 4. A heartbeat task refreshes the worker and every running execution.
//! 5. With [`WorkerBuilder::with_scheduler`], a [`Scheduler`] for the worker's queues runs
//!    beside it (RQ's `--with-scheduler`); in burst mode it enqueues the due jobs once, at
//!    start.
//! 6. Shutdown: a warm stop takes no new job and waits for running ones; a cold stop puts
//!    running jobs back at the head of their queues and returns at once. The worker then
//!    unregisters itself.

mod builder;
mod control;
mod dispatch;
mod info;
#[cfg(unix)]
mod isolation;
mod liveness;
mod maintenance;
mod outcome;
mod run;
mod strategy;
mod waiter;
mod webhook;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

use builder::Limits;
pub use builder::WorkerBuilder;
pub use info::{WorkerInfo, WorkerState};
pub(crate) use maintenance::recover_abandoned;
pub use strategy::DequeueStrategy;

use crate::Connection;
use crate::backend::types::{
    Execution, JobRecord, Liveness, Placement, Started, new_execution_ids,
};
use crate::backend::{RunStore, WorkerStore};
use crate::error::Result;
use crate::functions::Functions;
use crate::scheduler::{self, Scheduler};
use crate::ttl::{Timeout, Ttl};

/// Where a worker runs its job functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isolation {
    /// In the worker's own process, many at once: the cheapest. An async job is cancelled at
    /// its timeout; a blocking one cannot be, so it runs on, detached, after its job failed. A
    /// job that crashes the process (an abort, a segfault) takes the worker down.
    #[default]
    InProcess,
    /// Each job in a work horse, a child process that re-executes the worker's binary (Unix
    /// only). The worker kills the horse's process group at the job's timeout, on stop-job and
    /// kill-horse commands and above [`max_memory_per_job`](WorkerBuilder::max_memory_per_job),
    /// so no job outlives them; a crash fails only its own job. Horses are kept for many jobs,
    /// up to one per slot of [`concurrency`](WorkerBuilder::concurrency).
    ///
    /// The binary must call [`run_work_horse_if_child`] at the top of `main` (`rqrs_cli::run`
    /// and `rqrs_cli::run_worker` do).
    Process,
}

/// Makes this process a work horse if a worker with [`Isolation::Process`] started it: serves
/// that worker's jobs with `functions` until the worker closes the pipe, then returns the exit
/// code for `main` to return. Returns `None`, doing nothing, in any other process.
///
/// A binary that runs a [`Worker`] with process isolation must call this first thing in
/// `main` (after setting up logging, if its jobs log), with the same functions as the worker:
/// the worker starts its horses by running its own binary again, with the same arguments and
/// an environment variable that marks them. A horse never forks the worker's async runtime; it
/// builds its own and opens its own connection to the worker's backend.
///
/// # Examples
/// ```no_run
/// use std::process::ExitCode;
/// use rqrs::{Functions, Isolation, JobContext, JobError, Worker};
///
/// fn resize(_ctx: JobContext, (path,): (String,)) -> Result<String, JobError> {
///     Ok(path) // may crash or hang: it runs in a work horse
/// }
///
/// fn main() -> ExitCode {
///     let functions = Functions::new().register_blocking("img.resize", resize);
///     if let Some(code) = rqrs::run_work_horse_if_child(&functions) {
///         return code;
///     }
///     let runtime = tokio::runtime::Runtime::new().expect("a runtime");
///     runtime.block_on(async {
///         let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
///         Worker::builder(&conn)
///             .queues(["default"])
///             .functions(functions)
///             .isolation(Isolation::Process)
///             .max_memory_per_job(1 << 30)
///             .build()?
///             .work()
///             .await
///     })
///     .map_or(ExitCode::FAILURE, |()| ExitCode::SUCCESS)
/// }
/// ```
pub fn run_work_horse_if_child(functions: &Functions) -> Option<ExitCode> {
    #[cfg(unix)]
    return isolation::run_if_child(functions);
    #[cfg(not(unix))]
    {
        let _ = functions;
        None
    }
}

/// Whether and how the worker is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stop {
    Running,
    /// Take no new job; finish the running ones.
    Warm,
    /// Put running jobs back on their queues and return now.
    Cold,
}

/// Asks a running worker to stop, from another task.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    sender: Arc<watch::Sender<Stop>>,
}

impl ShutdownHandle {
    /// Take no new job, finish the running ones, then return from [`Worker::work`].
    pub fn warm(&self) {
        self.sender
            .send_if_modified(|stop| escalate(stop, Stop::Warm));
    }

    /// Put the running jobs back at the head of their queues and return now.
    pub fn cold(&self) {
        self.sender
            .send_if_modified(|stop| escalate(stop, Stop::Cold));
    }
}

fn escalate(stop: &mut Stop, to: Stop) -> bool {
    let changed = *stop < to;
    *stop = (*stop).max(to);
    changed
}

/// A run in progress, and the way to interrupt it.
#[derive(Debug)]
struct Running {
    execution: Execution,
    interrupt: watch::Sender<Option<Interrupt>>,
}

/// Why a run is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    /// A stop-job command: the job ends as `stopped`.
    Stop,
    /// A kill-horse command: the job ends as failed (and may be retried).
    Kill,
}

/// What the worker's tasks share.
struct Shared {
    conn: Connection,
    /// The work horses, under process isolation.
    #[cfg(unix)]
    horses: Option<isolation::Horses>,
    name: String,
    queues: Vec<String>,
    functions: Functions,
    default_result_ttl: Ttl,
    default_job_timeout: Timeout,
    liveness: Liveness,
    /// Running executions by execution id, for heartbeats, commands and cold shutdown.
    running: Mutex<HashMap<String, Running>>,
    /// Signalled whenever a job ends.
    finished: Notify,
    /// How many runs have been recorded; bumped before a run leaves `running`, so that a burst
    /// worker can tell whether a run ended (and maybe enqueued work) since it last looked.
    ended: AtomicU64,
    /// Webhooks being sent; a stop waits for them.
    webhooks: TaskTracker,
    /// Where runs send their successes while the dequeue loop runs: it records them in its next
    /// round trip, together with its next dequeue (see [`dispatch`]).
    inbox: Mutex<Option<tokio::sync::mpsc::UnboundedSender<dispatch::Success>>>,
}

impl Shared {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A worker. Build it with [`Worker::builder`], then [`work`](Worker::work).
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use rqrs::{Functions, JobContext, JobError, Worker};
///
/// async fn add(_ctx: JobContext, (x, y): (i64, i64)) -> Result<i64, JobError> {
///     Ok(x + y)
/// }
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let worker = Worker::builder(&conn)
///     .queues(["high", "default"])
///     .functions(Functions::new().register("tasks.add", add))
///     .concurrency(32)
///     .burst(true)
///     .build()?;
/// worker.work().await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    shared: Arc<Shared>,
    concurrency: usize,
    burst: bool,
    heartbeat_interval: Duration,
    handle_signals: bool,
    limits: Limits,
    with_scheduler: bool,
    shutdown: Arc<watch::Sender<Stop>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.shared.name)
            .field("queues", &self.shared.queues)
            .field("concurrency", &self.concurrency)
            .field("burst", &self.burst)
            .field("with_scheduler", &self.with_scheduler)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// The workers alive now, Python's and rqrs's (`rq:workers`).
    ///
    /// # Errors
    /// A backend error.
    pub async fn all(conn: &Connection) -> Result<Vec<WorkerInfo>> {
        conn.backend().workers(None).await
    }

    /// The workers that listen on `queue`.
    ///
    /// # Errors
    /// A backend error.
    pub async fn for_queue(conn: &Connection, queue: &str) -> Result<Vec<WorkerInfo>> {
        conn.backend().workers(Some(queue)).await
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// A handle to stop the worker from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            sender: Arc::clone(&self.shutdown),
        }
    }

    /// Runs until the worker is stopped (or, in burst mode, the queues are empty).
    ///
    /// # Errors
    /// [`Error::WorkerExists`] if a live worker has this name; a backend error at start-up.
    /// Backend errors while working are logged and retried, not returned.
    pub async fn work(self) -> Result<()> {
        let shared = &self.shared;
        let backend = shared.conn.backend();
        let info = WorkerInfo::of_this_process(&shared.name, &shared.queues);
        backend.register_worker(&info, shared.liveness).await?;
        backend
            .set_worker_state(&shared.name, WorkerState::Idle)
            .await?;
        tracing::info!(worker = %shared.name, queues = ?shared.queues, concurrency = self.concurrency, "worker started");

        let mut background = JoinSet::new();
        let liveness = liveness::Thread::start(Arc::clone(shared), self.heartbeat_interval, info);
        background.spawn(control::listen(Arc::clone(shared), self.shutdown_handle()));
        if self.handle_signals {
            background.spawn(stop_on_signals(self.shutdown_handle()));
        }
        let scheduler = self.start_scheduler().await;
        let mut jobs = JoinSet::new();
        let stop = self.dispatch(&mut jobs).await;
        // Stopped now, not after the running jobs, so that another scheduler can take the
        // queues over at once; its task releases the locks while the jobs end.
        if let Some(scheduler) = &scheduler {
            scheduler.stop();
        }

        if stop == Stop::Cold {
            jobs.abort_all();
            while jobs.join_next().await.is_some() {}
            let running: Vec<Execution> = shared
                .running()
                .drain()
                .map(|(_, run)| run.execution)
                .collect();
            for execution in running {
                let run = &execution.run;
                let released = through_outage(|| backend.release(run, &shared.name)).await;
                if let Err(error) = released {
                    tracing::error!(job = %run.job_id, %error, "could not put a job back on its queue; it will be recovered as abandoned");
                }
            }
        } else {
            while jobs.join_next().await.is_some() {}
        }
        if let Some(scheduler) = scheduler {
            scheduler.join().await;
        }
        // A warm stop lets the webhooks in flight end (each is bounded by its own timeout); a
        // cold one leaves them.
        shared.webhooks.close();
        if stop != Stop::Cold {
            shared.webhooks.wait().await;
        }
        background.abort_all();
        liveness.stop().await;
        #[cfg(unix)]
        if let Some(horses) = &shared.horses {
            horses.close().await;
        }
        // The jobs are safe whatever happens here: a worker hash that cannot be marked dead
        // expires by itself.
        if let Err(error) =
            through_outage(|| backend.register_death(&shared.name, &shared.queues)).await
        {
            tracing::warn!(worker = %shared.name, %error, "could not record the worker's death; its entry expires by itself");
        }
        tracing::info!(worker = %shared.name, "worker stopped");
        Ok(())
    }

    /// With a scheduler: in burst mode enqueues the due jobs once and returns `None`;
    /// otherwise starts the scheduler in its own task.
    async fn start_scheduler(&self) -> Option<scheduler::Background> {
        if !self.with_scheduler {
            return None;
        }
        let shared = &self.shared;
        let scheduler = match Scheduler::builder(&shared.conn)
            .queues(shared.queues.iter().cloned())
            .build()
        {
            Ok(scheduler) => scheduler,
            Err(error) => {
                tracing::error!(%error, "cannot start the scheduler");
                return None;
            }
        };
        if self.burst {
            match scheduler.run_once().await {
                Ok(enqueued) => tracing::info!(enqueued, "scheduled jobs due now enqueued"),
                Err(error) => tracing::warn!(%error, "could not enqueue the scheduled jobs"),
            }
            return None;
        }
        Some(scheduler.spawn())
    }
}

/// Test mode's worker (see [`Queue::inline`](crate::Queue::inline)): runs each job that its
/// enqueue started, in the enqueuing call, as a worker runs it.
pub(crate) struct Inline {
    shared: Shared,
}

impl Inline {
    pub(crate) fn new(conn: &Connection, functions: &Functions, queue: &str) -> Self {
        let builder = Worker::builder(conn)
            .queues([queue])
            .functions(functions.clone());
        Inline {
            shared: builder.into_shared("inline".to_owned()),
        }
    }

    /// Where a job goes to be run by this worker: started at once, with an execution of its
    /// own.
    pub(crate) fn placement(&self) -> Placement {
        Placement::Started {
            worker: self.shared.name.clone(),
            execution_id: new_execution_ids(1).remove(0),
            liveness: self.shared.liveness,
        }
    }

    /// Runs a job that its enqueue started (its record as enqueued), and waits for its
    /// webhooks.
    pub(crate) async fn run(&self, job: JobRecord, execution_id: String) {
        let execution = Execution {
            run: crate::backend::types::RunId {
                job_id: job.id.clone(),
                execution_id,
                queue: job.origin.clone(),
            },
            started_at: job.created_at.unwrap_or_else(chrono::Utc::now),
        };
        run::run(
            &self.shared,
            Started { job, execution },
            watch::channel(None).1,
            None,
        )
        .await;
        self.shared.webhooks.close();
        self.shared.webhooks.wait().await;
        self.shared.webhooks.reopen();
    }
}

/// Warm stop on the first SIGINT/SIGTERM, cold on the second.
async fn stop_on_signals(handle: ShutdownHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    // Made once, so that no signal falls between two listeners.
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for signals");
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        count += 1;
        if count == 1 {
            tracing::info!("warm shutdown: finishing running jobs (signal again to stop at once)");
            handle.warm();
        } else {
            tracing::info!("cold shutdown: putting running jobs back on their queues");
            handle.cold();
        }
    }
}

/// The wait after `failures` failures in a row: 100 ms doubling (200 ms after the first), at
/// most 10 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(10))
}

/// Calls the backend again while it fails with a connection error, with [`backoff`], for some
/// 12 s in all: the bookkeeping of a stop rides out a short outage (a restart, a failover).
async fn through_outage<T, F, Fut>(mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut failures = 0;
    loop {
        match call().await {
            Err(error) if error.is_connection() && failures < 6 => {
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
            other => return other,
        }
    }
}

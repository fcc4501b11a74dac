//! The scheduler (RQ's `RQScheduler`): enqueues the jobs of `rq:scheduled:<q>` when they are
//! due, holding RQ's per-queue lock `rq:scheduler-lock:<q>` and its hash
//! `rq:scheduler:<name>`. How it shares queues with other schedulers is told on [`Scheduler`];
//! the store's side is [`ScheduleStore`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::Connection;
use crate::backend::ScheduleStore;
use crate::backend::types::{Lock, SchedulerRecord};
use crate::error::{Error, Result};

/// How often a running scheduler refreshes its locks and enqueues due jobs (RQ's interval).
const INTERVAL: Duration = Duration::from_secs(1);
/// How long a lock (and the scheduler hash) outlives the last refresh.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a running scheduler tries again for the locks it does not hold.
const LOCK_RETRY: Duration = Duration::from_secs(3);

/// Builds a [`Scheduler`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct SchedulerBuilder {
    conn: Connection,
    queues: Vec<String>,
    name: Option<String>,
}

impl SchedulerBuilder {
    /// The queues whose scheduled jobs to enqueue.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// The scheduler's name, the value of the locks it holds (default: a random hex string, as
    /// RQ's).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Checks the settings and builds the scheduler.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no queues or an empty name.
    pub fn build(self) -> Result<Scheduler> {
        if self.queues.is_empty() {
            return Err(Error::invalid("scheduler", "give at least one queue"));
        }
        let name = self
            .name
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        if name.is_empty() {
            return Err(Error::invalid("scheduler name", "it is empty"));
        }
        Ok(Scheduler {
            conn: self.conn,
            name,
            queues: self.queues,
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            created_at: Utc::now(),
        })
    }
}

/// Enqueues the scheduled jobs of its queues when they are due, as RQ's `RQScheduler` does.
/// Without one, jobs enqueued for later ([`Queue::enqueue_at`](crate::Queue::enqueue_at),
/// [`Queue::enqueue_in`](crate::Queue::enqueue_in)), and retries and repeats with an interval,
/// never run. A worker runs one for its queues with
/// [`WorkerBuilder::with_scheduler`](crate::WorkerBuilder::with_scheduler); a scheduler can
/// also run on its own.
///
/// Such jobs wait in `rq:scheduled:<q>`, scored by the second they are due. For its queues, a
/// running scheduler ([`run`](Self::run)):
/// 1. holds RQ's lock `rq:scheduler-lock:<q>` (value: its name), so that one scheduler at a
///    time, rqrs's or Python's, enqueues a queue's jobs (Python's enqueue of due jobs is not
///    atomic, so two at once could push a job twice);
/// 2. every second refreshes the locks it holds and its hash `rq:scheduler:<name>`, then
///    enqueues the due jobs of each queue it holds: one atomic step per batch of 1000, which
///    checks the lock again, so a scheduler that stalled past its lock's expiry enqueues
///    nothing;
/// 3. every 3 s tries again to take the locks it does not hold;
/// 4. when stopped, releases its locks (compare and delete) and deletes its hash.
///
/// rqrs's locks live 10 s, not RQ's 61 s, so that the queues of a dead rqrs scheduler are taken
/// over within seconds by another rqrs scheduler. Python schedulers try again for locks they
/// do not hold only every 120 s (RQ's `DEFAULT_SCHEDULER_FALLBACK_PERIOD`).
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use rqrs::Scheduler;
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let scheduler = Scheduler::builder(&conn).queues(["high", "default"]).build()?;
/// // Until Ctrl-C; then the locks are released.
/// scheduler.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Scheduler {
    conn: Connection,
    name: String,
    queues: Vec<String>,
    hostname: String,
    created_at: DateTime<Utc>,
}

impl Scheduler {
    /// A builder for a scheduler on `conn`.
    pub fn builder(conn: &Connection) -> SchedulerBuilder {
        SchedulerBuilder {
            conn: conn.clone(),
            queues: Vec::new(),
            name: None,
        }
    }

    /// The scheduler's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queues it enqueues the scheduled jobs of.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Takes the locks of its queues that are free and refreshes those it holds; returns the
    /// queues whose lock it holds now.
    ///
    /// # Errors
    /// A backend error.
    pub async fn acquire_locks(&self) -> Result<Vec<String>> {
        let locks = self
            .conn
            .backend()
            .acquire_scheduler_locks(&self.name, &self.queues, LOCK_TTL)
            .await?;
        Ok(self
            .queues
            .iter()
            .zip(locks)
            .filter(|(_, lock)| lock.is_held())
            .map(|(queue, _)| queue.clone())
            .collect())
    }

    /// Releases the locks it holds; locks held by other schedulers are left alone.
    ///
    /// # Errors
    /// A backend error.
    pub async fn release_locks(&self) -> Result<()> {
        self.conn
            .backend()
            .release_scheduler_locks(&self.name, &self.queues)
            .await?;
        Ok(())
    }

    /// Enqueues the due jobs of the queues whose lock it holds now; returns how many.
    ///
    /// # Errors
    /// A backend error.
    pub async fn enqueue_scheduled_jobs(&self) -> Result<usize> {
        self.enqueue_due(&self.queues).await
    }

    /// Enqueues the due jobs of `queues` whose lock it holds; returns how many.
    async fn enqueue_due(&self, queues: &[String]) -> Result<usize> {
        let mut enqueued = 0;
        for queue in queues {
            enqueued += self
                .conn
                .backend()
                .enqueue_scheduled(&self.name, queue)
                .await?
                .unwrap_or(0);
        }
        Ok(enqueued)
    }

    /// Enqueues the jobs due now, once, as a burst worker's scheduler does: takes the free
    /// locks, enqueues the due jobs of those queues, releases the locks. Returns how many jobs
    /// it enqueued.
    ///
    /// # Errors
    /// A backend error.
    pub async fn run_once(&self) -> Result<usize> {
        let held = self.acquire_locks().await?;
        if held.is_empty() {
            return Ok(0);
        }
        let enqueued = async {
            let backend = self.conn.backend();
            backend.register_scheduler(&self.record(), LOCK_TTL).await?;
            self.enqueue_due(&held).await
        }
        .await;
        let stopped = self.stop().await;
        let enqueued = enqueued?;
        stopped?;
        Ok(enqueued)
    }

    /// Runs until `shutdown` completes, then releases the locks and deletes the scheduler
    /// hash. Backend errors while running are logged and retried at the next tick.
    ///
    /// # Errors
    /// A backend error while releasing the locks.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tracing::info!(scheduler = %self.name, queues = ?self.queues, "scheduler started");
        let mut held = vec![false; self.queues.len()];
        let mut retried: Option<Instant> = None;
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            let retry = retried.is_none_or(|at| at.elapsed() >= LOCK_RETRY);
            if retry {
                retried = Some(Instant::now());
            }
            if let Err(error) = self.tick(&mut held, retry).await {
                tracing::warn!(scheduler = %self.name, %error, "scheduler tick failed");
            }
        }
        let stopped = self.stop().await;
        tracing::info!(scheduler = %self.name, "scheduler stopped");
        stopped
    }

    /// Starts [`run`](Self::run) in a task of its own.
    pub(crate) fn spawn(self) -> Background {
        let stopping = CancellationToken::new();
        let mut task = JoinSet::new();
        task.spawn(self.run(stopping.clone().cancelled_owned()));
        Background { stopping, task }
    }

    /// One round of [`run`](Self::run): refresh the held locks (and, when `retry`, try the
    /// others), refresh the hash, enqueue the due jobs of the held queues.
    async fn tick(&self, held: &mut [bool], retry: bool) -> Result<()> {
        let backend = self.conn.backend();
        let wanted: Vec<usize> = (0..self.queues.len())
            .filter(|&index| retry || held[index])
            .collect();
        let queues: Vec<String> = wanted
            .iter()
            .map(|&index| self.queues[index].clone())
            .collect();
        let locks = backend
            .acquire_scheduler_locks(&self.name, &queues, LOCK_TTL)
            .await?;
        for (&index, lock) in wanted.iter().zip(locks) {
            let queue = &self.queues[index];
            match (held[index], lock) {
                (false, Lock::Acquired | Lock::Refreshed) => {
                    tracing::info!(scheduler = %self.name, %queue, "scheduler lock acquired");
                }
                (true, Lock::Acquired) => {
                    tracing::warn!(scheduler = %self.name, %queue, "scheduler lock had expired; acquired again");
                }
                (true, Lock::Taken) => {
                    tracing::warn!(scheduler = %self.name, %queue, "scheduler lock taken over by another scheduler");
                }
                _ => {}
            }
            held[index] = lock.is_held();
        }
        backend.register_scheduler(&self.record(), LOCK_TTL).await?;
        for (queue, held) in self.queues.iter().zip(held.iter_mut()) {
            if !*held {
                continue;
            }
            match backend.enqueue_scheduled(&self.name, queue).await? {
                Some(0) => {}
                Some(enqueued) => {
                    tracing::info!(scheduler = %self.name, %queue, enqueued, "scheduled jobs enqueued");
                }
                None => {
                    *held = false;
                    tracing::warn!(scheduler = %self.name, %queue, "scheduler lock taken over by another scheduler");
                }
            }
        }
        Ok(())
    }

    /// Releases the locks and deletes the hash (both are attempted).
    async fn stop(&self) -> Result<()> {
        let released = self.release_locks().await;
        let unregistered = self.conn.backend().unregister_scheduler(&self.name).await;
        released.and(unregistered)
    }

    fn record(&self) -> SchedulerRecord<'_> {
        SchedulerRecord {
            name: &self.name,
            hostname: &self.hostname,
            pid: std::process::id(),
            queues: &self.queues,
            created_at: self.created_at,
        }
    }
}

/// A scheduler running in a task of its own (a worker's). The task is aborted if this is
/// dropped, so the scheduler never outlives its owner (its locks then expire by themselves).
#[derive(Debug)]
pub(crate) struct Background {
    stopping: CancellationToken,
    task: JoinSet<Result<()>>,
}

impl Background {
    /// Asks the scheduler to stop: it releases its locks in its task.
    pub(crate) fn stop(&self) {
        self.stopping.cancel();
    }

    /// Stops the scheduler and waits until it has released its locks.
    pub(crate) async fn join(mut self) {
        self.stop();
        match self.task.join_next().await {
            Some(Ok(Err(error))) => {
                tracing::warn!(%error, "the scheduler could not release its locks");
            }
            Some(Err(error)) => tracing::error!(%error, "the scheduler task failed"),
            Some(Ok(Ok(()))) | None => {}
        }
    }
}

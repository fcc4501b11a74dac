//! The dequeue loop: with free slots or successes to record, make one round trip that records
//! the successes and takes jobs for the free slots, and start their runs; with none to take,
//! wait (or end a burst); while suspended, look again every second; after a failed round trip,
//! back off. Each of these is one step below, and [`Worker::dispatch`] repeats them until the
//! worker is asked to stop or reaches a limit.
//!
//! A run that succeeds sends its success here with its slot ([`Shared::record_success`]), and
//! waits for the answer. Every success that came while a round trip was under way goes in the
//! next one, so the round trips grow with the load and none waits to fill a batch: at
//! concurrency 1 a job costs one round trip, and at high concurrency one round trip records and
//! starts many.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::waiter::Waiter;
use super::{Running, Shared, Stop, Worker, WorkerState, backoff, run};
use crate::backend::types::{Dequeued, Finishing, Recorded, Started, Worked, new_execution_ids};
use crate::backend::{RunStore, WorkerStore};
use crate::error::{Error, Result};

/// How often a suspended worker looks whether it was resumed (RQ: every second).
const SUSPENDED_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The most successes recorded, and the most jobs taken, in one round trip: a bound on a
/// script's arguments and on how long it holds the store.
const MOST_PER_ROUND_TRIP: usize = 256;

/// A success on its way to the dequeue loop.
pub(super) struct Success {
    finishing: Arc<Finishing>,
    /// The run's slot, which the loop fills again in the same round trip.
    permit: Option<OwnedSemaphorePermit>,
    /// How it was recorded; dropped unanswered when the round trip failed, and then the run
    /// records it itself.
    answer: oneshot::Sender<Recorded>,
}

impl Shared {
    /// Records a success: in the dequeue loop's next round trip while it runs (the run's
    /// `permit` goes with it, for the loop to fill again), else by a call of its own.
    pub(super) async fn record_success(
        &self,
        finishing: &Arc<Finishing>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Recorded> {
        let inbox = self
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(inbox) = inbox {
            let (answer, answered) = oneshot::channel();
            let success = Success {
                finishing: Arc::clone(finishing),
                permit,
                answer,
            };
            // Unanswered (the loop ended first, or its round trip failed), the success is
            // recorded here.
            if inbox.send(success).is_ok()
                && let Ok(recorded) = answered.await
            {
                return Ok(recorded);
            }
        }
        let worked = self
            .conn
            .backend()
            .work(&self.name, &[finishing.as_ref()], &[], &[], self.liveness)
            .await?;
        Ok(worked
            .recorded
            .first()
            .copied()
            .unwrap_or(Recorded::Refused))
    }
}

/// What one step decided: go on, or stop the loop with how the worker stops (`Running` for the
/// end of a burst or a limit reached).
type Step = ControlFlow<Stop>;

impl Worker {
    /// The dequeue loop; returns how it was asked to stop (`Running` for the end of a burst or
    /// a limit reached). Each run is started in `jobs`.
    pub(super) async fn dispatch(&self, jobs: &mut JoinSet<()>) -> Stop {
        let mut dispatch = Dispatch::new(self);
        loop {
            if let ControlFlow::Break(stop) = dispatch.step(jobs).await {
                return stop;
            }
        }
    }
}

/// The dequeue loop's state.
struct Dispatch<'w> {
    worker: &'w Worker,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<Stop>,
    /// Wakes the loop when a queue may hold a job; none in burst mode, which never waits.
    waiter: Option<Waiter>,
    /// Whether the worker told the store it is idle.
    idle: bool,
    idle_since: Instant,
    suspended: bool,
    /// Failed dequeues in a row.
    failures: u32,
    /// The execution ids of failed dequeues, whose runs may exist unbeknown to the worker.
    unclaimed: Vec<String>,
    /// The queues in the order of the next dequeue.
    order: Vec<String>,
    /// Jobs taken so far.
    taken: u64,
    /// The successes the runs send, and those received for the next round trip.
    inbox: mpsc::UnboundedReceiver<Success>,
    successes: Vec<Success>,
}

impl Drop for Dispatch<'_> {
    /// The runs that end from now on record their successes themselves; those not yet recorded
    /// are dropped with the loop, and their runs record them too.
    fn drop(&mut self) {
        *self
            .worker
            .shared
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl<'w> Dispatch<'w> {
    fn new(worker: &'w Worker) -> Self {
        let shared = &worker.shared;
        let (sender, inbox) = mpsc::unbounded_channel();
        *shared
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sender);
        Dispatch {
            worker,
            slots: Arc::new(Semaphore::new(worker.concurrency)),
            stop: worker.shutdown.subscribe(),
            waiter: (!worker.burst).then(|| Waiter::start(&shared.conn, &shared.queues)),
            idle: true,
            idle_since: Instant::now(),
            suspended: false,
            failures: 0,
            unclaimed: Vec::new(),
            order: shared.queues.clone(),
            taken: 0,
            inbox,
            successes: Vec::new(),
        }
    }

    /// How the worker was asked to stop.
    fn stopping(&self) -> Stop {
        *self.stop.borrow()
    }

    async fn step(&mut self, jobs: &mut JoinSet<()>) -> Step {
        let limits = self.worker.limits;
        if limits.max_jobs.is_some_and(|max| self.taken >= max) {
            tracing::info!(jobs = self.taken, "max jobs reached: stopping");
            return Step::Break(Stop::Running);
        }
        let Some(permits) = self.ready().await else {
            return Step::Break(self.stopping());
        };
        let ended_before = self.worker.shared.ended.load(Ordering::SeqCst);
        let successes = std::mem::take(&mut self.successes);
        let worked = self.round_trip(&successes, permits.len()).await;
        let looked = !permits.is_empty();
        match worked {
            Ok(Worked { recorded, dequeued }) => {
                for (i, success) in successes.into_iter().enumerate() {
                    let recorded = recorded.get(i).copied().unwrap_or(Recorded::Refused);
                    let _ = success.answer.send(recorded);
                }
                self.failures = 0;
                match dequeued {
                    Dequeued::Jobs(started) => {
                        self.suspended = false;
                        while jobs.try_join_next().is_some() {}
                        if !started.is_empty() {
                            self.start(jobs, started, permits);
                            Step::Continue(())
                        } else if looked {
                            drop(permits);
                            self.when_empty(ended_before).await
                        } else {
                            Step::Continue(())
                        }
                    }
                    Dequeued::Suspended => {
                        drop(permits);
                        self.while_suspended().await
                    }
                }
            }
            Err(error) => {
                // Dropped unanswered, the successes are recorded by their runs, which wait and
                // try again on errors of their own.
                drop(successes);
                drop(permits);
                self.after_failure(&error).await
            }
        }
    }

    /// Waits for a free slot or a success to record, then takes every other free slot (up to
    /// what `max_jobs` leaves) and every success waiting, each up to
    /// [`MOST_PER_ROUND_TRIP`]; `None` when the worker is asked to stop first.
    async fn ready(&mut self) -> Option<Vec<OwnedSemaphorePermit>> {
        let mut permits = Vec::new();
        if self.successes.is_empty() {
            tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop != Stop::Running) => return None,
                Some(success) = self.inbox.recv() => self.successes.push(success),
                permit = Arc::clone(&self.slots).acquire_owned() => {
                    permits.push(permit.expect("the semaphore is never closed"));
                }
            }
        }
        while self.successes.len() < MOST_PER_ROUND_TRIP
            && let Ok(success) = self.inbox.try_recv()
        {
            self.successes.push(success);
        }
        permits.extend(
            self.successes
                .iter_mut()
                .filter_map(|success| success.permit.take()),
        );
        let room = self.worker.limits.max_jobs.map_or(usize::MAX, |max| {
            usize::try_from(max - self.taken).unwrap_or(usize::MAX)
        });
        let room = room.min(MOST_PER_ROUND_TRIP);
        while permits.len() < room
            && let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned()
        {
            permits.push(permit);
        }
        permits.truncate(room);
        Some(permits)
    }

    /// Records `successes` and dequeues up to `count` jobs from the queues in order, in one
    /// call. A round trip whose reply was lost may have started runs that no one holds: their
    /// execution ids are kept, and those runs are put back on their queues before the next
    /// one, rather than left to abandoned-run recovery.
    async fn round_trip(&mut self, successes: &[Success], count: usize) -> Result<Worked> {
        let shared = &self.worker.shared;
        let backend = shared.conn.backend();
        if !self.unclaimed.is_empty() {
            let reclaimed = backend
                .reclaim(&shared.name, &shared.queues, &self.unclaimed)
                .await?;
            if reclaimed > 0 {
                tracing::info!(
                    jobs = reclaimed,
                    "put back the jobs of a dequeue whose reply was lost"
                );
            }
            self.unclaimed.clear();
        }
        let execution_ids = new_execution_ids(count);
        let finishing: Vec<&Finishing> = successes
            .iter()
            .map(|success| success.finishing.as_ref())
            .collect();
        backend
            .work(
                &shared.name,
                &finishing,
                &self.order,
                &execution_ids,
                shared.liveness,
            )
            .await
            .inspect_err(|_| self.unclaimed.extend(execution_ids.iter().cloned()))
    }

    /// Starts a run per job taken, each holding one slot, and reorders the queues as the
    /// dequeue strategy says.
    fn start(
        &mut self,
        jobs: &mut JoinSet<()>,
        started: Vec<Started>,
        permits: Vec<OwnedSemaphorePermit>,
    ) {
        let shared = &self.worker.shared;
        self.idle = false;
        self.taken += started.len() as u64;
        let served = started
            .last()
            .map(|started| started.execution.run.queue.clone());
        self.worker
            .limits
            .dequeue_strategy
            .reorder(&mut self.order, served.as_deref());
        for (started, permit) in started.into_iter().zip(permits) {
            let (interrupt, interrupted) = watch::channel(None);
            let execution = started.execution.clone();
            shared.running().insert(
                execution.run.execution_id.clone(),
                Running {
                    execution,
                    interrupt,
                },
            );
            let shared = Arc::clone(shared);
            jobs.spawn(async move {
                run::run(&shared, started, interrupted, Some(permit)).await;
                shared.finished.notify_waiters();
            });
        }
    }

    /// Nothing to take: marks the worker idle once its runs are done, then ends a burst, stops
    /// at the idle limit, or waits for work (or for a run to end).
    async fn when_empty(&mut self, ended_before: u64) -> Step {
        let shared = &self.worker.shared;
        let running = shared.running().len();
        if running == 0 && !self.idle {
            self.idle = true;
            self.idle_since = Instant::now();
            if let Err(error) = shared
                .conn
                .backend()
                .set_worker_state(&shared.name, WorkerState::Idle)
                .await
            {
                tracing::warn!(%error, "could not mark the worker idle");
            }
        }
        let idle_deadline = self
            .worker
            .limits
            .max_idle_time
            .filter(|_| running == 0)
            .map(|max| self.idle_since + max);
        if idle_deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            tracing::info!("max idle time reached: stopping");
            return Step::Break(Stop::Running);
        }
        match &self.waiter {
            // The end of a burst, unless a run ended since the dequeue began: it may have put
            // work back (a retry, a dependent) that this dequeue did not see.
            None if running == 0 => {
                if shared.ended.load(Ordering::SeqCst) == ended_before {
                    return Step::Break(Stop::Running);
                }
            }
            // Burst: wait for a running job to end (or to send its success), then look again
            // (it may have enqueued more work).
            None => {
                let ended = shared.finished.notified();
                if shared.running().len() == running {
                    tokio::select! {
                        () = ended => {}
                        Some(success) = self.inbox.recv() => self.successes.push(success),
                    }
                }
            }
            Some(waiter) => {
                let stopped = tokio::select! {
                    _ = self.stop.wait_for(|stop| *stop != Stop::Running) => true,
                    Some(success) = self.inbox.recv() => {
                        self.successes.push(success);
                        false
                    }
                    () = waiter.wait() => false,
                    () = shared.finished.notified(), if !self.idle => false,
                    () = tokio::time::sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => false,
                };
                if stopped {
                    return Step::Break(self.stopping());
                }
            }
        }
        Step::Continue(())
    }

    /// Workers are suspended: marks this one so once, ends a burst once its runs are done, and
    /// looks again after a while.
    async fn while_suspended(&mut self) -> Step {
        let shared = &self.worker.shared;
        if !self.suspended {
            self.suspended = true;
            self.idle = false;
            tracing::info!("workers are suspended: finishing running jobs, taking no new ones");
            if let Err(error) = shared
                .conn
                .backend()
                .set_worker_state(&shared.name, WorkerState::Suspended)
                .await
            {
                tracing::warn!(%error, "could not mark the worker suspended");
            }
        }
        // A burst worker stops once its running jobs are done, as RQ's does.
        if self.worker.burst && shared.running().is_empty() {
            return Step::Break(Stop::Running);
        }
        self.pause(SUSPENDED_POLL).await
    }

    /// A dequeue failed: waits longer after each failure in a row, then goes on.
    async fn after_failure(&mut self, error: &Error) -> Step {
        self.failures += 1;
        let delay = backoff(self.failures);
        tracing::warn!(%error, retry_in = ?delay, "dequeue failed");
        self.pause(delay).await
    }

    /// Waits `delay`, unless the worker is asked to stop first.
    async fn pause(&mut self, delay: std::time::Duration) -> Step {
        let stopped = tokio::select! {
            _ = self.stop.wait_for(|stop| *stop != Stop::Running) => true,
            () = tokio::time::sleep(delay) => false,
        };
        if stopped {
            Step::Break(self.stopping())
        } else {
            Step::Continue(())
        }
    }
}

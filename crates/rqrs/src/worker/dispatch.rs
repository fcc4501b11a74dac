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
    /// Failed round trips in a row.
    failures: u32,
    /// The execution ids of failed round trips, whose runs may exist unbeknown to the worker.
    unclaimed: Vec<String>,
    /// The queues in the order of the next dequeue.
    order: Vec<String>,
    /// Jobs taken so far, and jobs asked for by the round trips under way.
    taken: u64,
    asked: u64,
    /// When the loop may look at the queues again: now, once woken (the last look found them
    /// empty), or after a pause (suspended, or after a failure).
    look: Look,
    /// The successes the runs send, and those received for the next round trip.
    inbox: mpsc::UnboundedReceiver<Success>,
    successes: Vec<Success>,
    /// Free slots held for the next round trip.
    free: Vec<OwnedSemaphorePermit>,
    /// The round trips under way: at most [`MOST_TRIPS`], so that the store works on one while
    /// the worker starts the jobs of the other.
    trips: JoinSet<Trip>,
}

/// The most round trips under way at once.
const MOST_TRIPS: usize = 2;

/// When the loop looks at the queues again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Now,
    /// Once woken: a queue may hold a job, a run ended, or a success came.
    WhenWoken,
    After(Instant),
}

/// A round trip that came back, with what it carried.
struct Trip {
    successes: Vec<Success>,
    permits: Vec<OwnedSemaphorePermit>,
    execution_ids: Vec<String>,
    /// How many runs had been recorded when it left (see [`Shared::ended`]).
    ended_before: u64,
    worked: Result<Worked>,
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
            asked: 0,
            look: Look::Now,
            inbox,
            successes: Vec::new(),
            free: Vec::new(),
            trips: JoinSet::new(),
        }
    }

    /// How the worker was asked to stop.
    fn stopping(&self) -> Stop {
        *self.stop.borrow()
    }

    /// How many more jobs the loop may ask for: what `max_jobs` leaves, at most
    /// [`MOST_PER_ROUND_TRIP`] at once.
    fn room(&self) -> usize {
        let left = self.worker.limits.max_jobs.map_or(usize::MAX, |max| {
            usize::try_from(max.saturating_sub(self.taken + self.asked)).unwrap_or(usize::MAX)
        });
        left.min(MOST_PER_ROUND_TRIP)
    }

    async fn step(&mut self, jobs: &mut JoinSet<()>) -> Step {
        let running = self.stopping() == Stop::Running;
        let limits = self.worker.limits;
        let at_limit = limits.max_jobs.is_some_and(|max| self.taken >= max);
        if self.trips.is_empty() && (!running || at_limit) {
            if at_limit && running {
                tracing::info!(jobs = self.taken, "max jobs reached: stopping");
            }
            return Step::Break(self.stopping());
        }
        if running && self.trips.len() < MOST_TRIPS && self.gather() {
            return self.launch().await;
        }
        let looking = running && self.trips.len() < MOST_TRIPS && self.look == Look::Now;
        let waiting = running && self.trips.is_empty() && self.look == Look::WhenWoken;
        let idle_deadline = self
            .worker
            .limits
            .max_idle_time
            .filter(|_| self.idle && waiting)
            .map(|max| self.idle_since + max);
        let pause = match self.look {
            Look::After(at) if running => Some(at),
            _ => None,
        };
        let shared = Arc::clone(&self.worker.shared);
        tokio::select! {
            biased;
            Some(trip) = self.trips.join_next() => {
                match trip {
                    Ok(trip) => return self.land(jobs, trip).await,
                    Err(error) => tracing::error!(%error, "a round trip to the store panicked"),
                }
            }
            _ = self.stop.changed(), if running => {}
            Some(success) = self.inbox.recv(), if running => self.successes.push(success),
            permit = Arc::clone(&self.slots).acquire_owned(), if looking && self.room() > self.free.len() => {
                self.free.push(permit.expect("the semaphore is never closed"));
            }
            () = wait_for_work(self.waiter.as_ref()), if waiting && self.waiter.is_some() => {
                self.look = Look::Now;
            }
            () = shared.finished.notified(), if self.look == Look::WhenWoken => {
                self.look = Look::Now;
            }
            () = tokio::time::sleep_until(pause.unwrap_or_else(Instant::now)), if pause.is_some() => {
                self.look = Look::Now;
            }
            () = tokio::time::sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => {
                tracing::info!("max idle time reached: stopping");
                return Step::Break(Stop::Running);
            }
        }
        Step::Continue(())
    }

    /// Takes, without waiting, the successes that came (each with its slot) and, while the
    /// loop may look at the queues, every free slot, up to [`room`](Self::room); whether a
    /// round trip has anything to do.
    fn gather(&mut self) -> bool {
        while self.successes.len() < MOST_PER_ROUND_TRIP
            && let Ok(success) = self.inbox.try_recv()
        {
            self.successes.push(success);
        }
        let freed: Vec<_> = self
            .successes
            .iter_mut()
            .filter_map(|success| success.permit.take())
            .collect();
        if !freed.is_empty() && self.look == Look::WhenWoken {
            // A run ended: it may have put work back (a repeat, a dependent).
            self.look = Look::Now;
        }
        self.free.extend(freed);
        if self.look == Look::Now {
            let room = self.room();
            while self.free.len() < room
                && let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned()
            {
                self.free.push(permit);
            }
            self.free.truncate(room);
        } else {
            self.free.clear();
        }
        !self.successes.is_empty() || !self.free.is_empty()
    }

    /// Starts a round trip with the successes and free slots gathered: it records the
    /// successes and takes a job per free slot, in one call. A round trip whose reply was lost
    /// may have started runs that no one holds: their execution ids are kept, and those runs
    /// are put back on their queues before the next one, rather than left to abandoned-run
    /// recovery.
    async fn launch(&mut self) -> Step {
        let shared = Arc::clone(&self.worker.shared);
        if !self.unclaimed.is_empty() {
            match shared
                .conn
                .backend()
                .reclaim(&shared.name, &shared.queues, &self.unclaimed)
                .await
            {
                Ok(reclaimed) => {
                    if reclaimed > 0 {
                        tracing::info!(
                            jobs = reclaimed,
                            "put back the jobs of a dequeue whose reply was lost"
                        );
                    }
                    self.unclaimed.clear();
                }
                Err(error) => {
                    self.after_failure(&error);
                    return Step::Continue(());
                }
            }
        }
        let successes = std::mem::take(&mut self.successes);
        let permits = std::mem::take(&mut self.free);
        let execution_ids = new_execution_ids(permits.len());
        self.asked += permits.len() as u64;
        let ended_before = shared.ended.load(Ordering::SeqCst);
        let order = self.order.clone();
        self.trips.spawn(async move {
            let worked = {
                let finishing: Vec<&Finishing> = successes
                    .iter()
                    .map(|success| success.finishing.as_ref())
                    .collect();
                shared
                    .conn
                    .backend()
                    .work(
                        &shared.name,
                        &finishing,
                        &order,
                        &execution_ids,
                        shared.liveness,
                    )
                    .await
            };
            Trip {
                successes,
                permits,
                execution_ids,
                ended_before,
                worked,
            }
        });
        Step::Continue(())
    }

    /// A round trip came back: answers its successes, starts the jobs it took, and decides
    /// when to look again.
    async fn land(&mut self, jobs: &mut JoinSet<()>, trip: Trip) -> Step {
        let Trip {
            successes,
            permits,
            execution_ids,
            ended_before,
            worked,
        } = trip;
        self.asked -= permits.len() as u64;
        let looked = !permits.is_empty();
        while jobs.try_join_next().is_some() {}
        let Worked { recorded, dequeued } = match worked {
            Ok(worked) => worked,
            Err(error) => {
                // Dropped unanswered, the successes are recorded by their runs, which wait and
                // try again on errors of their own.
                drop(successes);
                self.unclaimed.extend(execution_ids);
                self.after_failure(&error);
                return Step::Continue(());
            }
        };
        for (i, success) in successes.into_iter().enumerate() {
            let recorded = recorded.get(i).copied().unwrap_or(Recorded::Refused);
            let _ = success.answer.send(recorded);
        }
        self.failures = 0;
        match dequeued {
            Dequeued::Jobs(started) if !started.is_empty() => {
                self.suspended = false;
                self.start(jobs, started, permits);
                Step::Continue(())
            }
            Dequeued::Jobs(_) if looked => {
                self.suspended = false;
                drop(permits);
                self.when_empty(ended_before).await
            }
            Dequeued::Jobs(_) => Step::Continue(()),
            Dequeued::Suspended => {
                drop(permits);
                self.while_suspended().await
            }
        }
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
        self.look = Look::Now;
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

    /// The queues were empty: marks the worker idle once its runs are done, ends a burst (unless
    /// a run ended since the round trip left: it may have put work back that it did not see),
    /// and otherwise looks again once woken.
    async fn when_empty(&mut self, ended_before: u64) -> Step {
        let shared = &self.worker.shared;
        let running = shared.running().len();
        self.look = Look::WhenWoken;
        if running == 0 && self.trips.is_empty() && !self.idle {
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
        // (With another round trip under way, its landing decides.)
        if self.worker.burst && running == 0 && self.trips.is_empty() {
            if shared.ended.load(Ordering::SeqCst) == ended_before {
                return Step::Break(Stop::Running);
            }
            self.look = Look::Now;
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
        if self.worker.burst && shared.running().is_empty() && self.trips.is_empty() {
            return Step::Break(Stop::Running);
        }
        self.look = Look::After(Instant::now() + SUSPENDED_POLL);
        Step::Continue(())
    }

    /// A round trip failed: looks again after a wait that grows with each failure in a row.
    fn after_failure(&mut self, error: &Error) {
        self.failures += 1;
        let delay = backoff(self.failures);
        tracing::warn!(%error, retry_in = ?delay, "dequeue failed");
        self.look = Look::After(Instant::now() + delay);
    }
}

/// Returns when a queue may hold a job (see [`Waiter::wait`]).
async fn wait_for_work(waiter: Option<&Waiter>) {
    if let Some(waiter) = waiter {
        waiter.wait().await;
    }
}

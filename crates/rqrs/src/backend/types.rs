//! The records that cross the storage seam: what the library hands a backend to store, and what
//! a backend hands back. Plain data, no handles: [`Job`](crate::Job) and the rest are built
//! from these above the seam.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

use crate::command::Command;
use crate::job::{Call, JobId, JobStatus, Lifecycle};
use crate::rate_limit::RateLimit;
use crate::ttl::{Timeout, Ttl};

/// A job as stored.
#[derive(Debug, Clone)]
pub(crate) struct JobRecord {
    pub(crate) id: JobId,
    /// The decoded call, or why the stored call cannot be decoded.
    pub(crate) call: Result<Call, String>,
    pub(crate) status: JobStatus,
    /// The queue it was enqueued on.
    pub(crate) origin: String,
    pub(crate) description: Option<String>,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) enqueued_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
    pub(crate) last_heartbeat: Option<DateTime<Utc>>,
    pub(crate) worker_name: Option<String>,
    pub(crate) timeout: Option<Timeout>,
    pub(crate) result_ttl: Option<Ttl>,
    pub(crate) failure_ttl: Option<Ttl>,
    /// How long it may wait on its queue.
    pub(crate) ttl: Option<Duration>,
    pub(crate) meta: Map<String, Value>,
    /// The error text kept on the job itself (RQ 1.x's `exc_info`, or a requeue's empty
    /// marker); 2.x keeps errors with the results.
    pub(crate) legacy_exc_info: Option<String>,
    /// What happens around its runs: retries, repeats, callbacks, dependencies, webhooks.
    pub(crate) lifecycle: Lifecycle,
    /// The group it was enqueued in (RQ's `group_id`).
    pub(crate) group_id: Option<String>,
}

impl JobRecord {
    /// A job that exists but cannot be read (its status is unknown, its call unreadable):
    /// `reason` says why, and a worker that took it fails it with that.
    pub(crate) fn unreadable(id: JobId, origin: &str, reason: String) -> Self {
        JobRecord {
            id,
            call: Err(reason),
            status: JobStatus::Started,
            origin: origin.to_owned(),
            description: None,
            created_at: None,
            enqueued_at: None,
            started_at: None,
            ended_at: None,
            last_heartbeat: None,
            worker_name: None,
            timeout: None,
            result_ttl: None,
            failure_ttl: None,
            ttl: None,
            meta: Map::new(),
            legacy_exc_info: None,
            lifecycle: Lifecycle::default(),
            group_id: None,
        }
    }
}

/// A job to enqueue: its record as it is to be stored, and where it goes.
#[derive(Debug)]
pub(crate) struct NewJob {
    /// The job; the store sets its status (queued, deferred, scheduled or started).
    pub(crate) record: JobRecord,
    pub(crate) placement: Placement,
    /// Refuse the whole batch if a job with this id exists (RQ's `unique=True`).
    pub(crate) unique: bool,
}

/// Where a new job goes once its dependencies (if any) are done.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// On its queue: at the tail, or at the head.
    Queue {
        /// At the head.
        at_front: bool,
    },
    /// In its queue's scheduled registry until this time.
    Scheduled(DateTime<Utc>),
    /// Started at once by `worker`, with this execution: test mode runs the job in the call
    /// that enqueues it, so it never waits on a queue where another worker could take it.
    Started {
        worker: String,
        execution_id: String,
        liveness: Liveness,
    },
}

/// One run of a job: its job, its execution's id and its queue. The started registry holds one
/// entry per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunId {
    pub(crate) job_id: JobId,
    pub(crate) execution_id: String,
    pub(crate) queue: String,
}

/// A run this worker holds: its id and when it started.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub(crate) run: RunId,
    pub(crate) started_at: DateTime<Utc>,
}

/// Fresh execution ids for a dequeue of up to `count` jobs. The worker makes them, so that it
/// can find the runs of a dequeue whose reply it lost (see `RunStore::reclaim`).
pub(crate) fn new_execution_ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect()
}

/// A job the worker has taken, with its execution.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) job: JobRecord,
    pub(crate) execution: Execution,
}

/// What a dequeue got.
#[derive(Debug)]
pub(crate) enum Dequeued {
    /// The jobs taken (none when the queues are empty).
    Jobs(Vec<Started>),
    /// Nothing: workers are suspended.
    Suspended,
}

/// The timings a worker keeps its runs and itself alive with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    /// How long after the last heartbeat a run counts as abandoned.
    pub(crate) execution_ttl: Duration,
    /// How long after the last heartbeat the worker's registration expires.
    pub(crate) worker_ttl: Duration,
}

/// What a heartbeat learned.
#[derive(Debug)]
pub(crate) struct HeartbeatReply {
    /// The worker's registration had expired and must be written again.
    pub(crate) worker_missing: bool,
    /// Executions that are no longer the jobs' runs (recovered elsewhere, canceled, deleted).
    pub(crate) lost: Vec<String>,
}

/// Who records the end of a run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending<'a> {
    /// The worker that ran it, which knows when it started.
    Worker {
        name: &'a str,
        started_at: DateTime<Utc>,
    },
    /// Maintenance, for a run whose worker stopped heartbeating: nobody knows when it ran, and
    /// a heartbeat that landed late (its deadline is in the future again) saves it.
    Abandoned,
}

/// A run that succeeded.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) return_value: Value,
    pub(crate) result_ttl: Ttl,
    /// Seconds until the job runs again, when it repeats.
    pub(crate) repeat_in: Option<u64>,
}

/// A success to record: the run, what it returned, and what the worker read of its job at the
/// start that the record needs.
#[derive(Debug)]
pub(crate) struct Finishing {
    pub(crate) execution: Execution,
    pub(crate) finished: Finished,
    /// The job's rate limit, whose slot the end of the run gives back.
    pub(crate) rate_limit: Option<RateLimit>,
    /// Whether the job was enqueued with dependencies (their set expires with it).
    pub(crate) has_dependencies: bool,
}

/// What a worker's round trip ([`RunStore::work`](super::RunStore::work)) did: how each
/// success was recorded, in order, and what the dequeue got.
#[derive(Debug)]
pub(crate) struct Worked {
    pub(crate) recorded: Vec<Recorded>,
    pub(crate) dequeued: Dequeued,
}

/// A run that failed and will not run again (or was stopped).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) exc_info: String,
    /// The job's own; RQ's default when `None`, and then its results do not expire.
    pub(crate) failure_ttl: Option<Ttl>,
    /// Stopped by a command rather than failed: status `stopped`, and its dependents stay
    /// deferred.
    pub(crate) stopped: bool,
}

/// A run that failed and runs again.
#[derive(Debug)]
pub(crate) struct Retried {
    pub(crate) exc_info: String,
    /// Seconds until it runs again (0: back on its queue at once).
    pub(crate) delay: u64,
    /// Back at the head of its queue.
    pub(crate) at_front: bool,
}

/// What a call that records a run's outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Recorded by this call.
    Now,
    /// Recorded already, by an earlier call for the same run whose reply was lost.
    Before,
    /// Refused, nothing written: the run is no longer the job's (it was recovered, and maybe
    /// handed out again), or the job is gone.
    Refused,
}

/// Wakes a worker that waits for work: a backend's watch tasks look at the queues while
/// `waiting` is true, and notify `ready` when one may hold a job.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) waiting: watch::Receiver<bool>,
    pub(crate) ready: Arc<Notify>,
}

/// The control commands sent to one worker, as they arrive; an `Err` is a message that is not
/// a command (its text, for the log). The stream ends when the backend's connection drops.
pub(crate) type Commands =
    Pin<Box<dyn futures_util::Stream<Item = Result<Command, String>> + Send>>;

/// What acquiring a queue's scheduler lock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// The lock was free and is now this scheduler's.
    Acquired,
    /// This scheduler held it; its TTL starts again.
    Refreshed,
    /// Another scheduler holds it.
    Taken,
}

impl Lock {
    /// Whether this scheduler holds the lock now.
    pub(crate) fn is_held(self) -> bool {
        self != Lock::Taken
    }
}

/// A scheduler as it registers itself (RQ's `RQScheduler.to_dict()`).
#[derive(Debug)]
pub(crate) struct SchedulerRecord<'a> {
    pub(crate) name: &'a str,
    pub(crate) hostname: &'a str,
    pub(crate) pid: u32,
    pub(crate) queues: &'a [String],
    pub(crate) created_at: DateTime<Utc>,
}

/// How many replicas must acknowledge an enqueue, and how long to wait for them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replicas {
    pub(crate) count: usize,
    pub(crate) timeout: Duration,
}

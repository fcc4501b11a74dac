//! RQ's numbers, once: the defaults a job or a worker gets when it does not say, as Python RQ
//! 2.12 has them (`rq/defaults.py`, `Queue.DEFAULT_TIMEOUT`), so that a job behaves the same on
//! either side. Backends take them as arguments; none spells them again.

use std::time::Duration;

use crate::ttl::{Timeout, Ttl};

/// How long a job may run when it does not say (RQ's `Queue.DEFAULT_TIMEOUT`, written into
/// every job that has none, as Python's `Queue` does).
pub const DEFAULT_JOB_TIMEOUT: Timeout = Timeout::seconds(180);

/// How long a success is kept when neither the job nor the worker says (RQ's
/// `DEFAULT_RESULT_TTL`).
pub const DEFAULT_RESULT_TTL: Ttl = Ttl::seconds(500);

/// How long a failure is kept when the job does not say: one year (RQ's
/// `DEFAULT_FAILURE_TTL`). Without an explicit `failure_ttl` the job's results do not expire.
pub const DEFAULT_FAILURE_TTL: Ttl = Ttl::seconds(31_536_000);

/// How long a worker's registration outlives its last heartbeat, less [`WORKER_TTL_GRACE`]
/// (RQ's `DEFAULT_WORKER_TTL`).
pub const DEFAULT_WORKER_TTL: Duration = Duration::from_secs(420);

/// What RQ adds to a worker's TTL, and to a run's deadline for the set of its executions.
pub(crate) const WORKER_TTL_GRACE: Duration = Duration::from_secs(60);

/// How long a callback may run when it does not say (RQ's `CALLBACK_TIMEOUT`).
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a webhook's request may take when it does not say (RQ 2.10's `Webhook`).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// About how many results are kept per job (RQ's stream is capped at ten, approximately).
pub(crate) const RESULTS_KEPT: usize = 10;

/// The longest TTL rqrs sets, 100 years: a `result_ttl` or `failure_ttl` past Redis's EXPIRE
/// range would stop a script half-way, so larger values are refused at enqueue and clamped to
/// this when another producer wrote them.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(3_153_600_000);

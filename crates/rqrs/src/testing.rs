//! Hooks for rqrs's own tests (feature `testing`): they put a store into the states that faults
//! leave behind (a worker killed mid-run, a TTL that ran out, a registration that expired),
//! through whatever backend the connection is on, so that one test of the behaviour that
//! follows runs on every backend. Not for applications.

use chrono::{DateTime, Utc};

use crate::Connection;
use crate::backend::types::{Dequeued, Liveness, new_execution_ids};
use crate::backend::{RunStore, TestHooks};
use crate::defaults::DEFAULT_WORKER_TTL;
use crate::error::{Error, Result};
use crate::job::JobId;

/// The name of the worker that [`abandon_next_run`] pretends was killed.
pub const DEAD_WORKER: &str = "dead-worker";

/// As a worker killed just after it took a job leaves it: the next job of `queue` is dequeued
/// (off its queue, into the started registry with an execution, status `started`) by a worker
/// that is gone, and its run's deadline is moved to `deadline` (in the past: the run is
/// abandoned; in the future: its worker is presumed alive). Returns the job's id.
///
/// # Errors
/// [`Error::Invalid`] when the queue holds no job; a backend error.
pub async fn abandon_next_run(
    conn: &Connection,
    queue: &str,
    deadline: DateTime<Utc>,
) -> Result<JobId> {
    let backend = conn.backend();
    let liveness = Liveness {
        execution_ttl: std::time::Duration::from_secs(60),
        worker_ttl: DEFAULT_WORKER_TTL,
    };
    let worked = backend
        .work(
            DEAD_WORKER,
            &[],
            &[queue.to_owned()],
            &new_execution_ids(1),
            liveness,
        )
        .await?;
    let Dequeued::Jobs(mut started) = worked.dequeued else {
        return Err(Error::invalid("abandon_next_run", "workers are suspended"));
    };
    let started = started
        .pop()
        .ok_or_else(|| Error::invalid("abandon_next_run", format!("queue {queue:?} is empty")))?;
    backend
        .set_run_deadline(&started.execution.run, deadline)
        .await?;
    Ok(started.job.id)
}

/// As if the job's TTL had run out: the job itself is gone, while the ids that queues,
/// registries and groups hold of it stay until something cleans them.
///
/// # Errors
/// A backend error.
pub async fn expire_job(conn: &Connection, id: &JobId) -> Result<()> {
    conn.backend().expire_job(id).await
}

/// As if the worker's registration had expired (its heartbeats stopped for its TTL): the
/// worker is no longer registered, though it may still be alive.
///
/// # Errors
/// A backend error.
pub async fn expire_worker(conn: &Connection, name: &str) -> Result<()> {
    conn.backend().expire_worker(name).await
}

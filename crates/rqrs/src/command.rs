//! Control commands to running workers: stop a job, kill what a worker runs, shut a worker
//! down. They are RQ's (`send_shutdown_command`, `send_kill_horse_command`,
//! `send_stop_job_command`), so either side can command the other's workers; the backend
//! carries them (on Redis, RQ's pub/sub channel and JSON messages).

use crate::Connection;
use crate::backend::WorkerStore;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};

/// A command to a running worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Stop after the running jobs (a warm shutdown).
    Shutdown,
    /// Interrupt every running job; each ends as failed.
    KillHorse,
    /// Interrupt this job if it runs there; it ends as `stopped`.
    StopJob(JobId),
}

/// Asks the worker called `worker` to stop after its running jobs (a warm shutdown). Returns
/// whether a worker listened.
///
/// # Errors
/// A backend error.
pub async fn send_shutdown_command(conn: &Connection, worker: &str) -> Result<bool> {
    Ok(conn.backend().publish(worker, &Command::Shutdown).await? > 0)
}

/// Kills what the worker called `worker` runs now: its jobs end as failed (RQ's "kill the
/// horse"), and are retried if their policy says so. Returns whether a worker listened.
///
/// # Errors
/// A backend error.
pub async fn send_kill_horse_command(conn: &Connection, worker: &str) -> Result<bool> {
    Ok(conn.backend().publish(worker, &Command::KillHorse).await? > 0)
}

/// Stops a running job: it ends with status `stopped`, in the failed registry, and its
/// `on_stopped` callback runs. Returns whether its worker listened.
///
/// # Errors
/// [`Error::NoSuchJob`]; [`Error::Invalid`] if no worker runs the job; a backend error.
pub async fn send_stop_job_command(conn: &Connection, id: &JobId) -> Result<bool> {
    let job = Job::fetch(conn, id).await?;
    let worker = job.worker_name().ok_or_else(|| {
        Error::invalid("stop-job", format!("job {id} is not running on a worker"))
    })?;
    let command = Command::StopJob(id.clone());
    Ok(conn.backend().publish(worker, &command).await? > 0)
}

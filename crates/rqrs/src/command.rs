//! Control commands to running workers over Redis pub/sub, the same messages as Python RQ's
//! `send_shutdown_command`, `send_kill_horse_command` and `send_stop_job_command`, so either
//! side can command the other's workers.

use serde_json::json;

use crate::Connection;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};

/// Asks the worker called `worker` to stop after its running jobs (a warm shutdown). Returns
/// whether a worker listened.
///
/// # Errors
/// A backend error.
pub async fn send_shutdown_command(conn: &Connection, worker: &str) -> Result<bool> {
    Ok(conn
        .backend()
        .publish_command(worker, &json!({"command": "shutdown"}))
        .await?
        > 0)
}

/// Kills what the worker called `worker` runs now: its jobs end as failed (RQ's "kill the
/// horse"), and are retried if their policy says so. Returns whether a worker listened.
///
/// # Errors
/// A backend error.
pub async fn send_kill_horse_command(conn: &Connection, worker: &str) -> Result<bool> {
    Ok(conn
        .backend()
        .publish_command(worker, &json!({"command": "kill-horse"}))
        .await?
        > 0)
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
    let command = json!({"command": "stop-job", "job_id": id.as_str()});
    Ok(conn.backend().publish_command(worker, &command).await? > 0)
}

//! Control commands to running workers: stop a job or one run of it, kill what a worker runs,
//! shut a worker down. They are RQ's (`send_shutdown_command`, `send_kill_horse_command`,
//! `send_stop_job_command`, and RQ 3.0's `send_stop_execution_command`), so either side can
//! command the other's workers; the backend carries them (on Redis, RQ's pub/sub channel and
//! JSON messages). `stop-job` is what every worker understands (RQ 2.12, RQ 3.0, rqrs), so
//! stopping a job sends that.

use serde_json::{Value, json};

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
    /// Interrupt this run (job id, execution id) if it runs there (RQ 3.0's command); it ends
    /// as `stopped`.
    StopExecution(JobId, String),
}

impl Command {
    /// The command as RQ's JSON message: `{"command": "shutdown"}`, `{"command": "kill-horse"}`
    /// or `{"command": "stop-job", "job_id": "<id>"}`. Every backend carries this text.
    pub(crate) fn encode(&self) -> String {
        match self {
            Command::Shutdown => json!({"command": "shutdown"}),
            Command::KillHorse => json!({"command": "kill-horse"}),
            Command::StopJob(id) => json!({"command": "stop-job", "job_id": id.as_str()}),
            Command::StopExecution(id, execution_id) => json!({
                "command": "stop-execution",
                "job_id": id.as_str(),
                "execution_id": execution_id,
            }),
        }
        .to_string()
    }

    /// A command from its JSON message, or what is wrong with the message.
    pub(crate) fn decode(text: &str) -> std::result::Result<Command, String> {
        let message: Value =
            serde_json::from_str(text).map_err(|error| format!("{text:?} is not JSON: {error}"))?;
        match message.get("command").and_then(Value::as_str) {
            Some("shutdown") => Ok(Command::Shutdown),
            Some("kill-horse") => Ok(Command::KillHorse),
            Some("stop-job") => match message.get("job_id").and_then(Value::as_str) {
                // An id a worker runs was read as stored, so it is taken as it is.
                Some(id) => Ok(Command::StopJob(JobId::from_stored(id))),
                None => Err(format!("{text:?}: a stop-job command without a job_id")),
            },
            Some("stop-execution") => match (
                message.get("job_id").and_then(Value::as_str),
                message.get("execution_id").and_then(Value::as_str),
            ) {
                (Some(id), Some(execution_id)) => Ok(Command::StopExecution(
                    JobId::from_stored(id),
                    execution_id.to_owned(),
                )),
                _ => Err(format!(
                    "{text:?}: a stop-execution command needs a job_id and an execution_id"
                )),
            },
            _ => Err(format!("{text:?} is not a command rqrs knows")),
        }
    }
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

/// Stops one run of a job (RQ 3.0's `send_stop_execution_command`): it ends with status
/// `stopped`, as [`send_stop_job_command`] does, if that run is still the one running. Returns
/// whether the run's worker listened.
///
/// # Errors
/// [`Error::Invalid`] if the run is not running on a worker; a backend error.
pub async fn send_stop_execution_command(
    conn: &Connection,
    id: &JobId,
    execution_id: &str,
) -> Result<bool> {
    // A job runs once at a time, on the worker its hash names; that worker stops the run only
    // if it is still this one.
    let job = Job::fetch(conn, id).await?;
    let worker = job.worker_name().ok_or_else(|| {
        Error::invalid(
            "stop-execution",
            format!("run {execution_id} of job {id} is not running on a worker"),
        )
    })?;
    let command = Command::StopExecution(id.clone(), execution_id.to_owned());
    Ok(conn.backend().publish(worker, &command).await? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_in_rqs_words() {
        let stop = Command::StopJob(JobId::from_stored("a.b"));
        let stop_run = Command::StopExecution(JobId::from_stored("a.b"), "e1".to_owned());
        for command in [Command::Shutdown, Command::KillHorse, stop, stop_run] {
            assert_eq!(Command::decode(&command.encode()), Ok(command));
        }
        assert_eq!(Command::KillHorse.encode(), r#"{"command":"kill-horse"}"#);
        assert!(Command::decode("nope").unwrap_err().contains("not JSON"));
        assert!(
            Command::decode(r#"{"command": "stop-job"}"#)
                .unwrap_err()
                .contains("job_id")
        );
        assert!(
            Command::decode(r#"{"command": "dance"}"#)
                .unwrap_err()
                .contains("not a command")
        );
    }
}

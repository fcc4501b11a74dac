//! The worker's control channel: RQ's commands, from Python's `send_*_command` or rqrs's.
//! `shutdown` is a warm stop; `kill-horse` interrupts every running job (each ends as failed);
//! `stop-job` interrupts that job if it runs here (it ends as `stopped`). An interrupted job's
//! call is dropped, which cancels an async function and, under process isolation, kills the
//! job's work horse. The subscription is made again whenever the backend's connection drops.

use std::sync::Arc;

use futures_util::StreamExt;

use super::{Interrupt, Shared, ShutdownHandle, backoff};
use crate::backend::WorkerStore;
use crate::command::Command;

/// Listens for commands until the worker stops.
pub(super) async fn listen(shared: Arc<Shared>, shutdown: ShutdownHandle) {
    let mut failures = 0u32;
    loop {
        match shared.conn.backend().commands(&shared.name).await {
            Ok(mut commands) => {
                failures = 0;
                while let Some(command) = commands.next().await {
                    match command {
                        Ok(command) => apply(&shared, &shutdown, &command),
                        Err(text) => {
                            tracing::warn!(%text, "ignoring a control message that is not a command")
                        }
                    }
                }
                tracing::warn!("the control channel dropped; subscribing again");
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to the control channel"),
        }
        failures += 1;
        tokio::time::sleep(backoff(failures)).await;
    }
}

fn apply(shared: &Shared, shutdown: &ShutdownHandle, command: &Command) {
    match command {
        Command::Shutdown => {
            tracing::info!("shutdown command: finishing running jobs, then stopping");
            shutdown.warm();
        }
        Command::KillHorse => {
            tracing::info!("kill-horse command: interrupting every running job");
            for run in shared.running().values() {
                run.interrupt.send_replace(Some(Interrupt::Kill));
            }
        }
        Command::StopJob(job) => {
            let running = shared.running();
            match running
                .values()
                .find(|run| run.execution.run.job_id == *job)
            {
                Some(run) => {
                    tracing::info!(%job, "stop-job command: stopping the job");
                    run.interrupt.send_replace(Some(Interrupt::Stop));
                }
                None => tracing::info!(%job, "stop-job command for a job not running here"),
            }
        }
        Command::StopExecution(job, execution_id) => {
            let running = shared.running();
            match running.values().find(|run| {
                run.execution.run.job_id == *job && run.execution.run.execution_id == *execution_id
            }) {
                Some(run) => {
                    tracing::info!(%job, execution_id, "stop-execution command: stopping the run");
                    run.interrupt.send_replace(Some(Interrupt::Stop));
                }
                None => tracing::info!(
                    %job,
                    execution_id,
                    "stop-execution command for a run not running here"
                ),
            }
        }
    }
}

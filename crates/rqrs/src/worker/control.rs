//! The worker's control channel `rq:pubsub:<name>`: RQ's JSON commands, from Python's
//! `send_*_command` or rqrs's. `shutdown` is a warm stop; `kill-horse` interrupts every running
//! job (each ends as failed); `stop-job` interrupts that job if it runs here (it ends as
//! `stopped`). An interrupted job's call is dropped, which cancels an async function and, under
//! process isolation, kills the job's work horse. The subscription is made again whenever the
//! connection drops.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;

use super::{Interrupt, Shared, ShutdownHandle, backoff};

/// Listens for commands until the worker stops.
pub(super) async fn listen(shared: Arc<Shared>, shutdown: ShutdownHandle) {
    let mut failures = 0u32;
    loop {
        match shared.conn.backend().commands(&shared.name).await {
            Ok(commands) => {
                failures = 0;
                let mut commands = std::pin::pin!(commands);
                while let Some(command) = commands.next().await {
                    apply(&shared, &shutdown, &command);
                }
                tracing::warn!("the control channel dropped; subscribing again");
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to the control channel"),
        }
        failures += 1;
        tokio::time::sleep(backoff(failures)).await;
    }
}

fn apply(shared: &Shared, shutdown: &ShutdownHandle, text: &str) {
    let Ok(command) = serde_json::from_str::<Value>(text) else {
        tracing::warn!(%text, "ignoring a control message that is not JSON");
        return;
    };
    match command.get("command").and_then(Value::as_str) {
        Some("shutdown") => {
            tracing::info!("shutdown command: finishing running jobs, then stopping");
            shutdown.warm();
        }
        Some("kill-horse") => {
            tracing::info!("kill-horse command: interrupting every running job");
            for run in shared.running().values() {
                run.interrupt.send_replace(Some(Interrupt::Kill));
            }
        }
        Some("stop-job") => {
            let job_id = command
                .get("job_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let running = shared.running();
            let run = running
                .values()
                .find(|run| run.execution.job_id.as_str() == job_id);
            match run {
                Some(run) => {
                    tracing::info!(job = %job_id, "stop-job command: stopping the job");
                    run.interrupt.send_replace(Some(Interrupt::Stop));
                }
                None => {
                    tracing::info!(job = %job_id, "stop-job command for a job not running here")
                }
            }
        }
        _ => tracing::warn!(%text, "ignoring an unknown control command"),
    }
}

//! Keeping the worker and its runs alive: heartbeats (the worker's registration, and per running
//! execution its deadline) and the [maintenance](super::maintenance) that finds runs abandoned
//! by dead workers. They run on a thread of their own, with their own async runtime and their
//! own connection, so that job code cannot starve them: a blocking job holds a blocking-pool
//! thread, and an async job that never yields holds a runtime thread, but neither holds this
//! one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::{Shared, WorkerInfo, WorkerState, maintenance};
use crate::Connection;
use crate::backend::types::Execution;
use crate::backend::{RunStore, WorkerStore};

/// How often a worker tries to clean its queues' registries: as often as the fleet cleans a
/// queue ([`maintenance::INTERVAL`]), so that a queue is cleaned that often however many of its
/// workers have died.
const MAINTENANCE_INTERVAL: Duration = maintenance::INTERVAL;

/// The liveness thread of a worker.
#[derive(Debug)]
pub(super) struct Thread {
    stop: watch::Sender<bool>,
    stopped: oneshot::Receiver<()>,
}

impl Thread {
    /// Starts heartbeats every `interval` and maintenance every [`MAINTENANCE_INTERVAL`].
    pub(super) fn start(shared: Arc<Shared>, interval: Duration, info: WorkerInfo) -> Self {
        let (stop, mut stopping) = watch::channel(false);
        let (done, stopped) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("rqrs-liveness".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the liveness thread's runtime");
                        return;
                    }
                };
                runtime.block_on(async {
                    tokio::select! {
                        () = beat(&shared, interval, &info) => {}
                        _ = stopping.wait_for(|stop| *stop) => {}
                    }
                });
                let _ = done.send(());
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the liveness thread");
        }
        Thread { stop, stopped }
    }

    /// Stops the thread and waits for it (a bounded while: it may be in a Redis call).
    pub(super) async fn stop(self) {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stopped).await;
    }
}

/// The heartbeat and maintenance loop, on a connection of the liveness thread.
async fn beat(shared: &Shared, interval: Duration, info: &WorkerInfo) {
    let conn = loop {
        match shared.conn.detached().await {
            Ok(conn) => break conn,
            Err(error) => {
                tracing::warn!(%error, "the liveness thread cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let tick = interval.min(MAINTENANCE_INTERVAL);
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Measured from the ticks' own instants, not from when their work ended: a heartbeat that
    // took a few milliseconds must not push the next one a whole tick later. The first tick is
    // now (registration was the first heartbeat).
    let mut last_beat = ticks.tick().await;
    let mut last_maintenance = last_beat;
    // After an outage longer than the deadline every run in the started registry looks
    // abandoned, the live ones too. So maintenance waits one deadline after the first heartbeat
    // that lands again: every live worker refreshes its runs meanwhile, and only the runs of
    // workers that are gone are still past their deadline when it looks.
    let deadline = shared.liveness.execution_ttl;
    let mut in_outage = false;
    let mut hold_maintenance_until = None;
    maintenance::maintain(&conn, &shared.queues).await;
    loop {
        let now = ticks.tick().await;
        // The heartbeat first: this worker's own live runs are refreshed before its maintenance
        // could take them for abandoned.
        if now.duration_since(last_beat) >= interval {
            last_beat = now;
            let landed = heartbeat(shared, &conn, info).await;
            if landed && in_outage {
                tracing::info!(hold = ?deadline, "heartbeats land again; maintenance waits one deadline");
                hold_maintenance_until = Some(tokio::time::Instant::now() + deadline);
            }
            in_outage = !landed;
        }
        let held = hold_maintenance_until.is_some_and(|until| tokio::time::Instant::now() < until);
        if !in_outage && !held && now.duration_since(last_maintenance) >= MAINTENANCE_INTERVAL {
            last_maintenance = now;
            maintenance::maintain(&conn, &shared.queues).await;
        }
    }
}

/// One heartbeat; returns whether it landed.
async fn heartbeat(shared: &Shared, conn: &Connection, info: &WorkerInfo) -> bool {
    let backend = conn.backend();
    let running: Vec<Execution> = shared
        .running()
        .values()
        .map(|run| run.execution.clone())
        .collect();
    match backend
        .heartbeat(&shared.name, &running, shared.liveness)
        .await
    {
        Ok(reply) => {
            for execution_id in reply.lost {
                tracing::warn!(execution = %execution_id, "a running job was recovered by someone else; its outcome will not be recorded");
            }
            if reply.worker_missing {
                tracing::warn!("the worker hash had expired; registering again");
                let mut info = info.clone();
                info.state = if running.is_empty() {
                    WorkerState::Idle
                } else {
                    WorkerState::Busy
                };
                if let Err(error) = backend.reregister_worker(&info, shared.liveness).await {
                    tracing::warn!(%error, "could not register the worker again");
                }
            }
            true
        }
        Err(error) => {
            tracing::warn!(%error, "heartbeat failed");
            false
        }
    }
}

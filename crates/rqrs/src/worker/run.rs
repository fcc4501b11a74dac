//! Running one job: find its function, call it under the job's context and timeout, run its
//! callbacks, let [`outcome`](super::outcome) decide between finish, retry and fail, and
//! record that in one step. Whatever the job's data holds, the outcome is a success or a
//! failure with a reason; the worker itself never fails because of a job.

use std::sync::Arc;

use serde_json::{Map, Value};

use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_util::task::AbortOnDropHandle;

use super::outcome::{self, Outcome, STOPPED};
use super::{Interrupt, Shared, webhook};
use crate::backend::RunStore;
use crate::backend::types::{
    Ending, Execution, Failed, Finishing, JobRecord, Recorded, Retried, Started,
};
use crate::context::{ContextParts, JobContext};
use crate::error::JobError;
use crate::functions::Handler;
use crate::job::{Callback, WebhookStatus};
use crate::ttl::Timeout;

/// Runs a started job to its recorded outcome. The run holds its worker's slot, `permit`,
/// until then (a success hands it to the dequeue loop, which fills it again at once).
pub(super) async fn run(
    shared: &Shared,
    started: Started,
    mut interrupted: watch::Receiver<Option<Interrupt>>,
    permit: Option<OwnedSemaphorePermit>,
) {
    let Started { mut job, execution } = started;
    // The arguments and meta move out of the job, which the rest of the run (the outcome, the
    // webhooks) reads only for its id, function name, times and lifecycle: one copy for the
    // context, the originals for the call.
    let (args, kwargs) = match &mut job.call {
        Ok(call) => (
            std::mem::take(&mut call.args),
            std::mem::take(&mut call.kwargs),
        ),
        Err(_) => Default::default(),
    };
    let ctx = JobContext::new(ContextParts {
        conn: shared.conn.clone(),
        id: job.id.clone(),
        origin: job.origin.clone(),
        worker_name: shared.name.clone(),
        execution_id: execution.run.execution_id.clone(),
        args: args.clone(),
        kwargs: kwargs.clone(),
        meta: std::mem::take(&mut job.meta),
    });
    let mut stopped = false;
    let result = match &job.call {
        Err(reason) => Err(JobError::abort(reason.clone())),
        Ok(call) => match shared.functions.get(&call.func_name) {
            None => Err(JobError::abort(format!(
                "unknown function {:?}: this worker runs {}",
                call.func_name,
                shared.functions.names().join(", ")
            ))),
            Some(handler) => {
                let timeout = job.timeout.unwrap_or(shared.default_job_timeout);
                let call = call_with_timeout(
                    shared,
                    &call.func_name,
                    handler.clone(),
                    ctx.clone(),
                    args,
                    kwargs,
                    timeout,
                );
                // An interrupt drops the call, which aborts an async function and kills a work
                // horse (in-process, a blocking function runs on, detached, as after a timeout).
                // Whichever ends first decides: a job that finished as the stop came is
                // recorded as finished.
                tokio::select! {
                    result = call => result,
                    Ok(interrupt) = interrupted.wait_for(Option::is_some) => match *interrupt {
                        Some(Interrupt::Stop) => {
                            stopped = true;
                            Err(JobError::abort(STOPPED))
                        }
                        _ => Err(JobError::new("Work-horse terminated unexpectedly: killed by a kill-horse command")),
                    },
                }
            }
        },
    };
    let outcome = if stopped {
        let mut exc_info = STOPPED.to_owned();
        if let Err(reason) =
            run_callback(shared, &ctx, job.lifecycle.on_stopped.as_ref(), Vec::new).await
        {
            tracing::warn!(job = %job.id, %reason);
            exc_info.push_str("\n\n");
            exc_info.push_str(&reason);
        }
        outcome::stopped(&job, exc_info)
    } else {
        after_callbacks(shared, &job, &ctx, result).await
    };
    record(shared, &job, &execution, outcome, permit).await;
    shared
        .ended
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    shared.running().remove(&execution.run.execution_id);
}

/// Runs the job's callbacks and decides what to record, as RQ does: a success whose
/// `on_success` callback fails is a failure; every failure runs `on_failure` (whose own error
/// is added to the record).
async fn after_callbacks(
    shared: &Shared,
    job: &JobRecord,
    ctx: &JobContext,
    result: Result<Value, JobError>,
) -> Outcome {
    let lifecycle = &job.lifecycle;
    let error = match result {
        Ok(value) => match run_callback(shared, ctx, lifecycle.on_success.as_ref(), || {
            vec![value.clone()]
        })
        .await
        {
            Ok(()) => return outcome::success(job, value, shared.default_result_ttl),
            Err(reason) => JobError::new(reason),
        },
        Err(error) => error,
    };
    let mut exc_info = error.to_exc_info();
    tracing::info!(job = %job.id, error = %error, "job failed");
    if let Err(reason) = run_callback(shared, ctx, lifecycle.on_failure.as_ref(), || {
        vec![Value::String(exc_info.clone())]
    })
    .await
    {
        tracing::warn!(job = %job.id, %reason);
        exc_info.push_str("\n\n");
        exc_info.push_str(&reason);
    }
    outcome::failure(job, exc_info, error.kind()).into()
}

/// Records the run's outcome, trying again through short outages, then sends its webhooks.
async fn record(
    shared: &Shared,
    job: &JobRecord,
    execution: &Execution,
    outcome: Outcome,
    mut permit: Option<OwnedSemaphorePermit>,
) {
    let backend = shared.conn.backend();
    let ending = Ending::Worker {
        name: &shared.name,
        started_at: execution.started_at,
    };
    let outcome = match outcome {
        Outcome::Finish(finished) => Ended::Finish(Arc::new(Finishing {
            execution: execution.clone(),
            finished,
            rate_limit: job.lifecycle.rate_limit.clone(),
            has_dependencies: !job.lifecycle.dependency_ids.is_empty(),
        })),
        Outcome::Retry(retried) => Ended::Retry(retried),
        Outcome::Fail(failed) => Ended::Fail(failed),
    };
    let mut attempt = 0u32;
    loop {
        let recorded = match &outcome {
            Ended::Finish(finishing) => shared.record_success(finishing, permit.take()).await,
            Ended::Retry(retried) => backend.retry(&execution.run, ending, retried).await,
            Ended::Fail(failed) => backend.fail(&execution.run, ending, failed).await,
        };
        match recorded {
            Ok(recorded @ (Recorded::Now | Recorded::Before)) => {
                if recorded == Recorded::Before {
                    tracing::info!(job = %job.id, "the outcome was recorded by the attempt whose reply was lost");
                }
                match &outcome {
                    Ended::Finish(_) => {
                        webhook::spawn_all(&shared.webhooks, job, WebhookStatus::Finished, None);
                    }
                    Ended::Fail(failed) => webhook::spawn_all(
                        &shared.webhooks,
                        job,
                        WebhookStatus::Failed,
                        Some(&failed.exc_info),
                    ),
                    Ended::Retry(_) => {}
                }
                return;
            }
            Ok(Recorded::Refused) => {
                tracing::warn!(job = %job.id, "the job's execution was recovered elsewhere; its outcome is dropped");
                return;
            }
            // The store refuses a second recording of the same execution, so retrying after a
            // lost reply cannot record twice.
            Err(error) if attempt < 8 => {
                attempt += 1;
                let delay = super::backoff(attempt);
                tracing::warn!(job = %job.id, %error, retry_in = ?delay, "recording the outcome failed");
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                tracing::error!(job = %job.id, %error, "could not record the outcome; the job will be recovered as abandoned");
                return;
            }
        }
    }
}

/// An outcome as [`record`] records it: a success goes to the dequeue loop, and is kept for
/// another attempt.
enum Ended {
    Finish(Arc<Finishing>),
    Retry(Retried),
    Fail(Failed),
}

/// Calls a callback by its registered name, with its own timeout, under the job's context;
/// `args` makes its arguments, only when there is a callback. `Err` says what went wrong, for
/// the job's record.
async fn run_callback(
    shared: &Shared,
    ctx: &JobContext,
    callback: Option<&Callback>,
    args: impl FnOnce() -> Vec<Value>,
) -> Result<(), String> {
    let Some(callback) = callback else {
        return Ok(());
    };
    let Some(handler) = shared.functions.get(callback.name()) else {
        return Err(format!(
            "callback {:?} is not a function this worker runs",
            callback.name()
        ));
    };
    call_with_timeout(
        shared,
        callback.name(),
        handler.clone(),
        ctx.clone(),
        args(),
        Map::new(),
        callback.time_limit(),
    )
    .await
    .map(drop)
    .map_err(|error| {
        format!(
            "callback {} failed: {}",
            callback.name(),
            error.to_exc_info()
        )
    })
}

/// Calls the function named `name` (whose `handler` it is), bounded by `timeout`: in a work
/// horse under process isolation, else in this process.
///
/// Leaving this function early, by the timeout or by the worker dropping the call (an
/// interrupt, a cold shutdown), stops the call: an async function is cancelled, a work horse is
/// killed. A blocking function run in-process cannot be stopped, so its thread is left to
/// finish on its own while the job is failed and the slot freed.
#[cfg_attr(
    not(unix),
    expect(
        unused_variables,
        reason = "process isolation, which calls by name, is Unix-only"
    )
)]
async fn call_with_timeout(
    shared: &Shared,
    name: &str,
    handler: Handler,
    ctx: JobContext,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    timeout: Timeout,
) -> Result<Value, JobError> {
    let running = async {
        #[cfg(unix)]
        if let Some(horses) = &shared.horses {
            return horses.call(name, &ctx, args, kwargs).await;
        }
        call(handler, ctx, args, kwargs).await
    };
    match timeout.duration() {
        Some(limit) => tokio::time::timeout(limit, running)
            .await
            .unwrap_or_else(|_| {
                // Retried when the job has retries left, as RQ retries timeouts.
                Err(JobError::new(format!(
                    "JobTimeoutException: Task exceeded maximum timeout value ({} seconds)",
                    limit.as_secs()
                )))
            }),
        None => running.await,
    }
}

/// Calls the function in this process, with `ctx` as [`current_job`](crate::current_job); a
/// panic becomes the job's error. A work horse calls its jobs' functions through this too.
pub(crate) async fn call(
    handler: Handler,
    ctx: JobContext,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value, JobError> {
    let task = match handler {
        Handler::Async(function) => {
            let future = function(ctx.clone(), args, kwargs)?;
            tokio::spawn(ctx.scope(future))
        }
        Handler::Blocking(function) => tokio::task::spawn_blocking(move || {
            let scoped = ctx.clone();
            scoped.scope_blocking(|| function(ctx, args, kwargs))
        }),
    };
    match AbortOnDropHandle::new(task).await {
        Ok(outcome) => outcome,
        Err(error) if error.is_panic() => {
            let panic = error.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_owned());
            Err(JobError::new(format!(
                "the job function panicked: {message}"
            )))
        }
        Err(error) => Err(JobError::abort(format!("the job was cancelled: {error}"))),
    }
}

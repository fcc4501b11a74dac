//! Running one job: find its function, call it under the job's context and timeout, record the
//! outcome. Whatever the job's data holds, the outcome is a success or a failure with a reason;
//! the worker itself never fails because of a job.

use std::time::Duration;

use serde_json::Value;

use super::Shared;
use crate::backend::redis::{DEFAULT_TIMEOUT, Started};
use crate::context::{ContextParts, JobContext};
use crate::error::JobError;
use crate::functions::Handler;
use crate::job::{Call, JobStatus};

/// Runs a started job to its recorded outcome.
pub(super) async fn run(shared: &Shared, started: Started) {
    let Started { job, execution } = started;
    let outcome = match job.call.clone() {
        Err(reason) => Err(JobError::abort(reason)),
        Ok(call) => match shared.functions.get(&call.func_name) {
            None => Err(JobError::abort(format!(
                "unknown function {:?}: this worker runs {}",
                call.func_name,
                shared.functions.names().join(", ")
            ))),
            Some(handler) => {
                let ctx = JobContext::new(ContextParts {
                    conn: shared.conn.clone(),
                    id: job.id.clone(),
                    origin: job.origin.clone(),
                    worker_name: shared.name.clone(),
                    execution_id: execution.execution_id.clone(),
                    args: call.args.clone(),
                    kwargs: call.kwargs.clone(),
                    meta: job.meta.clone(),
                });
                call_with_timeout(
                    handler.clone(),
                    ctx,
                    call,
                    job.timeout.unwrap_or(DEFAULT_TIMEOUT),
                )
                .await
            }
        },
    };
    let backend = shared.conn.backend();
    let mut attempt = 0u32;
    loop {
        let recorded = match &outcome {
            Ok(value) => {
                let ttl = job.result_ttl.unwrap_or(shared.default_result_ttl);
                backend.finish(&execution, &shared.name, ttl, value).await
            }
            Err(error) => {
                tracing::info!(job = %job.id, error = %error, "job failed");
                backend
                    .fail(
                        &execution,
                        &shared.name,
                        job.failure_ttl,
                        &error.to_exc_info(),
                        JobStatus::Failed,
                    )
                    .await
            }
        };
        match recorded {
            Ok(true) => break,
            Ok(false) => {
                tracing::warn!(job = %job.id, "the job's execution was recovered elsewhere; its outcome is dropped");
                break;
            }
            // The scripts refuse a second recording of the same execution, so retrying after a
            // lost reply cannot record twice.
            Err(error) if attempt < 8 => {
                attempt += 1;
                let delay = super::backoff(attempt);
                tracing::warn!(job = %job.id, %error, retry_in = ?delay, "recording the outcome failed");
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                tracing::error!(job = %job.id, %error, "could not record the outcome; the job will be recovered as abandoned");
                break;
            }
        }
    }
    shared.running().remove(&execution.execution_id);
}

/// Calls the function, bounded by the job's timeout in seconds (`-1`: none). An async function
/// is cancelled at its deadline; a blocking one cannot be, so its thread is left to finish on
/// its own while the job is failed and the slot freed.
async fn call_with_timeout(
    handler: Handler,
    ctx: JobContext,
    call: Call,
    timeout: i64,
) -> Result<Value, JobError> {
    let Call { args, kwargs, .. } = call;
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
    // Leaving this function, by a timeout or by the worker aborting the job (a cold
    // shutdown), stops an async function too.
    let _abort = AbortOnDrop(task.abort_handle());
    let joined = match u64::try_from(timeout) {
        Ok(seconds) => match tokio::time::timeout(Duration::from_secs(seconds), task).await {
            Ok(joined) => joined,
            Err(_) => {
                return Err(JobError::abort(format!(
                    "JobTimeoutException: Task exceeded maximum timeout value ({seconds} seconds)"
                )));
            }
        },
        Err(_) => task.await,
    };
    match joined {
        Ok(outcome) => outcome,
        Err(error) if error.is_panic() => {
            let panic = error.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_owned());
            Err(JobError::abort(format!(
                "the job function panicked: {message}"
            )))
        }
        Err(error) => Err(JobError::abort(format!("the job was cancelled: {error}"))),
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

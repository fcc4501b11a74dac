//! Maintenance, as RQ's workers do it for their queues (`clean_registries`): the runs whose
//! worker stopped heartbeating are recovered (retried while retries are left, else failed, as
//! [`outcome::abandoned`] decides), finished and failed entries past their time are dropped,
//! and the groups lose the ids of jobs that are gone. One process at a time cleans a queue,
//! under the queue's maintenance lock.

use std::time::Duration;

use chrono::Utc;

use super::outcome::{self, Failure};
use crate::Connection;
use crate::backend::types::{Ending, Recorded};
use crate::backend::{GroupStore, JobStore, RegistryStore, RunStore};
use crate::error::{Error, Result};
use crate::registry::{self, RegistryKind};

/// How long a queue's maintenance lock is held at most. RQ holds it for up to 899 s; rqrs's
/// cleanup takes well under a second, so ten seconds is plenty, and a worker that dies holding
/// it delays the recovery of the queue's abandoned runs by ten seconds at most. A cleanup that
/// outlasts it is safe: a second one may start, and every step checks again what it changes.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often each queue is cleaned, by whichever worker takes its lock first: once done, the
/// lock is held this long more, so that the fleet cleans a queue every two seconds, not each
/// of its workers (RQ: every 600 s per worker). Runs abandoned by dead workers are found within
/// this interval of their deadline.
pub(super) const INTERVAL: Duration = Duration::from_secs(2);

/// Cleans the registries of `queues`, then (if it cleaned any queue) the groups. Errors are
/// logged; the next round tries again.
pub(super) async fn maintain(conn: &Connection, queues: &[String]) {
    let mut maintained = false;
    for queue in queues {
        match clean_queue(conn, queue).await {
            Ok(Some(cleaned)) => {
                maintained = true;
                if cleaned > 0 {
                    tracing::info!(%queue, cleaned, "registries cleaned");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%queue, %error, "registry maintenance failed"),
        }
    }
    // As RQ: the groups and the rate limits are looked after once per maintenance, after the
    // queues.
    if maintained {
        match conn.backend().clean_groups().await {
            Ok(cleaned) if cleaned > 0 => tracing::info!(cleaned, "groups cleaned"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "group maintenance failed"),
        }
        match conn.backend().clean_rate_limits().await {
            Ok(freed) if freed > 0 => tracing::info!(freed, "leaked rate-limit slots given back"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "rate-limit maintenance failed"),
        }
    }
}

/// Cleans a queue's registries under its maintenance lock; returns how many entries went, or
/// `None` when another process holds the lock.
async fn clean_queue(conn: &Connection, queue: &str) -> Result<Option<usize>> {
    let backend = conn.backend();
    if !backend.lock_maintenance(queue, LOCK_TTL).await? {
        return Ok(None);
    }
    let mut cleaned = 0;
    let mut outcome = Ok(());
    for kind in [
        RegistryKind::Started,
        RegistryKind::Finished,
        RegistryKind::Failed,
    ] {
        match registry::cleanup(conn, kind, queue).await {
            Ok(count) => cleaned += count,
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    backend.unlock_maintenance(queue, INTERVAL).await?;
    outcome.map(|()| Some(cleaned))
}

/// Recovers the runs of `queue` whose deadline passed without a heartbeat, then the jobs a
/// Python worker took off the queue and died before starting; returns how many were recorded
/// or put back. A run whose heartbeat lands meanwhile is left alone (the store checks the
/// deadline again in the same step).
pub(crate) async fn recover_abandoned(conn: &Connection, queue: &str) -> Result<usize> {
    let backend = conn.backend();
    let mut recovered = 0;
    for run in backend.abandoned_runs(queue).await? {
        let job = match backend.fetch_job(&run.job_id).await {
            Ok(job) => job,
            // Its retry settings cannot be read: it is failed.
            Err(Error::MalformedJob { .. }) => None,
            Err(error) => return Err(error),
        };
        let recorded = match outcome::abandoned(job.as_ref(), Utc::now()) {
            Failure::Retry(retried) => backend.retry(&run, Ending::Abandoned, &retried).await?,
            Failure::Fail(failed) => backend.fail(&run, Ending::Abandoned, &failed).await?,
        };
        if recorded == Recorded::Now {
            recovered += 1;
        }
    }
    let put_back = backend.recover_stranded(queue).await?;
    if put_back > 0 {
        tracing::warn!(
            %queue,
            put_back,
            "jobs a worker took off the queue and never started are back on it"
        );
    }
    Ok(recovered + put_back)
}

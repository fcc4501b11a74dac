//! The registries of a queue, RQ's sorted sets of job ids by state: started (`rq:wip:<q>`),
//! finished, failed, deferred, scheduled and canceled (`rq:<state>:<q>`). All share one shape:
//! `count`, `job_ids`, `cleanup`; finished and failed add `remove`, failed adds requeue (at the
//! tail or the head) and `add`.

use crate::Connection;
use crate::backend::RegistryStore;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};

/// Which registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistryKind {
    /// Jobs running now, scored by the deadline after which they count as abandoned.
    Started,
    /// Jobs that succeeded, scored by when their result expires.
    Finished,
    /// Jobs that failed, scored by when the failure expires.
    Failed,
    /// Jobs waiting for their dependencies, scored by when they were deferred.
    Deferred,
    /// Jobs waiting for their time, scored by when they are due.
    Scheduled,
    /// Jobs canceled before they ran, scored by when they were canceled.
    Canceled,
}

impl RegistryKind {
    /// The registry's name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Started => "started",
            RegistryKind::Finished => "finished",
            RegistryKind::Failed => "failed",
            RegistryKind::Deferred => "deferred",
            RegistryKind::Scheduled => "scheduled",
            RegistryKind::Canceled => "canceled",
        }
    }
}

macro_rules! registry {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            conn: Connection,
            queue: String,
        }

        impl $name {
            /// The registry of the queue called `queue`.
            pub fn new(conn: &Connection, queue: impl Into<String>) -> Self {
                $name { conn: conn.clone(), queue: queue.into() }
            }

            /// The queue the registry belongs to.
            pub fn queue(&self) -> &str {
                &self.queue
            }

            /// How many entries the registry holds.
            ///
            /// # Errors
            /// A backend error.
            pub async fn count(&self) -> Result<usize> {
                self.conn.backend().registry_count($kind, &self.queue).await
            }

            /// The ids in the registry, earliest expiry first.
            ///
            /// # Errors
            /// A backend error.
            pub async fn job_ids(&self) -> Result<Vec<JobId>> {
                self.conn.backend().registry_job_ids($kind, &self.queue).await
            }

            /// Drops the entries whose time has passed (see each registry); returns how many.
            ///
            /// # Errors
            /// A backend error.
            pub async fn cleanup(&self) -> Result<usize> {
                cleanup(&self.conn, $kind, &self.queue).await
            }
        }
    };
}

/// Drops the entries of a registry whose time has passed; returns how many went. In the started
/// registry those are runs whose worker stopped heartbeating: each is recovered as the worker's
/// maintenance recovers it (retried while retries are left, else failed as abandoned).
pub(crate) async fn cleanup(conn: &Connection, kind: RegistryKind, queue: &str) -> Result<usize> {
    match kind {
        RegistryKind::Started => crate::worker::recover_abandoned(conn, queue).await,
        RegistryKind::Finished | RegistryKind::Failed => {
            conn.backend().expire_entries(kind, queue).await
        }
        // Scored by a time, not an expiry: nothing there expires (as in RQ).
        RegistryKind::Deferred | RegistryKind::Scheduled | RegistryKind::Canceled => Ok(0),
    }
}

registry!(
    /// Jobs running now (`rq:wip:<q>`). An entry whose deadline passed without a heartbeat
    /// belongs to a dead worker: [`cleanup`](Self::cleanup) moves its job to the failed
    /// registry as abandoned, as RQ does.
    StartedJobRegistry,
    RegistryKind::Started
);
registry!(
    /// Jobs that succeeded and whose result is kept (`rq:finished:<q>`).
    FinishedJobRegistry,
    RegistryKind::Finished
);
registry!(
    /// Jobs that failed (`rq:failed:<q>`), kept for `failure_ttl` (one year by default).
    FailedJobRegistry,
    RegistryKind::Failed
);

registry!(
    /// Jobs waiting for the jobs they depend on (`rq:deferred:<q>`).
    DeferredJobRegistry,
    RegistryKind::Deferred
);
registry!(
    /// Jobs waiting for their time (`rq:scheduled:<q>`); a scheduler enqueues them when due.
    ScheduledJobRegistry,
    RegistryKind::Scheduled
);
registry!(
    /// Jobs canceled before they ran (`rq:canceled:<q>`); never cleaned, as in RQ.
    CanceledJobRegistry,
    RegistryKind::Canceled
);

impl FinishedJobRegistry {
    /// Removes a job from the registry; deletes the job and its results too if `delete_job`.
    /// Returns whether it was there.
    ///
    /// # Errors
    /// A backend error.
    pub async fn remove(&self, id: &JobId, delete_job: bool) -> Result<bool> {
        self.conn
            .backend()
            .registry_remove(RegistryKind::Finished, &self.queue, id, delete_job)
            .await
    }
}

impl FailedJobRegistry {
    /// Removes a job from the registry; deletes the job and its results too if `delete_job`.
    /// Returns whether it was there.
    ///
    /// # Errors
    /// A backend error.
    pub async fn remove(&self, id: &JobId, delete_job: bool) -> Result<bool> {
        self.conn
            .backend()
            .registry_remove(RegistryKind::Failed, &self.queue, id, delete_job)
            .await
    }

    /// Puts a failed job back at the tail of its queue.
    ///
    /// # Errors
    /// [`Error::NotInRegistry`] if it is not in this registry; [`Error::NoSuchJob`] if its
    /// hash expired (the stale entry is dropped); a backend error.
    pub async fn requeue(&self, id: &JobId) -> Result<()> {
        self.requeue_to(id, false).await
    }

    /// Puts a failed job back at the head of its queue, to run next (RQ's `requeue(job,
    /// at_front=True)`).
    ///
    /// # Errors
    /// As [`FailedJobRegistry::requeue`].
    pub async fn requeue_at_front(&self, id: &JobId) -> Result<()> {
        self.requeue_to(id, true).await
    }

    pub(crate) async fn requeue_to(&self, id: &JobId, at_front: bool) -> Result<()> {
        if self
            .conn
            .backend()
            .requeue(&self.queue, id, at_front)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotInRegistry {
                id: id.clone(),
                registry: RegistryKind::Failed.as_str(),
            })
        }
    }

    /// Requeues every job of the registry; returns how many went back to the queue.
    ///
    /// # Errors
    /// A backend error.
    pub async fn requeue_all(&self) -> Result<usize> {
        let mut count = 0;
        for id in self.job_ids().await? {
            match self.requeue(&id).await {
                Ok(()) => count += 1,
                // Gone or taken by someone else meanwhile: nothing to requeue.
                Err(Error::NoSuchJob(_) | Error::NotInRegistry { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(count)
    }

    /// Moves a job that did not fail by running (a queued job, say) to this registry with an
    /// error text, taking it off its queue (RQ's `FailedJobRegistry.add`, once `quarantine`).
    ///
    /// # Errors
    /// [`Error::Invalid`] if the job belongs to another queue; a backend error.
    pub async fn add(&self, job: &Job, exc_info: &str) -> Result<()> {
        if job.origin() != self.queue {
            return Err(Error::invalid(
                "registry",
                format!(
                    "job {} belongs to queue {:?}, not {:?}",
                    job.id(),
                    job.origin(),
                    self.queue
                ),
            ));
        }
        self.conn
            .backend()
            .add_to_failed(job.id(), &self.queue, job.failure_ttl(), exc_info)
            .await
    }
}

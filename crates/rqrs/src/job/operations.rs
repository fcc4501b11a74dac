//! What can be done to a job from outside its runs, as RQ's `Job` offers it: cancel, delete,
//! requeue. Each is one atomic step in the backend.

use super::{Job, JobStatus};
use crate::FailedJobRegistry;
use crate::backend::JobStore;
use crate::error::Result;

impl Job {
    /// Cancels the job (RQ's `cancel()`): its status becomes `canceled`, it leaves its queue and
    /// whichever registry it is in, and it enters its queue's canceled registry. Updates this
    /// value's status too.
    ///
    /// As in RQ, a running job is not stopped (its outcome is not recorded), and the jobs that
    /// depend on it stay deferred.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
    /// let queue = rqrs::Queue::new(&conn, "default");
    /// let mut job = queue.enqueue("tasks.add", (1, 2)).send().await?;
    /// job.cancel().await?;
    /// assert!(job.cancel().await.is_err(), "canceled already");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::AlreadyCanceled`](crate::Error::AlreadyCanceled) if it was canceled already;
    /// [`Error::NoSuchJob`](crate::Error::NoSuchJob) if it is gone; a backend error.
    pub async fn cancel(&mut self) -> Result<()> {
        let record = &mut self.record;
        self.conn
            .backend()
            .cancel(&record.id, &record.origin)
            .await?;
        record.status = JobStatus::Canceled;
        Ok(())
    }

    /// Deletes the job and every trace of it (RQ's `delete()`): its place on its queue or in a
    /// registry, its runs' records, its membership of its group, its hash, its dependency sets
    /// and its results. With `delete_dependents`, the jobs waiting on it are deleted too, and
    /// theirs in turn; without, they stay deferred, as in RQ. Deleting a job that is gone
    /// clears what is left of it.
    ///
    /// # Errors
    /// A backend error.
    pub async fn delete(&self, delete_dependents: bool) -> Result<()> {
        self.conn
            .backend()
            .delete(&self.record.id, &self.record.origin, delete_dependents)
            .await?;
        Ok(())
    }

    /// Puts a failed (or stopped) job back on its queue, at the head with `at_front`, else at
    /// the tail (RQ's `requeue()`, which requeues from the failed registry). Updates this
    /// value's status and clears its start and end ([`Job::refresh`] reads the rest).
    ///
    /// # Errors
    /// [`Error::NotInRegistry`](crate::Error::NotInRegistry) if the job is not in its queue's
    /// failed registry; [`Error::NoSuchJob`](crate::Error::NoSuchJob) if it is gone; a backend
    /// error.
    pub async fn requeue(&mut self, at_front: bool) -> Result<()> {
        let record = &mut self.record;
        let registry = FailedJobRegistry::new(&self.conn, record.origin.clone());
        registry.requeue_to(&record.id, at_front).await?;
        record.status = JobStatus::Queued;
        record.started_at = None;
        record.ended_at = None;
        Ok(())
    }
}

//! Dependencies (RQ's `depends_on` and `Dependency`): jobs that must end before a job is
//! enqueued.

use super::JobId;

/// What a job waits for before it is enqueued (RQ's `Dependency`).
///
/// # Examples
/// ```
/// use rqrs::{Dependency, JobId};
///
/// let parent: JobId = "parent".parse()?;
/// let dependency = Dependency::new([parent]).allow_failure(true);
/// assert!(dependency.allow_failure);
/// # Ok::<(), rqrs::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dependency {
    /// The jobs that must end first.
    pub jobs: Vec<JobId>,
    /// Enqueue the job even when one of them failed.
    pub allow_failure: bool,
    /// Put the job at the head of its queue once they have ended.
    pub enqueue_at_front: bool,
}

impl Dependency {
    /// Waits for `jobs` to finish.
    pub fn new(jobs: impl IntoIterator<Item = JobId>) -> Self {
        Dependency {
            jobs: jobs.into_iter().collect(),
            allow_failure: false,
            enqueue_at_front: false,
        }
    }

    /// Also go ahead when a dependency failed.
    pub fn allow_failure(mut self, allow: bool) -> Self {
        self.allow_failure = allow;
        self
    }

    /// Go to the head of the queue once released.
    pub fn enqueue_at_front(mut self, at_front: bool) -> Self {
        self.enqueue_at_front = at_front;
        self
    }
}

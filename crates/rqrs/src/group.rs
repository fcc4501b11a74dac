//! Groups of jobs (RQ 2.x's `rq.group.Group`): a name that tracks jobs enqueued together,
//! stored as the set `rq:group:<name>` of their ids and listed in `rq:groups`. Ids of jobs that
//! are gone are pruned when the group is read and by the workers' maintenance; a group with no
//! job left ceases to exist.

use crate::Connection;
use crate::backend::GroupStore;
use crate::error::{Error, Result};
use crate::job::{Enqueue, Job, JobId};
use crate::queue::Queue;

/// A group of jobs, enqueued together with [`Group::enqueue_many`].
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use rqrs::{Group, Queue};
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let queue = Queue::new(&conn, "default");
/// let group = Group::create(&conn, Some("nightly".to_owned()))?;
/// group
///     .enqueue_many(&queue, (0..10).map(|i| queue.enqueue("tasks.add", (i, 1))))
///     .await?;
/// for job in group.jobs().await? {
///     println!("{} {}", job.id(), job.status());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Group {
    conn: Connection,
    name: String,
}

impl Group {
    /// A group called `name`, or a random name (32 hex digits, as RQ makes them) when `None`.
    /// Nothing is stored until jobs are enqueued in it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty name or one with control characters.
    pub fn create(conn: &Connection, name: Option<String>) -> Result<Group> {
        let name = name.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        crate::queue::validate_name("group name", &name)?;
        Ok(Group {
            conn: conn.clone(),
            name,
        })
    }

    /// The group called `name`, which must hold at least one job id.
    ///
    /// # Errors
    /// [`Error::NoSuchGroup`] if it does not exist; a backend error.
    pub async fn fetch(conn: &Connection, name: &str) -> Result<Group> {
        if !conn.backend().group_exists(name).await? {
            return Err(Error::NoSuchGroup(name.to_owned()));
        }
        Ok(Group {
            conn: conn.clone(),
            name: name.to_owned(),
        })
    }

    /// Every group that exists, by name. Names left in the list of groups by groups that are
    /// gone are dropped from it, as RQ's `Group.all` drops them.
    ///
    /// # Errors
    /// A backend error.
    pub async fn all(conn: &Connection) -> Result<Vec<Group>> {
        let names = conn.backend().group_names().await?;
        Ok(names
            .into_iter()
            .map(|name| Group {
                conn: conn.clone(),
                name,
            })
            .collect())
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Enqueues jobs built with [`Queue::enqueue`] on `queue` in one atomic step, as
    /// [`Queue::enqueue_many`] does, each job with this group's id; the group's set and the
    /// list of groups are written in the same step.
    ///
    /// # Errors
    /// As [`Queue::enqueue_many`].
    pub async fn enqueue_many<'q>(
        &self,
        queue: &Queue,
        jobs: impl IntoIterator<Item = Enqueue<'q>>,
    ) -> Result<Vec<Job>> {
        queue.enqueue_in_group(jobs, Some(&self.name)).await
    }

    /// The ids of the group's jobs that still exist, sorted; ids of jobs that are gone are
    /// pruned first (as RQ's `get_jobs` does).
    ///
    /// # Errors
    /// A backend error.
    pub async fn job_ids(&self) -> Result<Vec<JobId>> {
        Ok(self.conn.backend().group_cleanup(&self.name).await?.1)
    }

    /// The group's jobs that still exist (RQ's `get_jobs`), in the order of
    /// [`Group::job_ids`].
    ///
    /// # Errors
    /// [`Error::MalformedJob`] if a job's hash is not a job; a backend error.
    pub async fn jobs(&self) -> Result<Vec<Job>> {
        let ids = self.job_ids().await?;
        Ok(Job::fetch_many(&self.conn, &ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Removes a job from the group, leaving the job itself as it is; returns whether it was
    /// in the group.
    ///
    /// # Errors
    /// A backend error.
    pub async fn delete_job(&self, id: &JobId) -> Result<bool> {
        self.conn.backend().group_remove(&self.name, id).await
    }
}

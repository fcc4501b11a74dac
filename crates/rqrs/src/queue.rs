//! A named queue: `rq:queue:<name>`, a list of job ids, listed in `rq:queues`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use crate::backend::redis::{NewJob, keys};
use crate::error::{Error, Result};
use crate::job::{Call, Enqueue, EnqueueOptions, Job, JobId, JobStatus};
use crate::{Connection, Functions};

/// A queue of jobs.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use rqrs::Queue;
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let queue = Queue::new(&conn, "default");
/// let job = queue.enqueue("tasks.add", (1, 2)).send().await?;
/// assert!(queue.job_ids().await?.contains(job.id()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    conn: Connection,
    name: String,
    /// Test mode: run jobs in the enqueuing call with these functions.
    inline: Option<Arc<Functions>>,
    /// Replicas every enqueue waits for, and for how long at most.
    replicas: Option<(usize, Duration)>,
}

impl Queue {
    /// The queue called `name` (it exists in the backend once a job is enqueued on it).
    pub fn new(conn: &Connection, name: impl Into<String>) -> Self {
        Queue {
            conn: conn.clone(),
            name: name.into(),
            inline: None,
            replicas: None,
        }
    }

    /// Every queue that has had a job (RQ's `Queue.all`), by name.
    ///
    /// # Errors
    /// A backend error.
    pub async fn all(conn: &Connection) -> Result<Vec<Queue>> {
        let names = conn.backend().queue_names().await?;
        Ok(names
            .into_iter()
            .map(|name| Queue::new(conn, name))
            .collect())
    }

    /// Test mode (RQ's `is_async=False`): every job enqueued through this queue runs at once,
    /// in the enqueuing call, with `functions`, and is recorded as a worker would record it;
    /// the returned job is read back after its run. Code that enqueues can then be tested
    /// without a worker. Jobs that are deferred or scheduled wait as usual (they are not run),
    /// and dependents released by a run go to the queue.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// use rqrs::{Functions, JobContext, JobError, JobStatus, Queue};
    ///
    /// async fn add(_ctx: JobContext, (x, y): (i64, i64)) -> Result<i64, JobError> {
    ///     Ok(x + y)
    /// }
    ///
    /// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
    /// let queue = Queue::new(&conn, "default").inline(Functions::new().register("tasks.add", add));
    /// let job = queue.enqueue("tasks.add", (1, 2)).send().await?;
    /// assert_eq!(job.status(), JobStatus::Finished);
    /// assert_eq!(job.return_value().await?, Some(3.into()));
    /// # Ok(()) }
    /// ```
    pub fn inline(mut self, functions: Functions) -> Self {
        self.inline = Some(Arc::new(functions));
        self
    }

    /// Makes every enqueue through this queue wait until `replicas` replicas have it (Redis
    /// `WAIT`, for `timeout` at most), so that a Sentinel failover right after cannot lose it:
    /// Redis replicates asynchronously, and a master that dies may take its last writes with
    /// it. An enqueue not acknowledged in time fails with [`Error::NotReplicated`] (the jobs are
    /// on the master; the caller decides). The waits run on a connection of their own.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// use std::time::Duration;
    ///
    /// let conn = rqrs::connect("redis+sentinel://10.0.0.1,10.0.0.2,10.0.0.3/jobs").await?;
    /// let payments = rqrs::Queue::new(&conn, "payments").wait_for_replicas(1, Duration::from_secs(1));
    /// payments.enqueue("tasks.charge", ("order-17",)).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.replicas = Some((replicas, timeout));
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection the queue uses.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Starts an enqueue of `func_name` with positional `args`: a tuple, a `Vec` or any value
    /// that serializes to a JSON array (`()` for none; any other value is one argument).
    /// Set options on the returned builder, then [`send`](Enqueue::send) it.
    pub fn enqueue(&self, func_name: &str, args: impl Serialize) -> Enqueue<'_> {
        let args = serde_json::to_value(args)
            .map_err(Error::from)
            .map(|value| match value {
                Value::Array(args) => args,
                Value::Null => Vec::new(),
                other => vec![other],
            });
        Enqueue::new(self, func_name, args)
    }

    /// Starts an enqueue of `func_name` that waits in the scheduled registry until `time`
    /// (RQ's `enqueue_at`); sugar for [`enqueue`](Self::enqueue) then [`at`](Enqueue::at).
    /// A [`Scheduler`](crate::Scheduler) must run for the queue, for instance in a worker
    /// built [`with_scheduler`](crate::WorkerBuilder::with_scheduler).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// use chrono::{TimeDelta, Utc};
    /// use rqrs::{JobStatus, Queue};
    ///
    /// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
    /// let queue = Queue::new(&conn, "default");
    /// let time = Utc::now() + TimeDelta::hours(1);
    /// let job = queue.enqueue_at(time, "tasks.add", (1, 2)).send().await?;
    /// assert_eq!(job.status(), JobStatus::Scheduled);
    /// # Ok(()) }
    /// ```
    pub fn enqueue_at(
        &self,
        time: DateTime<Utc>,
        func_name: &str,
        args: impl Serialize,
    ) -> Enqueue<'_> {
        self.enqueue(func_name, args).at(time)
    }

    /// Starts an enqueue of `func_name` that waits in the scheduled registry for `delay`
    /// (RQ's `enqueue_in`); sugar for [`enqueue`](Self::enqueue) then
    /// [`delay`](Enqueue::delay). A [`Scheduler`](crate::Scheduler) must run for the queue.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// use std::time::Duration;
    /// use rqrs::Queue;
    ///
    /// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
    /// let queue = Queue::new(&conn, "default");
    /// let job = queue
    ///     .enqueue_in(Duration::from_secs(600), "tasks.add", (1, 2))
    ///     .at_front(true) // at the head of the queue once due
    ///     .send()
    ///     .await?;
    /// println!("{} runs in 10 minutes", job.id());
    /// # Ok(()) }
    /// ```
    pub fn enqueue_in(
        &self,
        delay: Duration,
        func_name: &str,
        args: impl Serialize,
    ) -> Enqueue<'_> {
        self.enqueue(func_name, args).delay(delay)
    }

    pub(crate) async fn enqueue_call(&self, call: Call, options: EnqueueOptions) -> Result<Job> {
        let mut jobs = self.enqueue_calls(vec![(call, options)], None).await?;
        jobs.pop()
            .ok_or_else(|| Error::invalid("enqueue", "the backend returned no job"))
    }

    /// Enqueues several jobs built with [`Queue::enqueue`] in one atomic step and one round
    /// trip (RQ's `enqueue_many`); returns them in order. Nothing is enqueued if any is
    /// invalid.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn example() -> rqrs::Result<()> {
    /// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
    /// let queue = rqrs::Queue::new(&conn, "default");
    /// let jobs = queue
    ///     .enqueue_many((0..100).map(|i| queue.enqueue("tasks.add", (i, 1))))
    ///     .await?;
    /// assert_eq!(jobs.len(), 100);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid job or one built on another queue; a backend error.
    pub async fn enqueue_many<'q>(
        &self,
        jobs: impl IntoIterator<Item = Enqueue<'q>>,
    ) -> Result<Vec<Job>> {
        self.enqueue_in_group(jobs, None).await
    }

    /// [`Queue::enqueue_many`], the jobs joining `group` in the same step when one is given.
    pub(crate) async fn enqueue_in_group<'q>(
        &self,
        jobs: impl IntoIterator<Item = Enqueue<'q>>,
        group: Option<&str>,
    ) -> Result<Vec<Job>> {
        let calls = jobs
            .into_iter()
            .map(|enqueue| {
                let (queue, call, options) = enqueue.into_parts()?;
                if queue.name != self.name {
                    return Err(Error::invalid(
                        "enqueue_many",
                        format!(
                            "a job was built on queue {:?}, not {:?}",
                            queue.name, self.name
                        ),
                    ));
                }
                Ok((call, options))
            })
            .collect::<Result<Vec<_>>>()?;
        self.enqueue_calls(calls, group).await
    }

    async fn enqueue_calls(
        &self,
        calls: Vec<(Call, EnqueueOptions)>,
        group: Option<&str>,
    ) -> Result<Vec<Job>> {
        validate_name("queue name", &self.name)?;
        let mut jobs = Vec::with_capacity(calls.len());
        for (call, options) in calls {
            if call.func_name.is_empty() {
                return Err(Error::invalid("function name", "it is empty"));
            }
            let id = options.job_id.clone().unwrap_or_else(JobId::random);
            jobs.push(NewJob { id, call, options });
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let Some(functions) = &self.inline else {
            return self
                .conn
                .backend()
                .enqueue(&self.conn, &self.name, jobs, group, self.replicas)
                .await;
        };
        let mut ran = Vec::with_capacity(jobs.len());
        for job in jobs {
            // A list of its own, so that no worker takes the job and this call runs exactly it.
            let list = keys::inline_queue(&self.name, &uuid::Uuid::new_v4().simple().to_string());
            let backend = self.conn.backend();
            for job in backend
                .enqueue_to(&self.conn, &self.name, &list, vec![job], group, None)
                .await?
            {
                if job.status() != JobStatus::Queued {
                    ran.push(job);
                    continue;
                }
                crate::worker::run_inline(&self.conn, functions, &self.name, &list).await?;
                match Job::fetch(&self.conn, job.id()).await {
                    Ok(fresh) => ran.push(fresh),
                    // result_ttl=0: the job is deleted once it finished.
                    Err(Error::NoSuchJob(_)) => ran.push(Job {
                        status: JobStatus::Finished,
                        ..job
                    }),
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(ran)
    }

    /// How many jobs wait on the queue.
    ///
    /// # Errors
    /// A backend error.
    pub async fn count(&self) -> Result<usize> {
        self.conn.backend().queue_count(&self.name).await
    }

    /// Whether no job waits on the queue.
    ///
    /// # Errors
    /// A backend error.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.count().await? == 0)
    }

    /// The ids waiting on the queue, head first.
    ///
    /// # Errors
    /// A backend error.
    pub async fn job_ids(&self) -> Result<Vec<JobId>> {
        self.conn.backend().queue_job_ids(&self.name, 0, None).await
    }

    /// At most `limit` ids from position `offset` (0 is the head).
    ///
    /// # Errors
    /// A backend error.
    pub async fn job_ids_range(&self, offset: usize, limit: usize) -> Result<Vec<JobId>> {
        self.conn
            .backend()
            .queue_job_ids(&self.name, offset, Some(limit))
            .await
    }

    /// Where the job is on the queue (0 is the head, the next to run), or `None` when it is
    /// not on it (RQ's `get_job_position`).
    ///
    /// # Errors
    /// A backend error.
    pub async fn job_position(&self, id: &JobId) -> Result<Option<usize>> {
        self.conn.backend().queue_position(&self.name, id).await
    }

    /// Removes every waiting job and deletes it; returns how many there were. Registries are
    /// left as they are (as RQ's `empty` leaves them).
    ///
    /// # Errors
    /// A backend error.
    pub async fn empty(&self) -> Result<usize> {
        self.conn.backend().empty_queue(&self.name).await
    }
}

/// RQ builds keys from queue and group names, so a name must be non-empty text without control
/// characters; `what` names it in the error.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(Error::invalid(what, format!("{name:?}")));
    }
    Ok(())
}

//! A named queue: `rq:queue:<name>`, a list of job ids, listed in `rq:queues`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::backend::types::{JobRecord, NewJob, Placement, Replicas};
use crate::backend::{JobStore, QueueStore};
use crate::defaults::DEFAULT_JOB_TIMEOUT;
use crate::error::{Error, Result};
use crate::job::{Call, Enqueue, EnqueueOptions, Job, JobId, JobStatus, Lifecycle};
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
    replicas: Option<Replicas>,
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
        self.replicas = Some(Replicas {
            count: replicas,
            timeout,
        });
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
        let created = Utc::now();
        let jobs = calls
            .into_iter()
            .map(|(call, options)| self.new_job(call, options, created, group))
            .collect::<Result<Vec<_>>>()?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        match &self.inline {
            None => self.store(jobs, group, self.replicas).await,
            // Boxed: test mode's future holds a whole run, which would otherwise make every
            // enqueue's future as large, and copied as often.
            Some(functions) => Box::pin(self.run_inline(functions, jobs, group)).await,
        }
    }

    /// The record of a job to enqueue on this queue, with RQ's defaults filled in (the
    /// description is the call as Python writes it; the timeout is always written, as
    /// Python's `Queue` writes it).
    fn new_job(
        &self,
        call: Call,
        options: EnqueueOptions,
        created: DateTime<Utc>,
        group: Option<&str>,
    ) -> Result<NewJob> {
        if call.func_name.is_empty() {
            return Err(Error::invalid("function name", "it is empty"));
        }
        let placement = match options.scheduled_at {
            Some(at) => Placement::Scheduled(at),
            None => Placement::Queue {
                at_front: options.at_front,
            },
        };
        let lifecycle = Lifecycle::of(&options);
        let record = JobRecord {
            id: options.job_id.unwrap_or_else(JobId::random),
            description: Some(options.description.unwrap_or_else(|| call.description())),
            call: Ok(call),
            status: JobStatus::Queued,
            origin: self.name.clone(),
            created_at: Some(created),
            enqueued_at: None,
            started_at: None,
            ended_at: None,
            last_heartbeat: None,
            worker_name: None,
            timeout: Some(options.timeout.unwrap_or(DEFAULT_JOB_TIMEOUT)),
            result_ttl: options.result_ttl,
            failure_ttl: options.failure_ttl,
            ttl: options.ttl,
            meta: options.meta,
            legacy_exc_info: None,
            lifecycle,
            group_id: group.map(str::to_owned),
        };
        Ok(NewJob {
            record,
            placement,
            unique: options.unique,
        })
    }

    /// Stores `jobs` in one step and returns them with the status the store gave each.
    async fn store(
        &self,
        jobs: Vec<NewJob>,
        group: Option<&str>,
        replicas: Option<Replicas>,
    ) -> Result<Vec<Job>> {
        let statuses = self
            .conn
            .backend()
            .enqueue(&self.name, &jobs, group, replicas)
            .await?;
        Ok(jobs
            .into_iter()
            .zip(statuses)
            .map(|(job, status)| {
                let mut record = job.record;
                record.status = status;
                if status == JobStatus::Queued {
                    record.enqueued_at = record.created_at;
                }
                Job::new(&self.conn, record)
            })
            .collect())
    }

    /// Test mode: each job is enqueued already started by this call's worker (so that no other
    /// worker can take it), run as a worker runs it, and read back. Jobs that are deferred or
    /// scheduled wait as usual.
    async fn run_inline(
        &self,
        functions: &Functions,
        jobs: Vec<NewJob>,
        group: Option<&str>,
    ) -> Result<Vec<Job>> {
        let worker = crate::worker::Inline::new(&self.conn, functions, &self.name);
        let mut ran = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            let mut execution_id = None;
            if matches!(job.placement, Placement::Queue { .. }) {
                let placement = worker.placement();
                if let Placement::Started {
                    execution_id: id, ..
                } = &placement
                {
                    execution_id = Some(id.clone());
                }
                job.placement = placement;
            }
            let Some(job) = self.store(vec![job], group, None).await?.pop() else {
                continue;
            };
            let Some(execution_id) = execution_id.filter(|_| job.status() == JobStatus::Started)
            else {
                ran.push(job);
                continue;
            };
            worker.run(job.record().clone(), execution_id).await;
            match Job::fetch(&self.conn, job.id()).await {
                Ok(fresh) => ran.push(fresh),
                // result_ttl=0: the job is deleted once it finished.
                Err(Error::NoSuchJob(_)) => {
                    let mut record = job.record().clone();
                    record.status = JobStatus::Finished;
                    ran.push(Job::new(&self.conn, record));
                }
                Err(error) => return Err(error),
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

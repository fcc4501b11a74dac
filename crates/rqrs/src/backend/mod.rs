//! Storage: the seam between the library and its stores.
//!
//! A backend implements [`Backend`]: lifecycle operations, not store commands, each one atomic
//! step in the store (a Lua script on Redis), grouped by what they act on ([`JobStore`],
//! [`QueueStore`], [`RegistryStore`], [`GroupStore`], [`RunStore`], [`WorkerStore`],
//! [`ScheduleStore`]). It stores and returns the plain records of [`types`]; handles such as
//! [`Job`](crate::Job) are built above the seam, and every decision (retry or fail, RQ's
//! messages, defaults) is taken above it too: a backend records.
//!
//! [`AnyBackend`] is the closed set of backends, chosen by URL scheme in [`connect`]; it
//! implements the traits by passing each call to the backend it holds (`dispatch.rs`), so the
//! traits are the compile-checked contract and a call costs no allocation. Only `redis/` names
//! the `redis` crate (a test below checks it).
//!
//! The backends: Redis in Python RQ's layout (`redis/`), and SQLite, one database file for the
//! processes of one machine (`sqlite/`).

mod dispatch;
mod redis;
mod sqlite;
pub(crate) mod types;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::task::JoinSet;

use self::redis::RedisBackend;
use self::sqlite::SqliteBackend;
use crate::command::Command;
use crate::error::Result;
use crate::job::{JobId, JobStatus};
use crate::registry::RegistryKind;
use crate::results::JobResult;
use crate::ttl::Ttl;
use crate::worker::{WorkerInfo, WorkerState};
use types::{
    Commands, Ending, Execution, Failed, Finishing, HeartbeatReply, JobRecord, Liveness, Lock,
    NewJob, Recorded, Replicas, Retried, RunId, SchedulerRecord, Watch, Worked,
};

/// Every backend, chosen by URL scheme.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "held once, behind the connection's Arc: boxing the larger would only add a hop"
)]
pub(crate) enum AnyBackend {
    /// Redis (or Valkey), in Python RQ's layout.
    Redis(RedisBackend),
    /// A SQLite database.
    Sqlite(SqliteBackend),
}

/// A store the library can run on: every operation of the traits it is made of, plus how to
/// reach it again.
pub(crate) trait Backend:
    JobStore + QueueStore + RegistryStore + GroupStore + RunStore + WorkerStore + ScheduleStore + Sized
{
    /// The URL the backend was reached with, passwords hidden.
    fn url(&self) -> String;

    /// What another process (a work horse) connects with: the URL as given (passwords
    /// included), the trusted roots and the key prefix in use.
    fn connect_options(&self) -> ConnectOptions;

    /// Whether another process can open the same store by its URL (an in-memory database
    /// cannot).
    fn is_shared(&self) -> bool;

    /// The same store through connections of its own, bound to the current async runtime (a
    /// worker's liveness thread runs its own).
    async fn detached(&self) -> Result<Self>;
}

/// Jobs: enqueue, read, meta and results, cancel, delete.
pub(crate) trait JobStore {
    /// Stores `jobs`, all of `queue`, in one step: each is queued, scheduled, deferred (while a
    /// dependency is not done) or started, as its placement and dependencies say, and joins
    /// `group` if one is given. With `replicas`, waits until that many replicas have it.
    /// Returns each job's status, in order.
    ///
    /// # Errors
    /// [`Error::DuplicateJob`](crate::Error::DuplicateJob) when a unique job's id is taken
    /// (nothing is stored); [`Error::NotReplicated`](crate::Error::NotReplicated) when fewer
    /// replicas acknowledged in time.
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[NewJob],
        group: Option<&str>,
        replicas: Option<Replicas>,
    ) -> Result<Vec<JobStatus>>;

    /// The job, or `None` if it does not exist.
    async fn fetch_job(&self, id: &JobId) -> Result<Option<JobRecord>>;

    /// Several jobs in one round trip, in order; `None` for each that does not exist.
    async fn fetch_jobs(&self, ids: &[JobId]) -> Result<Vec<Option<JobRecord>>>;

    /// Replaces the job's meta. [`Error::NoSuchJob`](crate::Error::NoSuchJob) if it is gone.
    async fn save_meta(&self, id: &JobId, meta: &Map<String, Value>) -> Result<()>;

    /// The job's latest result.
    async fn latest_result(&self, id: &JobId) -> Result<Option<JobResult>>;

    /// The job's results, newest first.
    async fn results(&self, id: &JobId) -> Result<Vec<JobResult>>;

    /// Cancels the job: status `canceled`, off its queue and registries, into the canceled
    /// registry of its queue (`origin` when the stored job has none).
    async fn cancel(&self, id: &JobId, origin: &str) -> Result<()>;

    /// Deletes the job and its traces (and its dependents', with `dependents`); returns how many
    /// jobs went.
    async fn delete(&self, id: &JobId, origin: &str, dependents: bool) -> Result<usize>;
}

/// Queues: their names, their waiting jobs.
pub(crate) trait QueueStore {
    /// Every queue that has had a job, sorted.
    async fn queue_names(&self) -> Result<Vec<String>>;
    /// How many jobs wait on the queue.
    async fn queue_count(&self, queue: &str) -> Result<usize>;
    /// At most `limit` (all, for `None`) waiting ids from position `offset`, head first.
    async fn queue_job_ids(
        &self,
        queue: &str,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<JobId>>;
    /// Where the job waits on the queue (0: next), if it does.
    async fn queue_position(&self, queue: &str, id: &JobId) -> Result<Option<usize>>;
    /// Removes and deletes every waiting job; returns how many.
    async fn empty_queue(&self, queue: &str) -> Result<usize>;
}

/// The registries of a queue, and what moves jobs between them from outside a run.
pub(crate) trait RegistryStore {
    /// How many entries the registry holds.
    async fn registry_count(&self, kind: RegistryKind, queue: &str) -> Result<usize>;
    /// The ids in the registry, by score (deadline, expiry or time), lowest first.
    async fn registry_job_ids(&self, kind: RegistryKind, queue: &str) -> Result<Vec<JobId>>;
    /// Removes a job from a registry (deleting the job too with `delete_job`); whether it was
    /// there.
    async fn registry_remove(
        &self,
        kind: RegistryKind,
        queue: &str,
        id: &JobId,
        delete_job: bool,
    ) -> Result<bool>;
    /// Drops the finished or failed entries whose time has passed; returns how many.
    async fn expire_entries(&self, kind: RegistryKind, queue: &str) -> Result<usize>;
    /// The runs of the queue whose deadline has passed without a heartbeat.
    async fn abandoned_runs(&self, queue: &str) -> Result<Vec<RunId>>;
    /// Gives back the rate-limit slots that jobs no longer need and fills the free ones, for
    /// every limit (RQ 3.0's `RateLimitRegistry.cleanup`); returns how many slots went back.
    async fn clean_rate_limits(&self) -> Result<usize>;
    /// Puts back on the queue the jobs other kinds of workers left between two of their steps
    /// (Python RQ's intermediate list, after a grace; RQ 3.0's ready registry), and drops stale
    /// entries; returns how many jobs went back. Nothing else writes a SQLite queue.
    async fn recover_stranded(&self, queue: &str) -> Result<usize>;
    /// Takes the queue's maintenance lock for `ttl` (RQ's `rq:clean_registries:<q>`); whether
    /// it was free.
    async fn lock_maintenance(&self, queue: &str, ttl: Duration) -> Result<bool>;
    /// Ends the queue's maintenance: its lock stays taken `hold` longer (none when zero), so
    /// that the queue is cleaned once per `hold` whatever the number of workers.
    async fn unlock_maintenance(&self, queue: &str, hold: Duration) -> Result<()>;
    /// Moves a job from the failed registry back onto its queue. `Ok(false)`: it was not there;
    /// [`Error::NoSuchJob`](crate::Error::NoSuchJob): its entry was, not the job.
    async fn requeue(&self, queue: &str, id: &JobId, at_front: bool) -> Result<bool>;
    /// Moves a job that did not run to the failed registry with an error (RQ's
    /// `FailedJobRegistry.add`): off its queue, status `failed`.
    async fn add_to_failed(
        &self,
        id: &JobId,
        queue: &str,
        failure_ttl: Option<Ttl>,
        exc_info: &str,
    ) -> Result<()>;
}

/// Groups of jobs (RQ's `Group`).
pub(crate) trait GroupStore {
    /// The names of the groups that hold a job, sorted; names of empty groups are dropped.
    async fn group_names(&self) -> Result<Vec<String>>;
    /// Whether the group holds a job.
    async fn group_exists(&self, name: &str) -> Result<bool>;
    /// Drops the ids of jobs that are gone; returns how many went and the ids left, sorted.
    async fn group_cleanup(&self, name: &str) -> Result<(usize, Vec<JobId>)>;
    /// Removes an id from the group; whether it was there.
    async fn group_remove(&self, name: &str, id: &JobId) -> Result<bool>;
    /// Cleans every group; returns how many ids went.
    async fn clean_groups(&self) -> Result<usize>;
}

/// Runs: taking jobs, keeping them alive, recording how they ended.
pub(crate) trait RunStore {
    /// A worker's round trip, one atomic step: records the successes in `finishing` (each: its
    /// result, the release of its dependents, its repeat), then takes up to one job per
    /// execution id from `queues` (highest priority first) and starts each: off its queue,
    /// into the started registry with its execution and a deadline. The successes are
    /// recorded while workers are suspended too; with no execution ids, nothing is taken.
    async fn work(
        &self,
        worker: &str,
        finishing: &[&Finishing],
        queues: &[String],
        execution_ids: &[String],
        liveness: Liveness,
    ) -> Result<Worked>;

    /// Puts back at the head of their queues the runs that a dequeue with these execution ids
    /// started, if it ran (its reply was lost, so no one holds them); returns how many. A run
    /// that ended or was recovered meanwhile is left alone.
    async fn reclaim(
        &self,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
    ) -> Result<usize>;

    /// Marks the worker and its running executions alive for another deadline.
    async fn heartbeat(
        &self,
        worker: &str,
        running: &[Execution],
        liveness: Liveness,
    ) -> Result<HeartbeatReply>;

    /// Records a failure (or a stop) that does not run again.
    async fn fail(&self, run: &RunId, ending: Ending<'_>, failed: &Failed) -> Result<Recorded>;

    /// Records a failure that runs again, now or after a delay.
    async fn retry(&self, run: &RunId, ending: Ending<'_>, retried: &Retried) -> Result<Recorded>;

    /// Ends a run that did not finish and puts its job back at the head of its queue (a cold
    /// stop); `false` when the run was no longer the job's.
    async fn release(&self, run: &RunId, worker: &str) -> Result<bool>;

    /// Starts the tasks that wake a waiting worker when one of `queues` may hold a job (see
    /// [`Watch`]); they end when the set is dropped.
    fn watch_queues(&self, queues: &[String], watch: Watch) -> JoinSet<()>;
}

/// Workers: registration, suspension, control commands.
pub(crate) trait WorkerStore {
    /// Registers a worker. [`Error::WorkerExists`](crate::Error::WorkerExists) if a live worker
    /// has its name.
    async fn register_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()>;
    /// Writes a worker's registration again, whole (after it expired).
    async fn reregister_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()>;
    /// Sets a worker's state (a registration that expired is left alone).
    async fn set_worker_state(&self, worker: &str, state: WorkerState) -> Result<()>;
    /// Marks a worker dead and drops it from the lists of workers.
    async fn register_death(&self, worker: &str, queues: &[String]) -> Result<()>;
    /// The live workers, of one queue or all, sorted by name.
    async fn workers(&self, queue: Option<&str>) -> Result<Vec<WorkerInfo>>;
    /// Suspends every worker, for `duration` or until resumed.
    async fn suspend(&self, duration: Option<Duration>) -> Result<()>;
    /// Resumes the workers.
    async fn resume(&self) -> Result<()>;
    /// Whether workers are suspended.
    async fn is_suspended(&self) -> Result<bool>;
    /// Sends a command to a worker; returns how many listeners got it.
    async fn publish(&self, worker: &str, command: &Command) -> Result<usize>;
    /// The commands sent to `worker` from now on.
    async fn commands(&self, worker: &str) -> Result<Commands>;
}

/// Schedulers: their per-queue locks, their registration, due jobs.
pub(crate) trait ScheduleStore {
    /// Takes or refreshes the locks of `queues` for the scheduler `name`; one outcome per queue.
    async fn acquire_scheduler_locks(
        &self,
        name: &str,
        queues: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lock>>;
    /// Releases the locks of `queues` that `name` holds; returns how many it held.
    async fn release_scheduler_locks(&self, name: &str, queues: &[String]) -> Result<usize>;
    /// Writes the scheduler's registration, expiring after `ttl`.
    async fn register_scheduler(&self, record: &SchedulerRecord<'_>, ttl: Duration) -> Result<()>;
    /// Deletes the scheduler's registration.
    async fn unregister_scheduler(&self, name: &str) -> Result<()>;
    /// Enqueues every due job of `queue`'s scheduled registry while `name` holds the queue's
    /// lock; `None` when it does not.
    async fn enqueue_scheduled(&self, name: &str, queue: &str) -> Result<Option<usize>>;
}

/// What rqrs's own tests do to a store (feature `testing`, see [`crate::testing`]).
#[cfg(feature = "testing")]
pub(crate) trait TestHooks {
    /// Moves a run's deadline.
    async fn set_run_deadline(
        &self,
        run: &RunId,
        deadline: chrono::DateTime<chrono::Utc>,
    ) -> Result<()>;
    /// Deletes the job itself, as its TTL would.
    async fn expire_job(&self, id: &JobId) -> Result<()>;
    /// Deletes a worker's registration, as its TTL would.
    async fn expire_worker(&self, name: &str) -> Result<()>;
}

/// A connection to a backend: cheap to clone, shared by queues, jobs and workers.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let queue = rqrs::Queue::new(&conn, "default");
/// println!("{} jobs waiting", queue.count().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    backend: Arc<AnyBackend>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.backend.url())
            .finish()
    }
}

impl Connection {
    pub(crate) fn backend(&self) -> &AnyBackend {
        &self.backend
    }

    /// The URL the connection was made with, passwords hidden.
    pub fn url(&self) -> String {
        self.backend.url()
    }

    /// A connection to the same store through connections of its own, bound to the current
    /// async runtime.
    pub(crate) async fn detached(&self) -> Result<Connection> {
        Ok(Connection {
            backend: Arc::new(self.backend.detached().await?),
        })
    }
}

/// The URL with its passwords replaced by `***`, for messages and logs.
///
/// # Examples
/// ```
/// assert_eq!(
///     rqrs::redact_url("redis://app:s3cret@cache:6379/0"),
///     "redis://app:***@cache:6379/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let url = match url.split_once("sentinel_password=") {
        Some((before, after)) => {
            let rest = after.find('&').map_or("", |end| &after[end..]);
            format!("{before}sentinel_password=***{rest}")
        }
        None => url.to_owned(),
    };
    let url = url.as_str();
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}

/// Connects to a backend by URL: `redis://[user:password@]host:port[/db]` or `rediss://...`
/// (TLS), `unix:///path/to/redis.sock`, the master that Sentinels name:
/// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]`
/// (`rediss+sentinel://` for TLS to the Sentinels and the servers;
/// `?sentinel_username=...&sentinel_password=...` for Sentinels that ask for a login), a Redis
/// Cluster: `redis+cluster://host:port[,host:port...]` (`rediss+cluster://` for TLS; the key
/// prefix must be a hash tag such as `{rq}`, see [`ConnectOptions::key_prefix`]), or a
/// SQLite file: `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, `sqlite::memory:`.
/// A Sentinel or Cluster connection follows the master through failovers. [`ConnectOptions`] sets the key
/// prefix and trusted roots.
///
/// The connection reconnects by itself after the server goes away.
///
/// # Errors
/// [`Error::Invalid`](crate::Error::Invalid) for a URL that cannot be used; a backend error if
/// the server cannot be reached.
pub async fn connect(url: &str) -> Result<Connection> {
    ConnectOptions::new(url).connect().await
}

/// Connects over TLS (`rediss://...`) trusting the certificate authority `root_ca_pem` (PEM),
/// for servers whose certificate is not signed by a root the system trusts. [`connect`] with a
/// `rediss://` URL trusts the system's roots.
///
/// # Errors
/// As [`connect`]; a certificate that cannot be read is an invalid URL setting.
pub async fn connect_tls(url: &str, root_ca_pem: &[u8]) -> Result<Connection> {
    ConnectOptions::new(url)
        .root_ca_pem(root_ca_pem)
        .connect()
        .await
}

/// A connection's URL and settings, for [`connect`] with more than a URL.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// // Every key starts with `{app}` (not `rq`): one Redis Cluster slot, or a namespace of its
/// // own beside other users of the same Redis. Python RQ 3.0 reads RQ_KEY_PREFIX=`{app}`.
/// let conn = rqrs::ConnectOptions::new("redis://127.0.0.1:6379")
///     .key_prefix("{app}")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) url: String,
    pub(crate) root_ca: Option<Vec<u8>>,
    pub(crate) key_prefix: Option<String>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &redact_url(&self.url))
            .field("root_ca", &self.root_ca.is_some())
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// The environment variable Python RQ 3.0 reads its key prefix from, read here too.
pub const KEY_PREFIX_ENV: &str = "RQ_KEY_PREFIX";

impl ConnectOptions {
    /// Options for the backend at `url` (the forms [`connect`] takes).
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            root_ca: None,
            key_prefix: None,
        }
    }

    /// Trust the certificate authority `pem` for `rediss://` instead of the system's roots.
    pub fn root_ca_pem(mut self, pem: &[u8]) -> Self {
        self.root_ca = Some(pem.to_vec());
        self
    }

    /// The prefix of every Redis key (`<prefix>:queue:default`, `<prefix>:job:<id>`, ...): by
    /// default the environment's `RQ_KEY_PREFIX`, as Python RQ 3.0 reads it, else `rq`, the
    /// only prefix RQ 2.12 knows. Letters, digits and `_ . : - { }`; a hash tag such as `{rq}`
    /// puts every key in one Redis Cluster slot. The SQLite backend has no keys and ignores it.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Connects, as [`connect`] does.
    ///
    /// # Errors
    /// As [`connect`]; a key prefix with other characters than RQ allows is invalid.
    pub async fn connect(self) -> Result<Connection> {
        let backend = if SqliteBackend::is_url(&self.url) {
            AnyBackend::Sqlite(SqliteBackend::connect(self).await?)
        } else {
            AnyBackend::Redis(RedisBackend::connect(self).await?)
        };
        Ok(Connection {
            backend: Arc::new(backend),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis+sentinel://:pw@a,b/m?sentinel_password=s&sentinel_username=u"),
            "redis+sentinel://:***@a,b/m?sentinel_password=***&sentinel_username=u"
        );
    }

    /// The seam holds: outside `backend/redis/`, no file of the library names the `redis` crate
    /// or the Redis backend's module, except this file's one `use` of `RedisBackend` for the
    /// dispatch enum.
    #[test]
    fn nothing_above_the_seam_names_redis() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let redis_dir = root.join("backend").join("redis");
        // Spelled in pieces, so that this test does not find itself.
        let allowed = concat!("use self::redis", "::RedisBackend;");
        let needles = [concat!("redis", "::"), concat!("backend::", "redis")];
        let mut offenders = Vec::new();
        let mut pending = vec![root];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("the source folder reads") {
                let path = entry.expect("a folder entry").path();
                if path.is_dir() {
                    if path != redis_dir {
                        pending.push(path);
                    }
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a source file reads");
                for (number, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if code.starts_with("//") || code == allowed {
                        continue;
                    }
                    if needles.iter().any(|needle| code.contains(needle)) {
                        offenders.push(format!("{}:{}: {code}", path.display(), number + 1));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "Redis named above the seam (move it into backend/redis/):\n{}",
            offenders.join("\n")
        );
    }
}

//! The Redis backend, in Python RQ 2.12's layout (`RQ-FORMAT.md`, `docs/redis-layout.md`).
//!
//! One shared auto-reconnecting connection carries ordinary commands (concurrent requests are
//! pipelined on it); each blocking wait gets a dedicated connection, since a blocking command
//! would stall the shared one. Multi-key state changes are the Lua scripts in `scripts/`,
//! loaded once and called by SHA; single-purpose writes are MULTI pipelines.

pub(crate) mod codec;
pub(crate) mod keys;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Script, Value};
use serde_json::Map;

use self::codec::RawHash;
use crate::Connection;
use crate::error::{Error, Result};
use crate::job::{Call, EnqueueOptions, Job, JobId, JobStatus};
use crate::registry::RegistryKind;
use crate::results::{JobResult, ResultType};
use crate::worker::{WorkerInfo, WorkerState};

/// RQ's default job timeout, written into every job that has none (as Python's Queue does).
pub(crate) const DEFAULT_TIMEOUT: i64 = 180;
/// The `exc_info` RQ's requeue writes: zlib of the empty string.
const EMPTY_EXC_INFO: &[u8] = &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];

struct Scripts {
    dequeue: Script,
    finish: Script,
    fail: Script,
    heartbeat: Script,
    requeue: Script,
    empty: Script,
    save_meta: Script,
    release: Script,
    worker_state: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            dequeue: Script::new(include_str!("scripts/dequeue.lua")),
            finish: Script::new(include_str!("scripts/finish.lua")),
            fail: Script::new(include_str!("scripts/fail.lua")),
            heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
            requeue: Script::new(include_str!("scripts/requeue.lua")),
            empty: Script::new(include_str!("scripts/empty.lua")),
            save_meta: Script::new(include_str!("scripts/save_meta.lua")),
            release: Script::new(include_str!("scripts/release.lua")),
            worker_state: Script::new(include_str!("scripts/worker_state.lua")),
        }
    }
}

/// A job to enqueue.
#[derive(Debug)]
pub(crate) struct NewJob {
    pub(crate) id: JobId,
    pub(crate) call: Call,
    pub(crate) options: EnqueueOptions,
}

/// One run of a job: what the worker needs to heartbeat it and to record its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub(crate) job_id: JobId,
    pub(crate) execution_id: String,
    pub(crate) queue: String,
    pub(crate) started_at: DateTime<Utc>,
}

/// A job the worker has taken, with its execution.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) job: Job,
    pub(crate) execution: Execution,
}

/// The timings a worker keeps its runs and itself alive with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    /// Seconds after the last heartbeat at which a run counts as abandoned.
    pub(crate) execution_ttl: u64,
    /// Seconds after the last heartbeat at which the worker hash expires.
    pub(crate) worker_ttl: u64,
}

/// What a heartbeat learned.
#[derive(Debug)]
pub(crate) struct HeartbeatReply {
    /// The worker hash had expired and must be written again.
    pub(crate) worker_missing: bool,
    /// Executions that are no longer in the started registry (recovered elsewhere).
    pub(crate) lost: Vec<String>,
}

/// The Redis backend.
pub(crate) struct RedisBackend {
    client: redis::Client,
    conn: ConnectionManager,
    scripts: Scripts,
    url: String,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
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

impl RedisBackend {
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid("url", format!("{}: {e}", redact(url))))?;
        // Scripts over many jobs (enqueue_many, empty) can take longer than the client's
        // default 500 ms response timeout.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(60)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(RedisBackend {
            client,
            conn,
            scripts: Scripts::new(),
            url: redact(url),
        })
    }

    pub(crate) fn url(&self) -> String {
        self.url.clone()
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A connection of its own for blocking commands, with no response timeout.
    pub(crate) async fn blocking_connection(&self) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(5)));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    // ---- jobs -------------------------------------------------------------------------------

    /// Enqueues jobs on `queue` in one MULTI (one round trip however many jobs).
    pub(crate) async fn enqueue(
        &self,
        conn: &Connection,
        queue: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Job>> {
        let queue_key = keys::queue(queue);
        let created = now();
        let created_iso = codec::format_time(created);
        let mut pipe = redis::pipe();
        pipe.atomic().sadd(keys::QUEUES, &queue_key).ignore();
        let mut out = Vec::with_capacity(jobs.len());
        for NewJob { id, call, options } in jobs {
            let job_key = keys::job(id.as_str());
            let description = options
                .description
                .clone()
                .unwrap_or_else(|| codec::call_string(&call));
            let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
            let mut fields: Vec<(&str, Vec<u8>)> = vec![
                ("created_at", created_iso.clone().into_bytes()),
                ("data", codec::encode_data(&call)),
                ("success_callback_name", Vec::new()),
                ("failure_callback_name", Vec::new()),
                ("stopped_callback_name", Vec::new()),
                ("started_at", Vec::new()),
                ("ended_at", Vec::new()),
                ("last_heartbeat", Vec::new()),
                ("worker_name", Vec::new()),
                ("group_id", Vec::new()),
                ("origin", queue.as_bytes().to_vec()),
                ("description", description.clone().into_bytes()),
                ("enqueued_at", created_iso.clone().into_bytes()),
                ("timeout", timeout.to_string().into_bytes()),
                ("status", JobStatus::Queued.as_str().as_bytes().to_vec()),
            ];
            for (field, value) in [
                ("result_ttl", options.result_ttl),
                ("failure_ttl", options.failure_ttl),
                ("ttl", options.ttl.filter(|ttl| *ttl > 0)),
            ] {
                if let Some(value) = value {
                    fields.push((field, value.to_string().into_bytes()));
                }
            }
            if !options.meta.is_empty() {
                fields.push(("meta", serde_json::to_vec(&options.meta)?));
            }
            pipe.hset_multiple(&job_key, &fields).ignore();
            if let Some(ttl) = options.ttl.filter(|ttl| *ttl > 0) {
                pipe.expire(&job_key, ttl).ignore();
                pipe.expire(keys::job_dependents(id.as_str()), ttl).ignore();
                pipe.expire(keys::job_dependencies(id.as_str()), ttl)
                    .ignore();
            }
            if options.at_front {
                pipe.lpush(&queue_key, id.as_str()).ignore();
            } else {
                pipe.rpush(&queue_key, id.as_str()).ignore();
            }
            out.push(Job {
                conn: conn.clone(),
                id,
                call: Ok(call),
                status: JobStatus::Queued,
                origin: queue.to_owned(),
                description: Some(description),
                created_at: Some(created),
                enqueued_at: Some(created),
                started_at: None,
                ended_at: None,
                last_heartbeat: None,
                worker_name: None,
                timeout: Some(timeout),
                result_ttl: options.result_ttl,
                failure_ttl: options.failure_ttl,
                ttl: options.ttl,
                meta: options.meta,
                legacy_exc_info: None,
            });
        }
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(out)
    }

    pub(crate) async fn fetch_job(&self, conn: &Connection, id: &JobId) -> Result<Option<Job>> {
        let hash: RawHash = redis::cmd("HGETALL")
            .arg(keys::job(id.as_str()))
            .query_async(&mut self.conn())
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        decode_job(conn, id.clone(), &hash).map(Some)
    }

    pub(crate) async fn save_meta(
        &self,
        id: &JobId,
        meta: &Map<String, serde_json::Value>,
    ) -> Result<()> {
        let written: i64 = self
            .scripts
            .save_meta
            .key(keys::job(id.as_str()))
            .arg(serde_json::to_vec(meta)?)
            .invoke_async(&mut self.conn())
            .await?;
        if written == 0 {
            return Err(Error::NoSuchJob(id.clone()));
        }
        Ok(())
    }

    pub(crate) async fn latest_result(&self, id: &JobId) -> Result<Option<JobResult>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(keys::results(id.as_str()))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await?;
        reply
            .ids
            .into_iter()
            .next()
            .map(|entry| decode_result(id, &entry))
            .transpose()
    }

    // ---- queues -----------------------------------------------------------------------------

    pub(crate) async fn queue_names(&self) -> Result<Vec<String>> {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::QUEUES)
            .query_async(&mut self.conn())
            .await?;
        let mut names: Vec<String> = members
            .iter()
            .filter_map(|key| keys::queue_name(key))
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    pub(crate) async fn queue_count(&self, queue: &str) -> Result<usize> {
        Ok(redis::cmd("LLEN")
            .arg(keys::queue(queue))
            .query_async(&mut self.conn())
            .await?)
    }

    pub(crate) async fn queue_job_ids(
        &self,
        queue: &str,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<JobId>> {
        let end = limit.map_or(-1, |limit| {
            i64::try_from(offset + limit).unwrap_or(i64::MAX) - 1
        });
        let ids: Vec<String> = redis::cmd("LRANGE")
            .arg(keys::queue(queue))
            .arg(offset)
            .arg(end)
            .query_async(&mut self.conn())
            .await?;
        Ok(ids.into_iter().map(JobId::from_stored).collect())
    }

    pub(crate) async fn empty_queue(&self, queue: &str) -> Result<usize> {
        Ok(self
            .scripts
            .empty
            .key(keys::queue(queue))
            .arg(keys::JOB_PREFIX)
            .arg(keys::DEPENDENTS_SUFFIX)
            .invoke_async(&mut self.conn())
            .await?)
    }

    // ---- registries -------------------------------------------------------------------------

    fn registry_key(kind: RegistryKind, queue: &str) -> String {
        match kind {
            RegistryKind::Started => keys::started(queue),
            RegistryKind::Finished => keys::finished(queue),
            RegistryKind::Failed => keys::failed(queue),
        }
    }

    pub(crate) async fn registry_count(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        Ok(redis::cmd("ZCARD")
            .arg(Self::registry_key(kind, queue))
            .query_async(&mut self.conn())
            .await?)
    }

    /// Ids in the registry, oldest deadline first. Started-registry members are
    /// `<id>:<execution id>`; the id part is returned.
    pub(crate) async fn registry_job_ids(
        &self,
        kind: RegistryKind,
        queue: &str,
    ) -> Result<Vec<JobId>> {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(Self::registry_key(kind, queue))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        Ok(members
            .into_iter()
            .map(|member| match (kind, member.rsplit_once(':')) {
                (RegistryKind::Started, Some((id, _))) => JobId::from_stored(id),
                _ => JobId::from_stored(member),
            })
            .collect())
    }

    /// Removes a job from a finished or failed registry, deleting the job too if asked.
    pub(crate) async fn registry_remove(
        &self,
        kind: RegistryKind,
        queue: &str,
        id: &JobId,
        delete_job: bool,
    ) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrem(Self::registry_key(kind, queue), id.as_str());
        if delete_job {
            pipe.del(&[
                keys::job(id.as_str()),
                keys::job_dependents(id.as_str()),
                keys::job_dependencies(id.as_str()),
                keys::results(id.as_str()),
            ])
            .ignore();
        }
        let (removed,): (i64,) = pipe.query_async(&mut self.conn()).await?;
        Ok(removed == 1)
    }

    /// Drops the entries whose time has passed: expired results and failures, and, in the
    /// started registry, runs whose deadline passed without a heartbeat (their jobs go to the
    /// failed registry as abandoned, as RQ's cleanup does). Returns how many entries went.
    pub(crate) async fn registry_cleanup(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        let key = Self::registry_key(kind, queue);
        let now = now();
        if kind != RegistryKind::Started {
            return Ok(redis::cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg(0)
                .arg(now.timestamp())
                .query_async(&mut self.conn())
                .await?);
        }
        let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(0)
            .arg(now.timestamp())
            .query_async(&mut self.conn())
            .await?;
        let mut count = 0;
        for member in expired {
            let Some((id, execution_id)) = member.rsplit_once(':') else {
                let _: () = redis::cmd("ZREM")
                    .arg(&key)
                    .arg(&member)
                    .query_async(&mut self.conn())
                    .await?;
                continue;
            };
            let execution = Execution {
                job_id: JobId::from_stored(id),
                execution_id: execution_id.to_owned(),
                queue: queue.to_owned(),
                started_at: now,
            };
            let reason = format!(
                "Moved to FailedJobRegistry, due to AbandonedJobError, at {}",
                codec::format_time(now)
            );
            let failure_ttl = self.job_failure_ttl(&execution.job_id).await?;
            if self
                .fail(&execution, "", failure_ttl, &reason, JobStatus::Failed)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Cleans a queue's registries (abandoned runs to failed, expired entries dropped) under
    /// RQ's maintenance lock; `Ok(None)` when another process holds the lock.
    pub(crate) async fn maintain(&self, queue: &str) -> Result<Option<usize>> {
        let lock = keys::clean_registries(queue);
        // RQ holds the lock for at most 899 s; it is dropped as soon as the work is done.
        let taken: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(899)
            .query_async(&mut self.conn())
            .await?;
        if taken.is_none() {
            return Ok(None);
        }
        let mut cleaned = 0;
        let mut outcome = Ok(());
        for kind in [
            RegistryKind::Started,
            RegistryKind::Finished,
            RegistryKind::Failed,
        ] {
            match self.registry_cleanup(kind, queue).await {
                Ok(count) => cleaned += count,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        let _: () = redis::cmd("DEL")
            .arg(&lock)
            .query_async(&mut self.conn())
            .await?;
        outcome.map(|()| Some(cleaned))
    }

    async fn job_failure_ttl(&self, id: &JobId) -> Result<Option<i64>> {
        let ttl: Option<String> = redis::cmd("HGET")
            .arg(keys::job(id.as_str()))
            .arg("failure_ttl")
            .query_async(&mut self.conn())
            .await?;
        Ok(ttl.and_then(|ttl| ttl.parse().ok()))
    }

    /// Moves a failed job back to the tail of `queue`. `Ok(false)`: it was not in the registry.
    pub(crate) async fn requeue(&self, queue: &str, id: &JobId) -> Result<bool> {
        let status: i64 = self
            .scripts
            .requeue
            .key(keys::failed(queue))
            .key(keys::job(id.as_str()))
            .key(keys::QUEUES)
            .arg(id.as_str())
            .arg(codec::format_time(now()))
            .arg(EMPTY_EXC_INFO)
            .arg(keys::QUEUE_PREFIX)
            .arg(queue)
            .invoke_async(&mut self.conn())
            .await?;
        match status {
            1 => Ok(true),
            -1 => Err(Error::NoSuchJob(id.clone())),
            _ => Ok(false),
        }
    }

    /// Moves a job that did not run (queued or anywhere else) to the failed registry with an
    /// error, as RQ's `FailedJobRegistry.add` does.
    pub(crate) async fn fail_by_hand(&self, job: &Job, exc_info: &str) -> Result<()> {
        let execution = Execution {
            job_id: job.id.clone(),
            execution_id: String::new(),
            queue: job.origin.clone(),
            started_at: now(),
        };
        self.fail(&execution, "", job.failure_ttl, exc_info, JobStatus::Failed)
            .await?;
        Ok(())
    }

    // ---- runs -------------------------------------------------------------------------------

    /// Takes up to `count` jobs from `queues` (highest priority first) and starts them.
    pub(crate) async fn dequeue(
        &self,
        conn: &Connection,
        worker: &str,
        queues: &[String],
        count: usize,
        liveness: Liveness,
    ) -> Result<Vec<Started>> {
        let now = now();
        let mut invocation = self.scripts.dequeue.prepare_invoke();
        for queue in queues {
            invocation.key(keys::queue(queue));
        }
        invocation
            .key(keys::worker(worker))
            .arg(count)
            .arg(worker)
            .arg(codec::format_time(now))
            .arg(codec::epoch_float(now))
            .arg(now.timestamp())
            .arg(liveness.execution_ttl)
            .arg(keys::JOB_PREFIX)
            .arg(keys::STARTED_PREFIX)
            .arg(keys::EXECUTION_PREFIX)
            .arg(keys::EXECUTIONS_PREFIX);
        for queue in queues {
            invocation.arg(queue);
        }
        for _ in 0..count {
            invocation.arg(uuid::Uuid::new_v4().simple().to_string());
        }
        let reply: Vec<Value> = invocation.invoke_async(&mut self.conn()).await?;
        let mut started = Vec::with_capacity(reply.len() / 4);
        let mut items = reply.into_iter();
        while let (Some(queue_index), Some(id), Some(execution_id), Some(hash)) =
            (items.next(), items.next(), items.next(), items.next())
        {
            let queue_index: usize =
                redis::from_redis_value(queue_index).map_err(redis::RedisError::from)?;
            let queue = queues
                .get(queue_index.wrapping_sub(1))
                .cloned()
                .unwrap_or_default();
            let id = JobId::from_stored(
                redis::from_redis_value::<String>(id).map_err(redis::RedisError::from)?,
            );
            let execution_id: String =
                redis::from_redis_value(execution_id).map_err(redis::RedisError::from)?;
            let hash: RawHash = redis::from_redis_value(hash).map_err(redis::RedisError::from)?;
            let job = decode_job(conn, id.clone(), &hash).unwrap_or_else(|error| {
                Job::unreadable(conn, id.clone(), &queue, error.to_string())
            });
            started.push(Started {
                job,
                execution: Execution {
                    job_id: id,
                    execution_id,
                    queue,
                    started_at: now,
                },
            });
        }
        Ok(started)
    }

    /// Blocks until `queue` holds an id or `timeout` passes, without taking anything: a
    /// same-list `BLMOVE LEFT LEFT` pops the head and pushes it straight back.
    pub(crate) async fn wait_for_job(
        connection: &mut MultiplexedConnection,
        queue: &str,
        timeout: Duration,
    ) -> Result<bool> {
        let key = keys::queue(queue);
        let moved: Option<String> = redis::cmd("BLMOVE")
            .arg(&key)
            .arg(&key)
            .arg("LEFT")
            .arg("LEFT")
            .arg(timeout.as_secs_f64())
            .query_async(connection)
            .await?;
        Ok(moved.is_some())
    }

    pub(crate) async fn heartbeat(
        &self,
        worker: &str,
        running: &[Execution],
        liveness: Liveness,
    ) -> Result<HeartbeatReply> {
        let now = now();
        let mut invocation = self.scripts.heartbeat.key(keys::worker(worker));
        invocation
            .arg(codec::format_time(now))
            .arg(codec::epoch_float(now))
            .arg(now.timestamp())
            .arg(liveness.execution_ttl)
            .arg(liveness.worker_ttl)
            .arg(keys::JOB_PREFIX)
            .arg(keys::STARTED_PREFIX)
            .arg(keys::EXECUTION_PREFIX)
            .arg(keys::EXECUTIONS_PREFIX);
        for execution in running {
            invocation
                .arg(execution.job_id.as_str())
                .arg(&execution.execution_id)
                .arg(&execution.queue);
        }
        let reply: Vec<Value> = invocation.invoke_async(&mut self.conn()).await?;
        let mut items = reply.into_iter();
        let worker_missing = items
            .next()
            .map(redis::from_redis_value::<i64>)
            .transpose()
            .map_err(redis::RedisError::from)?
            == Some(1);
        let lost = items
            .filter_map(|item| redis::from_redis_value::<String>(item).ok())
            .collect();
        Ok(HeartbeatReply {
            worker_missing,
            lost,
        })
    }

    /// Records a success. `Ok(false)`: the execution was stale and nothing was written.
    pub(crate) async fn finish(
        &self,
        execution: &Execution,
        worker: &str,
        result_ttl: i64,
        return_value: &serde_json::Value,
    ) -> Result<bool> {
        let id = execution.job_id.as_str();
        let ended = now();
        let encoded = if return_value.is_null() {
            String::new()
        } else {
            codec::encode_return_value(return_value)
        };
        let recorded: i64 = self
            .scripts
            .finish
            .key(keys::job(id))
            .key(keys::started(&execution.queue))
            .key(keys::execution(id, &execution.execution_id))
            .key(keys::executions(id))
            .key(keys::worker(worker))
            .key(keys::finished(&execution.queue))
            .key(keys::results(id))
            .key(keys::job_dependents(id))
            .key(keys::job_dependencies(id))
            .arg(id)
            .arg(&execution.execution_id)
            .arg(worker)
            .arg(codec::format_time(ended))
            .arg(ended.timestamp())
            .arg(result_ttl)
            .arg(encoded)
            .arg(codec::epoch_float(execution.started_at))
            .arg(codec::epoch_float(ended))
            .arg(working_seconds(execution.started_at, ended))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(recorded == 1)
    }

    /// Records a failure (see `fail.lua` for its three uses). `Ok(false)`: the execution was
    /// stale, or the job is gone.
    pub(crate) async fn fail(
        &self,
        execution: &Execution,
        worker: &str,
        failure_ttl: Option<i64>,
        exc_info: &str,
        status: JobStatus,
    ) -> Result<bool> {
        let id = execution.job_id.as_str();
        let ended = now();
        // Only the worker that ran the job knows when it started: abandoned runs and jobs failed
        // by hand get no execution fields, as in RQ.
        let started = if worker.is_empty() {
            String::new()
        } else {
            codec::epoch_float(execution.started_at)
        };
        let recorded: i64 = self
            .scripts
            .fail
            .key(keys::job(id))
            .key(keys::started(&execution.queue))
            .key(keys::execution(id, &execution.execution_id))
            .key(keys::executions(id))
            .key(keys::worker(worker))
            .key(keys::failed(&execution.queue))
            .key(keys::results(id))
            .key(keys::job_dependents(id))
            .key(keys::job_dependencies(id))
            .key(keys::queue(&execution.queue))
            .arg(id)
            .arg(&execution.execution_id)
            .arg(worker)
            .arg(codec::format_time(ended))
            .arg(ended.timestamp())
            .arg(failure_ttl.map(|ttl| ttl.to_string()).unwrap_or_default())
            .arg(codec::encode_exc_string(exc_info))
            .arg(started)
            .arg(codec::epoch_float(ended))
            .arg(working_seconds(execution.started_at, ended))
            .arg(status.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(recorded == 1)
    }

    /// Ends a running execution and puts its job back at the head of its queue.
    pub(crate) async fn release(&self, execution: &Execution, worker: &str) -> Result<bool> {
        let id = execution.job_id.as_str();
        let released: i64 = self
            .scripts
            .release
            .key(keys::job(id))
            .key(keys::started(&execution.queue))
            .key(keys::execution(id, &execution.execution_id))
            .key(keys::executions(id))
            .key(keys::queue(&execution.queue))
            .key(keys::worker(worker))
            .arg(id)
            .arg(&execution.execution_id)
            .arg(codec::format_time(now()))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(released == 1)
    }

    // ---- workers ----------------------------------------------------------------------------

    /// Writes the worker hash and its memberships, as RQ's `register_birth` does.
    pub(crate) async fn register_worker(
        &self,
        info: &WorkerInfo,
        liveness: Liveness,
    ) -> Result<()> {
        let key = keys::worker(&info.name);
        let existing: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&key)
            .arg("birth")
            .arg("death")
            .query_async(&mut self.conn())
            .await?;
        if matches!(existing.as_slice(), [Some(_), None]) {
            return Err(Error::WorkerExists(info.name.clone()));
        }
        self.reregister_worker(info, liveness).await
    }

    /// Writes the worker hash and memberships again (after the hash expired), as they are in
    /// `info`.
    pub(crate) async fn reregister_worker(
        &self,
        info: &WorkerInfo,
        liveness: Liveness,
    ) -> Result<()> {
        let key = keys::worker(&info.name);
        let ip_address = self.client_address().await.unwrap_or_default();
        let now = codec::format_time(now());
        let birth = info.birth.map_or_else(|| now.clone(), codec::format_time);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        pipe.hset_multiple(
            &key,
            &[
                ("birth", birth.as_str()),
                ("last_heartbeat", now.as_str()),
                ("queues", &info.queues.join(",")),
                ("pid", &info.pid.to_string()),
                ("hostname", &info.hostname),
                ("ip_address", &ip_address),
                ("version", &info.version),
                ("state", info.state.as_str()),
            ],
        )
        .ignore();
        pipe.sadd(keys::WORKERS, &key).ignore();
        for queue in &info.queues {
            pipe.sadd(keys::workers_by_queue(queue), &key).ignore();
        }
        pipe.expire(&key, i64::try_from(liveness.worker_ttl).unwrap_or(i64::MAX))
            .ignore();
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// This connection's address as the server sees it (RQ's `ip_address`).
    async fn client_address(&self) -> Result<String> {
        let info: String = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(&mut self.conn())
            .await?;
        Ok(info
            .split_whitespace()
            .find_map(|part| part.strip_prefix("addr="))
            .unwrap_or_default()
            .to_owned())
    }

    pub(crate) async fn set_worker_state(&self, worker: &str, state: WorkerState) -> Result<()> {
        let _: i64 = self
            .scripts
            .worker_state
            .key(keys::worker(worker))
            .arg(state.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Removes the worker from the worker sets and marks its hash dead (kept 60 s), as RQ's
    /// `register_death` does.
    pub(crate) async fn register_death(&self, worker: &str, queues: &[String]) -> Result<()> {
        let key = keys::worker(worker);
        let mut pipe = redis::pipe();
        pipe.atomic().srem(keys::WORKERS, &key).ignore();
        for queue in queues {
            pipe.srem(keys::workers_by_queue(queue), &key).ignore();
        }
        pipe.hset(&key, "death", codec::format_time(now())).ignore();
        pipe.hdel(&key, "current_job").ignore();
        pipe.expire(&key, 60).ignore();
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The live workers (of one queue, or all), Python's and rqrs's alike. Keys whose hash has
    /// expired are dropped from the sets, as RQ's readers do.
    pub(crate) async fn workers(&self, queue: Option<&str>) -> Result<Vec<WorkerInfo>> {
        let set = queue.map_or_else(|| keys::WORKERS.to_owned(), keys::workers_by_queue);
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&set)
            .query_async(&mut self.conn())
            .await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for member in &members {
            pipe.hgetall(member);
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        let mut workers = Vec::new();
        for (key, hash) in members.iter().zip(hashes) {
            if hash.is_empty() {
                let _: () = redis::cmd("SREM")
                    .arg(&set)
                    .arg(key)
                    .query_async(&mut self.conn())
                    .await?;
                continue;
            }
            workers.push(WorkerInfo::from_hash(
                keys::worker_name(key).unwrap_or(key),
                &hash,
            ));
        }
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(workers)
    }
}

fn working_seconds(started: DateTime<Utc>, ended: DateTime<Utc>) -> String {
    let micros = (ended - started).num_microseconds().unwrap_or(0).max(0);
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A job from its hash.
fn decode_job(conn: &Connection, id: JobId, hash: &RawHash) -> Result<Job> {
    let status = codec::status(hash).map_err(|reason| Error::MalformedJob {
        id: id.clone(),
        reason,
    })?;
    let call = match hash.get("data") {
        Some(data) => codec::decode_data(data),
        None => Err("the job hash has no data field".to_owned()),
    };
    Ok(Job {
        conn: conn.clone(),
        call,
        status,
        origin: codec::text(hash, "origin").unwrap_or_default(),
        description: codec::text(hash, "description"),
        created_at: codec::time(hash, "created_at"),
        enqueued_at: codec::time(hash, "enqueued_at"),
        started_at: codec::time(hash, "started_at"),
        ended_at: codec::time(hash, "ended_at"),
        last_heartbeat: codec::time(hash, "last_heartbeat"),
        worker_name: codec::text(hash, "worker_name"),
        timeout: codec::integer(hash, "timeout"),
        result_ttl: codec::integer(hash, "result_ttl"),
        failure_ttl: codec::integer(hash, "failure_ttl"),
        ttl: codec::integer(hash, "ttl"),
        meta: hash
            .get("meta")
            .filter(|raw| !raw.is_empty())
            .map(|raw| codec::decode_meta(raw))
            .unwrap_or_default(),
        legacy_exc_info: hash
            .get("exc_info")
            .map(|raw| String::from_utf8_lossy(&codec::decompress(raw)).into_owned()),
        id,
    })
}

/// A result-stream entry.
fn decode_result(id: &JobId, entry: &redis::streams::StreamId) -> Result<JobResult> {
    let field = |name: &str| -> Option<Vec<u8>> {
        entry
            .map
            .get(name)
            .and_then(|value| redis::from_redis_value_ref::<Vec<u8>>(value).ok())
    };
    let malformed = |reason: String| Error::MalformedJob {
        id: id.clone(),
        reason,
    };
    let code = field("type")
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.parse::<u8>().ok());
    let result_type = code
        .and_then(ResultType::from_code)
        .ok_or_else(|| malformed(format!("result {} has no valid type", entry.id)))?;
    let millis = entry
        .id
        .split('-')
        .next()
        .and_then(|ms| ms.parse::<i64>().ok());
    Ok(JobResult {
        result_type,
        created_at: millis.and_then(DateTime::from_timestamp_millis),
        return_value: field("return_value")
            .map(|raw| codec::decode_return_value(&raw))
            .transpose()
            .map_err(malformed)?,
        exc_string: field("exc_string").map(|raw| codec::decode_exc_string(&raw)),
        worker_name: field("worker_name")
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .filter(|name| !name.is_empty()),
        execution_id: field("execution_id").map(|raw| String::from_utf8_lossy(&raw).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}

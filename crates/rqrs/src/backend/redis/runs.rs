//! Runs of jobs: the atomic dequeue that starts them, the wait for work, heartbeats, and the
//! outcome (finish, fail, release), each one script.

use std::sync::LazyLock;

use redis::Script;

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Value;
use redis::aio::MultiplexedConnection;

use super::codec::RawHash;
use super::jobs::decode_job;
use super::{
    Dequeued, Execution, HeartbeatReply, Liveness, RedisBackend, Started, codec, keys, now,
};

/// What a call that records a run's outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Recorded by this call.
    Now,
    /// Recorded already, by an earlier call for the same run whose reply was lost.
    Before,
    /// Refused, nothing written: the run is no longer the job's (it was recovered, and maybe
    /// handed out again), or the job is gone.
    Refused,
}

impl Recorded {
    fn from_reply(code: i64) -> Self {
        match code {
            1 => Recorded::Now,
            2 => Recorded::Before,
            _ => Recorded::Refused,
        }
    }
}
use crate::Connection;
use crate::error::Result;
use crate::job::{Job, JobId, JobStatus};

static DEQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/dequeue.lua")));
static HEARTBEAT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/heartbeat.lua")));
// lib.lua goes in front of the scripts that end a run: a Redis script cannot call another.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/lib.lua"),
        include_str!("scripts/finish.lua")
    ))
});
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/lib.lua"),
        include_str!("scripts/fail.lua")
    ))
});
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/lib.lua"),
        include_str!("scripts/retry.lua")
    ))
});
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/lib.lua"),
        include_str!("scripts/release.lua")
    ))
});

/// The key pieces `release_dependents` in lib.lua builds keys from, in its order.
const RELEASE_PIECES: [&str; 7] = [
    keys::JOB_PREFIX,
    keys::DEPENDENTS_SUFFIX,
    keys::DEPENDENCIES_PREFIX,
    keys::DEPENDENCIES_SUFFIX,
    keys::DEFERRED_PREFIX,
    keys::QUEUE_PREFIX,
    keys::QUEUES,
];

/// The longest TTL rqrs sets (100 years): a job's `result_ttl` or `failure_ttl` past EXPIRE's
/// range would stop a script half-way, so larger values are clamped to this.
pub(crate) const MAX_TTL: i64 = 3_153_600_000;

/// Fresh execution ids for a dequeue of up to `count` jobs. The worker makes them, so that it
/// can find the runs of a dequeue whose reply it lost ([`RedisBackend::reclaim`]).
pub(crate) fn execution_ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect()
}

impl RedisBackend {
    /// Takes up to one job per execution id from `queues` (highest priority first) and starts
    /// them.
    pub(crate) async fn dequeue(
        &self,
        conn: &Connection,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
        liveness: Liveness,
    ) -> Result<Dequeued> {
        let sources: Vec<(String, String)> = queues
            .iter()
            .map(|queue| (keys::queue(queue), queue.clone()))
            .collect();
        self.dequeue_lists(conn, worker, &sources, execution_ids, liveness, true)
            .await
    }

    /// Puts back at the head of their queues the jobs that a dequeue with these execution ids
    /// started, if it ran: for a dequeue whose reply was lost with the connection, whose runs
    /// no one holds. Returns how many were put back. Each is released by the stale-safe
    /// release script, so a run that ended or was recovered meanwhile is left alone.
    pub(crate) async fn reclaim(
        &self,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
    ) -> Result<usize> {
        let mut reclaimed = 0;
        for queue in queues {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(keys::started(queue))
                .arg(0)
                .arg(-1)
                .query_async(&mut self.conn())
                .await?;
            for member in members {
                let Some((id, execution_id)) = member.rsplit_once(':') else {
                    continue;
                };
                if !execution_ids.iter().any(|sent| sent == execution_id) {
                    continue;
                }
                let execution = Execution {
                    job_id: JobId::from_stored(id.to_owned()),
                    execution_id: execution_id.to_owned(),
                    queue: queue.clone(),
                    started_at: now(),
                };
                if self.release(&execution, worker).await? {
                    reclaimed += 1;
                }
            }
        }
        Ok(reclaimed)
    }

    /// [`dequeue`](Self::dequeue) from lists other than the queues' own: `sources` are (list
    /// key, name of the queue its jobs belong to); test mode runs a job from a list of its own.
    pub(crate) async fn dequeue_lists(
        &self,
        conn: &Connection,
        worker: &str,
        sources: &[(String, String)],
        execution_ids: &[String],
        liveness: Liveness,
        honour_suspension: bool,
    ) -> Result<Dequeued> {
        let now = now();
        let mut invocation = DEQUEUE.prepare_invoke();
        for (list, _) in sources {
            invocation.key(list);
        }
        invocation
            .key(keys::worker(worker))
            .key(keys::SUSPENDED)
            .arg(execution_ids.len())
            .arg(worker)
            .arg(if honour_suspension { "1" } else { "" })
            .arg(codec::format_time(now))
            .arg(codec::epoch_float(now))
            .arg(now.timestamp())
            .arg(liveness.execution_ttl)
            .arg(keys::JOB_PREFIX)
            .arg(keys::STARTED_PREFIX)
            .arg(keys::EXECUTION_PREFIX)
            .arg(keys::EXECUTIONS_PREFIX);
        for (_, queue) in sources {
            invocation.arg(queue);
        }
        for execution_id in execution_ids {
            invocation.arg(execution_id);
        }
        let reply: Vec<Value> = invocation.invoke_async(&mut self.conn()).await?;
        if let [Value::BulkString(marker)] = reply.as_slice()
            && marker == b"suspended"
        {
            return Ok(Dequeued::Suspended);
        }
        let mut started = Vec::with_capacity(reply.len() / 4);
        let mut items = reply.into_iter();
        while let (Some(queue_index), Some(id), Some(execution_id), Some(hash)) =
            (items.next(), items.next(), items.next(), items.next())
        {
            let queue_index: usize =
                redis::from_redis_value(queue_index).map_err(redis::RedisError::from)?;
            let queue = sources
                .get(queue_index.wrapping_sub(1))
                .map(|(_, queue)| queue.clone())
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
        Ok(Dequeued::Jobs(started))
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
        let mut invocation = HEARTBEAT.key(keys::worker(worker));
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

    /// Records a success, releases the job's dependents, and runs it again in `repeat_in`
    /// seconds if it repeats.
    pub(crate) async fn finish(
        &self,
        execution: &Execution,
        worker: &str,
        result_ttl: i64,
        return_value: &serde_json::Value,
        repeat_in: Option<u64>,
    ) -> Result<Recorded> {
        let id = execution.job_id.as_str();
        let ended = now();
        let encoded = if return_value.is_null() {
            String::new()
        } else {
            codec::encode_return_value(return_value)
        };
        let recorded: i64 = FINISH
            .key(keys::job(id))
            .key(keys::started(&execution.queue))
            .key(keys::execution(id, &execution.execution_id))
            .key(keys::executions(id))
            .key(keys::worker(worker))
            .key(keys::finished(&execution.queue))
            .key(keys::results(id))
            .key(keys::job_dependents(id))
            .key(keys::job_dependencies(id))
            .key(keys::queue(&execution.queue))
            .key(keys::scheduled(&execution.queue))
            .arg(id)
            .arg(&execution.execution_id)
            .arg(worker)
            .arg(codec::format_time(ended))
            .arg(ended.timestamp())
            .arg(result_ttl.min(MAX_TTL))
            .arg(encoded)
            .arg(codec::epoch_float(execution.started_at))
            .arg(codec::epoch_float(ended))
            .arg(working_seconds(execution.started_at, ended))
            .arg(
                repeat_in
                    .map(|seconds| seconds.to_string())
                    .unwrap_or_default(),
            )
            .arg(&RELEASE_PIECES[..])
            .invoke_async(&mut self.conn())
            .await?;
        Ok(Recorded::from_reply(recorded))
    }

    /// Records a failure (see `fail.lua` for its three uses).
    pub(crate) async fn fail(
        &self,
        execution: &Execution,
        worker: &str,
        failure_ttl: Option<i64>,
        exc_info: &str,
        status: JobStatus,
    ) -> Result<Recorded> {
        let id = execution.job_id.as_str();
        let ended = now();
        // Only the worker that ran the job knows when it started: abandoned runs and jobs failed
        // by hand get no execution fields, as in RQ.
        let started = if worker.is_empty() {
            String::new()
        } else {
            codec::epoch_float(execution.started_at)
        };
        let recorded: i64 = FAIL
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
            .arg(
                failure_ttl
                    .map(|ttl| ttl.min(MAX_TTL).to_string())
                    .unwrap_or_default(),
            )
            .arg(codec::encode_exc_string(exc_info))
            .arg(started)
            .arg(codec::epoch_float(ended))
            .arg(working_seconds(execution.started_at, ended))
            .arg(status.as_str())
            .arg(&RELEASE_PIECES[..])
            .invoke_async(&mut self.conn())
            .await?;
        Ok(Recorded::from_reply(recorded))
    }

    /// Records a failed run that runs again in `delay` seconds (0: back on its queue at once,
    /// at its head if `at_front`).
    pub(crate) async fn retry(
        &self,
        execution: &Execution,
        worker: &str,
        exc_info: &str,
        delay: u64,
        at_front: bool,
    ) -> Result<Recorded> {
        let id = execution.job_id.as_str();
        let ended = now();
        let recorded: i64 = RETRY
            .key(keys::job(id))
            .key(keys::started(&execution.queue))
            .key(keys::execution(id, &execution.execution_id))
            .key(keys::executions(id))
            .key(keys::worker(worker))
            .key(keys::results(id))
            .key(keys::queue(&execution.queue))
            .key(keys::scheduled(&execution.queue))
            .key(keys::QUEUES)
            .arg(id)
            .arg(&execution.execution_id)
            .arg(worker)
            .arg(codec::format_time(ended))
            .arg(ended.timestamp())
            .arg(codec::encode_exc_string(exc_info))
            .arg(if worker.is_empty() {
                String::new()
            } else {
                codec::epoch_float(execution.started_at)
            })
            .arg(codec::epoch_float(ended))
            .arg(working_seconds(execution.started_at, ended))
            .arg(delay)
            .arg(if at_front { "1" } else { "" })
            .arg(keys::queue(&execution.queue))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(Recorded::from_reply(recorded))
    }

    /// Ends a running execution and puts its job back at the head of its queue.
    pub(crate) async fn release(&self, execution: &Execution, worker: &str) -> Result<bool> {
        let id = execution.job_id.as_str();
        let released: i64 = RELEASE
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
}

fn working_seconds(started: DateTime<Utc>, ended: DateTime<Utc>) -> String {
    let micros = (ended - started).num_microseconds().unwrap_or(0).max(0);
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

//! Runs ([`RunStore`]): the atomic dequeue that starts them, the watch for work, heartbeats,
//! and the outcome (finish, fail, retry, release), each one script.

use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use tokio::task::JoinSet;

use super::codec::{self, RawHash};
use super::{Current, RedisBackend, blocking_connection, executions_ttl, keys, now};
use crate::backend::RunStore;
use crate::backend::types::{
    Dequeued, Ending, Execution, Failed, Finishing, HeartbeatReply, JobRecord, Liveness, Recorded,
    Retried, RunId, Started, Watch, Worked,
};
use crate::defaults::{DEFAULT_FAILURE_TTL, MAX_TTL, RESULTS_KEPT};
use crate::error::Result;
use crate::job::JobId;
use crate::ttl::Ttl;
use keys::Keys;

// limit.lua, lib.lua and start.lua go in front of the scripts that need them: a Redis script
// cannot call another.
static WORK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/lib.lua"),
        include_str!("scripts/start.lua"),
        include_str!("scripts/work.lua")
    ))
});
static HEARTBEAT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/heartbeat.lua")));
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/lib.lua"),
        include_str!("scripts/fail.lua")
    ))
});
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/lib.lua"),
        include_str!("scripts/retry.lua")
    ))
});
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/lib.lua"),
        include_str!("scripts/release.lua")
    ))
});

/// How long one blocking wait for work lasts before it is issued again.
const BLOCK: Duration = Duration::from_secs(5);

/// The key pieces `release_dependents` in lib.lua builds keys from, in its order (the key
/// prefix last, for the rate limiter).
fn release_pieces(keys: &Keys) -> [&str; 8] {
    [
        keys.job_prefix(),
        keys::DEPENDENTS_SUFFIX,
        keys.dependencies_prefix(),
        keys::DEPENDENCIES_SUFFIX,
        keys.deferred_prefix(),
        keys.queue_prefix(),
        keys.queues(),
        keys.root(),
    ]
}

/// Who ends a run, as `fail.lua` and `retry.lua` take it.
#[derive(Debug, Clone, Copy)]
pub(super) enum By<'a> {
    /// The worker that ran it.
    Worker {
        name: &'a str,
        started_at: DateTime<Utc>,
    },
    /// Maintenance, for a run abandoned by its worker.
    Abandoned,
    /// By hand, for a job that did not run (`fail.lua` only).
    Hand,
}

impl<'a> From<Ending<'a>> for By<'a> {
    fn from(ending: Ending<'a>) -> Self {
        match ending {
            Ending::Worker { name, started_at } => By::Worker { name, started_at },
            Ending::Abandoned => By::Abandoned,
        }
    }
}

impl By<'_> {
    fn word(self) -> &'static str {
        match self {
            By::Worker { .. } => "worker",
            By::Abandoned => "abandoned",
            By::Hand => "hand",
        }
    }
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

/// A TTL as the scripts take it, in seconds with `-1` for forever, clamped to [`MAX_TTL`].
fn ttl_seconds(ttl: Ttl) -> i64 {
    let max = i64::try_from(MAX_TTL.as_secs()).unwrap_or(i64::MAX);
    ttl.to_seconds().min(max)
}

impl RunStore for RedisBackend {
    async fn work(
        &self,
        worker: &str,
        finishing: &[&Finishing],
        queues: &[String],
        execution_ids: &[String],
        liveness: Liveness,
    ) -> Result<Worked> {
        let now = now();
        let iso = codec::format_time(now);
        let epoch = codec::epoch_float(now);
        let mut invocation = WORK.prepare_invoke();
        for queue in queues {
            invocation.key(self.keys.queue(queue));
        }
        invocation
            .key(self.keys.worker(worker))
            .key(self.keys.worker_executions(worker))
            .key(self.keys.suspended())
            .arg(execution_ids.len())
            .arg(worker)
            .arg(&iso)
            .arg(&epoch)
            .arg(now.timestamp())
            .arg(liveness.execution_ttl.as_secs())
            .arg(executions_ttl(liveness))
            .arg(RESULTS_KEPT)
            .arg(finishing.len())
            .arg(&release_pieces(&self.keys)[..])
            .arg(self.keys.started_prefix())
            .arg(self.keys.execution_prefix())
            .arg(self.keys.executions_prefix())
            .arg(self.keys.finished_prefix())
            .arg(self.keys.failed_prefix())
            .arg(self.keys.canceled_prefix())
            .arg(self.keys.scheduled_prefix())
            .arg(self.keys.results_prefix());
        for queue in queues {
            invocation.arg(queue);
        }
        for success in finishing {
            let run = &success.execution.run;
            let finished = &success.finished;
            let (limit_key, limit_concurrency) = success
                .rate_limit
                .as_ref()
                .map_or(("", 0), |limit| (limit.key(), limit.concurrency()));
            invocation
                .arg(run.job_id.as_str())
                .arg(&run.execution_id)
                .arg(&run.queue)
                .arg(ttl_seconds(finished.result_ttl))
                .arg(if finished.return_value.is_null() {
                    String::new()
                } else {
                    codec::result::encode_return_value(&finished.return_value)
                })
                .arg(codec::epoch_float(success.execution.started_at))
                .arg(working_seconds(success.execution.started_at, now))
                .arg(
                    finished
                        .repeat_in
                        .map(|seconds| seconds.to_string())
                        .unwrap_or_default(),
                )
                .arg(limit_key)
                .arg(limit_concurrency)
                .arg(if success.has_dependencies { "1" } else { "" });
        }
        for execution_id in execution_ids {
            invocation.arg(execution_id);
        }
        let reply: (Vec<i64>, Vec<Value>) = invocation.invoke_async(&mut self.conn()).await?;
        let (codes, taken) = reply;
        let recorded = codes.into_iter().map(Recorded::from_reply).collect();
        let dequeued = taken_jobs(taken, queues, now)?;
        Ok(Worked { recorded, dequeued })
    }

    async fn reclaim(
        &self,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
    ) -> Result<usize> {
        let mut reclaimed = 0;
        for queue in queues {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(self.keys.started(queue))
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
                let run = RunId {
                    job_id: JobId::from_stored(id),
                    execution_id: execution_id.to_owned(),
                    queue: queue.clone(),
                };
                if self.release(&run, worker).await? {
                    reclaimed += 1;
                }
            }
        }
        Ok(reclaimed)
    }

    async fn heartbeat(
        &self,
        worker: &str,
        running: &[Execution],
        liveness: Liveness,
    ) -> Result<HeartbeatReply> {
        let now = now();
        let mut invocation = HEARTBEAT.key(self.keys.worker(worker));
        invocation.key(self.keys.worker_executions(worker));
        invocation
            .arg(codec::format_time(now))
            .arg(codec::epoch_float(now))
            .arg(now.timestamp())
            .arg(liveness.execution_ttl.as_secs())
            .arg(liveness.worker_ttl.as_secs())
            .arg(executions_ttl(liveness))
            .arg(self.keys.job_prefix())
            .arg(self.keys.started_prefix())
            .arg(self.keys.execution_prefix())
            .arg(self.keys.executions_prefix());
        for execution in running {
            let run = &execution.run;
            invocation
                .arg(run.job_id.as_str())
                .arg(&run.execution_id)
                .arg(&run.queue);
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

    async fn fail(&self, run: &RunId, ending: Ending<'_>, failed: &Failed) -> Result<Recorded> {
        self.record_failure(
            &run.job_id,
            &run.queue,
            Some(&run.execution_id),
            ending.into(),
            failed,
        )
        .await
    }

    async fn retry(&self, run: &RunId, ending: Ending<'_>, retried: &Retried) -> Result<Recorded> {
        let by = By::from(ending);
        let id = run.job_id.as_str();
        let ended = now();
        let (worker, worker_key) = worker_of(&self.keys, by);
        let started = started_of(by);
        let recorded: i64 = RETRY
            .key(self.keys.job(id))
            .key(self.keys.started(&run.queue))
            .key(self.keys.execution(id, &run.execution_id))
            .key(self.keys.executions(id))
            .key(worker_key)
            .key(self.keys.results(id))
            .key(self.keys.queue(&run.queue))
            .key(self.keys.scheduled(&run.queue))
            .key(self.keys.queues())
            .arg(id)
            .arg(by.word())
            .arg(&run.execution_id)
            .arg(worker)
            .arg(codec::format_time(ended))
            .arg(ended.timestamp())
            .arg(codec::result::encode_exc_string(&retried.exc_info))
            .arg(started.map(codec::epoch_float).unwrap_or_default())
            .arg(codec::epoch_float(ended))
            .arg(started.map_or_else(String::new, |started| working_seconds(started, ended)))
            .arg(retried.delay)
            .arg(if retried.at_front { "1" } else { "" })
            .arg(self.keys.queue(&run.queue))
            .arg(RESULTS_KEPT)
            .arg(self.keys.root())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(Recorded::from_reply(recorded))
    }

    async fn release(&self, run: &RunId, worker: &str) -> Result<bool> {
        let id = run.job_id.as_str();
        let released: i64 = RELEASE
            .key(self.keys.job(id))
            .key(self.keys.started(&run.queue))
            .key(self.keys.execution(id, &run.execution_id))
            .key(self.keys.executions(id))
            .key(self.keys.queue(&run.queue))
            .key(self.keys.worker(worker))
            .arg(id)
            .arg(&run.execution_id)
            .arg(codec::format_time(now()))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(released == 1)
    }

    /// One task per queue, each on a connection of its own: while the worker waits, a
    /// same-list `BLMOVE q q LEFT LEFT` returns as soon as the queue holds an id, leaving the
    /// list as it was.
    fn watch_queues(&self, queues: &[String], watch: Watch) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        for queue in queues {
            tasks.spawn(watch_queue(
                Arc::clone(&self.current),
                self.keys.queue(queue),
                watch.waiting.clone(),
                Arc::clone(&watch.ready),
            ));
        }
        tasks
    }
}

impl RedisBackend {
    /// Records a failure with `fail.lua`: of a run (`by` its worker, or abandoned), or of a job
    /// that did not run (`by` hand, with no execution).
    pub(super) async fn record_failure(
        &self,
        id: &JobId,
        queue: &str,
        execution_id: Option<&str>,
        by: By<'_>,
        failed: &Failed,
    ) -> Result<Recorded> {
        let id = id.as_str();
        // The script declares an execution key in any case; without a run it names none and is
        // not touched.
        let execution_id = execution_id.unwrap_or_default();
        let ended = now();
        let (worker, worker_key) = worker_of(&self.keys, by);
        let started = started_of(by);
        let recorded: i64 = FAIL
            .key(self.keys.job(id))
            .key(self.keys.started(queue))
            .key(self.keys.execution(id, execution_id))
            .key(self.keys.executions(id))
            .key(worker_key)
            .key(self.keys.failed(queue))
            .key(self.keys.results(id))
            .key(self.keys.job_dependents(id))
            .key(self.keys.job_dependencies(id))
            .key(self.keys.queue(queue))
            .arg(id)
            .arg(by.word())
            .arg(execution_id)
            .arg(worker)
            .arg(codec::format_time(ended))
            .arg(ended.timestamp())
            .arg(
                failed
                    .failure_ttl
                    .map(|ttl| ttl_seconds(ttl).to_string())
                    .unwrap_or_default(),
            )
            .arg(ttl_seconds(DEFAULT_FAILURE_TTL))
            .arg(codec::result::encode_exc_string(&failed.exc_info))
            .arg(started.map(codec::epoch_float).unwrap_or_default())
            .arg(codec::epoch_float(ended))
            .arg(started.map_or_else(String::new, |started| working_seconds(started, ended)))
            .arg(if failed.stopped { "stopped" } else { "failed" })
            .arg(RESULTS_KEPT)
            .arg(&release_pieces(&self.keys)[..])
            .invoke_async(&mut self.conn())
            .await?;
        Ok(Recorded::from_reply(recorded))
    }
}

/// The worker's name and hash key for a script; when no worker ended the run, no name ('') and
/// the worker key prefix, under which an abandoned run's scripts find the worker that ran it.
fn worker_of<'a>(keys: &Keys, by: By<'a>) -> (&'a str, String) {
    match by {
        By::Worker { name, .. } => (name, keys.worker(name)),
        By::Abandoned | By::Hand => ("", keys.worker("")),
    }
}

/// When the run started: only its worker knows (RQ writes no execution times for the others).
fn started_of(by: By<'_>) -> Option<DateTime<Utc>> {
    match by {
        By::Worker { started_at, .. } => Some(started_at),
        By::Abandoned | By::Hand => None,
    }
}

fn working_seconds(started: DateTime<Utc>, ended: DateTime<Utc>) -> String {
    let micros = (ended - started).num_microseconds().unwrap_or(0).max(0);
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// The jobs a round trip took (see work.lua's reply), each started at `now`.
fn taken_jobs(taken: Vec<Value>, queues: &[String], now: DateTime<Utc>) -> Result<Dequeued> {
    if let [Value::BulkString(marker)] = taken.as_slice()
        && marker == b"suspended"
    {
        return Ok(Dequeued::Suspended);
    }
    let mut started = Vec::with_capacity(taken.len() / 4);
    let mut items = taken.into_iter();
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
        let job = codec::job::decode(id.clone(), &hash)
            .unwrap_or_else(|error| JobRecord::unreadable(id.clone(), &queue, error.to_string()));
        started.push(Started {
            job,
            execution: Execution {
                run: RunId {
                    job_id: id,
                    execution_id,
                    queue,
                },
                started_at: now,
            },
        });
    }
    Ok(Dequeued::Jobs(started))
}

/// Watches one queue list for a worker (see [`RunStore::watch_queues`]), on a connection of
/// its own to the server in use, opened again after an error.
async fn watch_queue(
    current: Arc<RwLock<Current>>,
    queue_key: String,
    mut waiting: tokio::sync::watch::Receiver<bool>,
    ready: Arc<tokio::sync::Notify>,
) {
    let mut connection: Option<MultiplexedConnection> = None;
    loop {
        if waiting.wait_for(|waiting| *waiting).await.is_err() {
            return;
        }
        let blocking = match &mut connection {
            Some(blocking) => blocking,
            None => match blocking_connection(&current).await {
                Ok(blocking) => connection.insert(blocking),
                Err(error) => {
                    tracing::warn!(queue = %queue_key, %error, "cannot open a connection to wait on the queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let moved: redis::RedisResult<Option<String>> = redis::cmd("BLMOVE")
            .arg(&queue_key)
            .arg(&queue_key)
            .arg("LEFT")
            .arg("LEFT")
            .arg(BLOCK.as_secs_f64())
            .query_async(blocking)
            .await;
        match moved {
            Ok(Some(_)) => {
                ready.notify_one();
                // Let the worker take the job before blocking again: wait until it stops
                // waiting (a change, not the value: it may be waiting again already, and
                // would then never be woken).
                let _ = waiting.changed().await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(queue = %queue_key, %error, "waiting on the queue failed; reconnecting");
                connection = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

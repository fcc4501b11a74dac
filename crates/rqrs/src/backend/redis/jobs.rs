//! Jobs ([`JobStore`]): the enqueue of any number of jobs (one script call, and a `WAIT` for
//! replicas when asked), reads of job hashes, meta, the result stream, and cancel and delete
//! (each one script, which takes the job off its queue list and out of every registry of its
//! queue: `scripts/unlist.lua`).

use std::sync::LazyLock;

use redis::Script;
use serde_json::{Map, Value};

use super::codec::{self, RawHash};
use super::{RedisBackend, endpoint, executions_ttl, keys, now};
use crate::backend::JobStore;
use crate::backend::types::{JobRecord, NewJob, Placement, Replicas};
use crate::error::{Error, Result};
use crate::job::{JobId, JobStatus};
use crate::results::JobResult;
use keys::Keys;

static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/start.lua"),
        include_str!("scripts/limit.lua"),
        include_str!("scripts/enqueue.lua")
    ))
});
static SAVE_META: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/save_meta.lua")));
// unlist.lua goes in front of both scripts: a Redis script cannot call another.
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/unlist.lua"),
        include_str!("scripts/cancel.lua")
    ))
});
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/unlist.lua"),
        include_str!("scripts/delete.lua")
    ))
});

/// The key pieces `job_pieces` in unlist.lua reads, in its order.
fn job_pieces(keys: &Keys) -> [&str; 16] {
    [
        keys.queue_prefix(),
        keys.started_prefix(),
        keys.finished_prefix(),
        keys.failed_prefix(),
        keys.deferred_prefix(),
        keys.scheduled_prefix(),
        keys.canceled_prefix(),
        keys.job_prefix(),
        keys::DEPENDENTS_SUFFIX,
        keys.dependencies_prefix(),
        keys::DEPENDENCIES_SUFFIX,
        keys.execution_prefix(),
        keys.executions_prefix(),
        keys.results_prefix(),
        keys.group_prefix(),
        keys.groups(),
    ]
}

impl JobStore for RedisBackend {
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[NewJob],
        group: Option<&str>,
        replicas: Option<Replicas>,
    ) -> Result<Vec<JobStatus>> {
        // The jobs of one call share their creation time, which is also when they are queued.
        let at = jobs
            .first()
            .and_then(|job| job.record.created_at)
            .unwrap_or_else(now);
        // The jobs test mode starts are started by one worker; the script takes it once.
        let mut starter = None;
        for job in jobs {
            if let Placement::Started {
                worker, liveness, ..
            } = &job.placement
            {
                match starter {
                    None => starter = Some((worker.as_str(), *liveness)),
                    Some((first, _)) if first != worker => {
                        return Err(Error::invalid(
                            "enqueue",
                            "the jobs of one enqueue are started by one worker",
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let mut invocation = ENQUEUE.prepare_invoke();
        invocation
            .key(self.keys.queues())
            .key(self.keys.queue(queue))
            .key(self.keys.deferred(queue))
            .key(self.keys.scheduled(queue));
        if let Some(group) = group {
            invocation
                .key(self.keys.group(group))
                .key(self.keys.groups());
        }
        let at_iso = codec::format_time(at);
        invocation
            .arg(self.keys.queue(queue))
            .arg(&at_iso)
            .arg(at.timestamp())
            .arg(self.keys.job_prefix())
            .arg(keys::DEPENDENTS_SUFFIX)
            .arg(self.keys.dependencies_prefix())
            .arg(keys::DEPENDENCIES_SUFFIX)
            .arg(group.unwrap_or_default());
        match starter {
            None => {
                invocation.arg("").arg(self.keys.root());
            }
            Some((worker, liveness)) => {
                invocation
                    .key(self.keys.started(queue))
                    .key(self.keys.worker_executions(worker))
                    .arg(worker)
                    .arg(self.keys.root())
                    .arg(codec::epoch_float(at))
                    .arg(self.keys.execution_prefix())
                    .arg(self.keys.executions_prefix())
                    .arg(liveness.execution_ttl.as_secs())
                    .arg(executions_ttl(liveness));
            }
        }
        for NewJob {
            record,
            placement,
            unique,
        } in jobs
        {
            invocation.arg(record.id.as_str());
            match placement {
                Placement::Queue { at_front: true } => invocation.arg("L").arg(""),
                Placement::Queue { at_front: false } => invocation.arg("R").arg(""),
                Placement::Scheduled(at) => invocation.arg("S").arg(at.timestamp()),
                Placement::Started { execution_id, .. } => invocation.arg("X").arg(execution_id),
            };
            let lifecycle = &record.lifecycle;
            invocation
                .arg(if *unique { "1" } else { "" })
                .arg(
                    record
                        .ttl
                        .map(|ttl| crate::ttl::whole_seconds(ttl).to_string())
                        .unwrap_or_default(),
                )
                .arg(if lifecycle.allow_dependency_failures {
                    "1"
                } else {
                    ""
                })
                .arg(lifecycle.dependency_ids.len());
            for dependency in &lifecycle.dependency_ids {
                invocation.arg(dependency.as_str());
            }
            let other_time;
            let created_at = match record.created_at {
                Some(created) if created == at => at_iso.as_str(),
                created => {
                    other_time = created.map(codec::format_time).unwrap_or_default();
                    other_time.as_str()
                }
            };
            let fields = codec::job::fields(record, created_at)?;
            invocation.arg(fields.len());
            for (field, value) in &fields {
                invocation.arg(*field).arg(value.as_slice());
            }
        }
        let (reply, acknowledged): (Vec<String>, _) = match replicas {
            None => (invocation.invoke_async(&mut self.conn()).await?, None),
            Some(replicas) => {
                let (reply, acknowledged) = self.invoke_replicated(&invocation, replicas).await?;
                (reply, Some(acknowledged))
            }
        };
        if let [marker, id] = reply.as_slice()
            && marker == "duplicate"
        {
            return Err(Error::DuplicateJob(JobId::from_stored(id.clone())));
        }
        if let (Some(replicas), Some(acknowledged)) = (replicas, acknowledged)
            && acknowledged < replicas.count
        {
            return Err(Error::NotReplicated {
                jobs: jobs.iter().map(|job| job.record.id.clone()).collect(),
                acknowledged,
                replicas: replicas.count,
            });
        }
        reply.iter().map(|status| status.parse()).collect()
    }

    async fn fetch_job(&self, id: &JobId) -> Result<Option<JobRecord>> {
        let hash: RawHash = redis::cmd("HGETALL")
            .arg(self.keys.job(id.as_str()))
            .query_async(&mut self.conn())
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        codec::job::decode(id.clone(), &hash).map(Some)
    }

    async fn fetch_jobs(&self, ids: &[JobId]) -> Result<Vec<Option<JobRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.keys.job(id.as_str()));
        }
        let hashes: Vec<RawHash> = pipe.query_async(&mut self.conn()).await?;
        ids.iter()
            .zip(&hashes)
            .map(|(id, hash)| {
                if hash.is_empty() {
                    Ok(None)
                } else {
                    codec::job::decode(id.clone(), hash).map(Some)
                }
            })
            .collect()
    }

    async fn save_meta(&self, id: &JobId, meta: &Map<String, Value>) -> Result<()> {
        let written: i64 = SAVE_META
            .key(self.keys.job(id.as_str()))
            .arg(serde_json::to_vec(meta)?)
            .invoke_async(&mut self.conn())
            .await?;
        if written == 0 {
            return Err(Error::NoSuchJob(id.clone()));
        }
        Ok(())
    }

    async fn latest_result(&self, id: &JobId) -> Result<Option<JobResult>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.results(id.as_str()))
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
            .map(|entry| codec::result::decode(id, &entry))
            .transpose()
    }

    async fn results(&self, id: &JobId) -> Result<Vec<JobResult>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.results(id.as_str()))
            .arg("+")
            .arg("-")
            .query_async(&mut self.conn())
            .await?;
        reply
            .ids
            .iter()
            .map(|entry| codec::result::decode(id, entry))
            .collect()
    }

    async fn cancel(&self, id: &JobId, origin: &str) -> Result<()> {
        let mut invocation = CANCEL.key(self.keys.job(id.as_str()));
        invocation
            .arg(id.as_str())
            .arg(now().timestamp())
            .arg(origin)
            .arg(&job_pieces(&self.keys)[..])
            .arg(self.keys.root())
            .arg(codec::format_time(now()));
        let outcome: i64 = invocation.invoke_async(&mut self.conn()).await?;
        match outcome {
            1 => Ok(()),
            0 => Err(Error::AlreadyCanceled(id.clone())),
            _ => Err(Error::NoSuchJob(id.clone())),
        }
    }

    async fn delete(&self, id: &JobId, origin: &str, dependents: bool) -> Result<usize> {
        let mut invocation = DELETE.key(self.keys.job(id.as_str()));
        invocation
            .arg(id.as_str())
            .arg(if dependents { "1" } else { "" })
            .arg(origin)
            .arg(&job_pieces(&self.keys)[..])
            .arg(self.keys.root())
            .arg(codec::format_time(now()));
        Ok(invocation.invoke_async(&mut self.conn()).await?)
    }
}

impl RedisBackend {
    /// Runs a script, then `WAIT`s for `replicas.count` replicas for `replicas.timeout` at most,
    /// on the backend's connection for replicated writes: WAIT covers the writes of its own
    /// connection, and blocks it meanwhile, so it cannot go on the shared one. That connection
    /// does not reconnect by itself, so a drop between the script and the WAIT is an error,
    /// never a WAIT on a fresh connection that proves nothing; it is opened again next time.
    /// Returns the script's reply and how many replicas acknowledged it.
    async fn invoke_replicated(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        replicas: Replicas,
    ) -> Result<(Vec<String>, usize)> {
        let mut slot = self.replicated.lock().await;
        let connection = match &mut *slot {
            Some(connection) => connection,
            None => slot.insert(self.blocking_connection().await?),
        };
        // The shared connection's response timeout, plus the WAIT's own.
        let bound = endpoint::RESPONSE_TIMEOUT + replicas.timeout;
        let waited = tokio::time::timeout(bound, async {
            let reply: Vec<String> = invocation.invoke_async(connection).await?;
            let millis = u64::try_from(replicas.timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let acknowledged: usize = redis::cmd("WAIT")
                .arg(replicas.count)
                .arg(millis)
                .query_async(connection)
                .await?;
            Ok::<_, redis::RedisError>((reply, acknowledged))
        })
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no reply to an enqueue waiting for replicas within {bound:?}"),
            )
            .into())
        });
        if waited.is_err() {
            *slot = None;
        }
        Ok(waited?)
    }
}

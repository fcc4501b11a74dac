//! Registries ([`RegistryStore`]): the sorted sets `rq:wip:<q>` (started, members
//! `<id>:<execution id>`, scored by deadline), `rq:finished:<q>` and `rq:failed:<q>` (scored by
//! expiry), `rq:deferred:<q>`, `rq:scheduled:<q>` and `rq:canceled:<q>` (scored by a time);
//! counts, ids, removal, expired entries, abandoned runs, the maintenance lock
//! `rq:clean_registries:<q>`, requeue from failed, and failing a job by hand.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::runs::By;
use super::{EMPTY_EXC_INFO, RedisBackend, codec, now};
use crate::backend::RegistryStore;
use crate::backend::types::{Failed, RunId};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::registry::RegistryKind;
use crate::ttl::Ttl;

static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/requeue.lua")
    ))
});
static READY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/ready.lua")
    ))
});
static LIMITS_CLEANUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/limits_cleanup.lua")
    ))
});
static STRANDED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/stranded.lua")));

/// How long a job may sit on a queue's intermediate list, taken by a Python worker that has not
/// started it, before it goes back on the queue: RQ's own cleanup waits a minute too.
const STRANDED_GRACE: Duration = Duration::from_secs(60);
/// The life of RQ's `first_seen` keys, as RQ sets them.
const FIRST_SEEN_TTL: Duration = Duration::from_secs(24 * 3600);

impl RegistryStore for RedisBackend {
    async fn registry_count(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        Ok(redis::cmd("ZCARD")
            .arg(self.keys.registry(kind, queue))
            .query_async(&mut self.conn())
            .await?)
    }

    /// Started-registry members are `<id>:<execution id>`; the id part is returned.
    async fn registry_job_ids(&self, kind: RegistryKind, queue: &str) -> Result<Vec<JobId>> {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.registry(kind, queue))
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

    async fn registry_remove(
        &self,
        kind: RegistryKind,
        queue: &str,
        id: &JobId,
        delete_job: bool,
    ) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrem(self.keys.registry(kind, queue), id.as_str());
        if delete_job {
            pipe.del(&[
                self.keys.job(id.as_str()),
                self.keys.job_dependents(id.as_str()),
                self.keys.job_dependencies(id.as_str()),
                self.keys.results(id.as_str()),
            ])
            .ignore();
        }
        let (removed,): (i64,) = pipe.query_async(&mut self.conn()).await?;
        Ok(removed == 1)
    }

    async fn expire_entries(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        if !matches!(kind, RegistryKind::Finished | RegistryKind::Failed) {
            return Ok(0);
        }
        Ok(redis::cmd("ZREMRANGEBYSCORE")
            .arg(self.keys.registry(kind, queue))
            .arg(0)
            .arg(now().timestamp())
            .query_async(&mut self.conn())
            .await?)
    }

    /// A member that is not `<id>:<execution id>` names no run: it is dropped.
    /// `stranded.lua` (Python's intermediate list, with RQ's grace of a minute), then
    /// `ready.lua` (RQ 3.0's ready registry).
    async fn recover_stranded(&self, queue: &str) -> Result<usize> {
        let (removed, put_back): (usize, usize) = STRANDED
            .key(self.keys.intermediate(queue))
            .key(self.keys.queue(queue))
            .key(self.keys.started(queue))
            .arg(self.keys.job_prefix())
            .arg(self.keys.executions_prefix())
            .arg(codec::epoch_float(now()))
            .arg(STRANDED_GRACE.as_secs())
            .arg(FIRST_SEEN_TTL.as_secs())
            .arg(self.keys.intermediate_first_seen(queue, ""))
            .invoke_async(&mut self.conn())
            .await?;
        if removed > 0 {
            tracing::debug!(%queue, removed, "stale ids dropped from the intermediate list");
        }
        let ready: usize = READY
            .key(self.keys.ready(queue))
            .key(self.keys.queue(queue))
            .key(self.keys.queues())
            .arg(self.keys.root())
            .arg(codec::format_time(now()))
            .arg(self.keys.queue(queue))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(put_back + ready)
    }

    /// `limits_cleanup.lua`.
    async fn clean_rate_limits(&self) -> Result<usize> {
        let now = now();
        Ok(LIMITS_CLEANUP
            .key(self.keys.rate_limits())
            .arg(self.keys.root())
            .arg(codec::format_time(now))
            .arg(codec::epoch_float(now))
            .invoke_async(&mut self.conn())
            .await?)
    }

    async fn abandoned_runs(&self, queue: &str) -> Result<Vec<RunId>> {
        let key = self.keys.started(queue);
        let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(0)
            .arg(now().timestamp())
            .query_async(&mut self.conn())
            .await?;
        let mut runs = Vec::with_capacity(expired.len());
        for member in expired {
            match member.rsplit_once(':') {
                Some((id, execution_id)) => runs.push(RunId {
                    job_id: JobId::from_stored(id),
                    execution_id: execution_id.to_owned(),
                    queue: queue.to_owned(),
                }),
                None => {
                    let _: () = redis::cmd("ZREM")
                        .arg(&key)
                        .arg(&member)
                        .query_async(&mut self.conn())
                        .await?;
                }
            }
        }
        Ok(runs)
    }

    async fn lock_maintenance(&self, queue: &str, ttl: Duration) -> Result<bool> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.keys.clean_registries(queue))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async(&mut self.conn())
            .await?;
        Ok(taken.is_some())
    }

    async fn unlock_maintenance(&self, queue: &str, hold: Duration) -> Result<()> {
        let key = self.keys.clean_registries(queue);
        let mut command = if hold.is_zero() {
            redis::cmd("DEL")
        } else {
            redis::cmd("SET")
        };
        command.arg(&key);
        if !hold.is_zero() {
            // XX: a lock that expired meanwhile is not made again.
            command
                .arg(1)
                .arg("XX")
                .arg("PX")
                .arg(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX));
        }
        let _: () = command.query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn requeue(&self, queue: &str, id: &JobId, at_front: bool) -> Result<bool> {
        let status: i64 = REQUEUE
            .key(self.keys.failed(queue))
            .key(self.keys.job(id.as_str()))
            .key(self.keys.queues())
            .arg(id.as_str())
            .arg(codec::format_time(now()))
            .arg(EMPTY_EXC_INFO)
            .arg(self.keys.queue_prefix())
            .arg(queue)
            .arg(if at_front { "1" } else { "" })
            .arg(self.keys.root())
            .invoke_async(&mut self.conn())
            .await?;
        match status {
            1 => Ok(true),
            -1 => Err(Error::NoSuchJob(id.clone())),
            _ => Ok(false),
        }
    }

    async fn add_to_failed(
        &self,
        id: &JobId,
        queue: &str,
        failure_ttl: Option<Ttl>,
        exc_info: &str,
    ) -> Result<()> {
        let failed = Failed {
            exc_info: exc_info.to_owned(),
            failure_ttl,
            stopped: false,
        };
        self.record_failure(id, queue, None, By::Hand, &failed)
            .await?;
        Ok(())
    }
}

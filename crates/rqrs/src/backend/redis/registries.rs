//! Registries: counts, ids, removal, cleanup (abandoned runs, expired entries), requeue from
//! failed, failing a job by hand, and the maintenance that cleans a queue's registries (and the
//! groups).

use std::sync::LazyLock;

use redis::Script;

use super::{EMPTY_EXC_INFO, Execution, Recorded, RedisBackend, codec, keys, now};
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::registry::RegistryKind;

static REQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/requeue.lua")));

/// The settings that decide what an abandoned run becomes.
struct Abandoned {
    failure_ttl: Option<i64>,
    retries_left: u64,
    intervals: Vec<u64>,
    at_front: bool,
}

impl RedisBackend {
    fn registry_key(kind: RegistryKind, queue: &str) -> String {
        match kind {
            RegistryKind::Started => keys::started(queue),
            RegistryKind::Finished => keys::finished(queue),
            RegistryKind::Failed => keys::failed(queue),
            RegistryKind::Deferred => keys::deferred(queue),
            RegistryKind::Scheduled => keys::scheduled(queue),
            RegistryKind::Canceled => keys::canceled(queue),
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
        match kind {
            RegistryKind::Started => {}
            // Scored by a time, not an expiry: nothing there expires (as in RQ).
            RegistryKind::Deferred | RegistryKind::Scheduled | RegistryKind::Canceled => {
                return Ok(0);
            }
            RegistryKind::Finished | RegistryKind::Failed => {
                return Ok(redis::cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg(0)
                    .arg(now.timestamp())
                    .query_async(&mut self.conn())
                    .await?);
            }
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
            // A dead worker's run: retried if the job has retries left, else failed with RQ's
            // words (Python's maintenance does the same to its own abandoned runs).
            let abandoned = self.abandoned_policy(&execution.job_id).await?;
            let recorded = if abandoned.retries_left > 0 {
                let reason = format!(
                    "AbandonedJobError: its worker stopped heartbeating; retried at {}",
                    codec::format_time(now)
                );
                let delay =
                    crate::retry::next_interval(&abandoned.intervals, abandoned.retries_left);
                self.retry(&execution, "", &reason, delay, abandoned.at_front)
                    .await?
            } else {
                let reason = format!(
                    "Moved to FailedJobRegistry, due to AbandonedJobError, at {}",
                    codec::format_time(now)
                );
                self.fail(
                    &execution,
                    "",
                    abandoned.failure_ttl,
                    &reason,
                    JobStatus::Failed,
                )
                .await?
            };
            if recorded == Recorded::Now {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Cleans a queue's registries (abandoned runs to failed, expired entries dropped) under
    /// RQ's maintenance lock; `Ok(None)` when another process holds the lock.
    pub(crate) async fn maintain(&self, queue: &str) -> Result<Option<usize>> {
        let lock = keys::clean_registries(queue);
        // RQ holds the lock for up to 899 s; rqrs's cleanup takes well under a second, so a
        // minute is plenty, and a worker that dies holding it blocks the queue's maintenance for
        // a minute, not a quarter of an hour. It is dropped as soon as the work is done.
        let taken: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(60)
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

    /// What an abandoned run of the job becomes: its failure TTL and retry settings.
    async fn abandoned_policy(&self, id: &JobId) -> Result<Abandoned> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::job(id.as_str()))
            .arg(&[
                "failure_ttl",
                "retries_left",
                "retry_intervals",
                "enqueue_at_front_on_retry",
            ])
            .query_async(&mut self.conn())
            .await?;
        let field = |i: usize| fields.get(i).cloned().flatten();
        Ok(Abandoned {
            failure_ttl: field(0).and_then(|ttl| ttl.parse().ok()),
            retries_left: field(1).and_then(|n| n.parse().ok()).unwrap_or(0),
            intervals: field(2)
                .map(|text| codec::seconds_list(&text))
                .unwrap_or_default(),
            at_front: field(3).as_deref() == Some("1"),
        })
    }

    /// Moves a failed job back to `queue`, at its head or tail. `Ok(false)`: it was not in the
    /// registry.
    pub(crate) async fn requeue(&self, queue: &str, id: &JobId, at_front: bool) -> Result<bool> {
        let status: i64 = REQUEUE
            .key(keys::failed(queue))
            .key(keys::job(id.as_str()))
            .key(keys::QUEUES)
            .arg(id.as_str())
            .arg(codec::format_time(now()))
            .arg(EMPTY_EXC_INFO)
            .arg(keys::QUEUE_PREFIX)
            .arg(queue)
            .arg(if at_front { "1" } else { "" })
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
}

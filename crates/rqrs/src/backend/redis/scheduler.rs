//! Schedulers ([`ScheduleStore`]), in RQ's layout: the per-queue locks `rq:scheduler-lock:<q>`
//! (acquire or refresh, compare and delete), the scheduler hash `rq:scheduler:<name>`, and the
//! enqueue of due jobs from `rq:scheduled:<q>`, one script per batch.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{RedisBackend, codec, keys, now};
use crate::backend::ScheduleStore;
use crate::backend::types::{Lock, SchedulerRecord};
use crate::defaults::MAX_TTL;
use crate::error::Result;

static ACQUIRE_LOCKS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/acquire_locks.lua")));
static RELEASE_LOCKS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release_locks.lua")));
static ENQUEUE_SCHEDULED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/limit.lua"),
        include_str!("scripts/enqueue_scheduled.lua")
    ))
});

/// How many due ids one script call takes (RQ's chunk size), so that a large backlog never
/// blocks Redis for long; the caller calls again while batches come back full.
const BATCH: usize = 1000;

fn seconds(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

impl ScheduleStore for RedisBackend {
    /// Acquires or refreshes the locks of `queues` for the scheduler `name`; one outcome per
    /// queue, in order.
    async fn acquire_scheduler_locks(
        &self,
        name: &str,
        queues: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lock>> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = ACQUIRE_LOCKS.prepare_invoke();
        for queue in queues {
            invocation.key(self.keys.scheduler_lock(queue));
        }
        let outcomes: Vec<i64> = invocation
            .arg(name)
            .arg(seconds(ttl))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| match outcome {
                1 => Lock::Acquired,
                2 => Lock::Refreshed,
                _ => Lock::Taken,
            })
            .collect())
    }

    /// Releases the locks of `queues` that `name` holds; returns how many it held.
    async fn release_scheduler_locks(&self, name: &str, queues: &[String]) -> Result<usize> {
        if queues.is_empty() {
            return Ok(0);
        }
        let mut invocation = RELEASE_LOCKS.prepare_invoke();
        for queue in queues {
            invocation.key(self.keys.scheduler_lock(queue));
        }
        Ok(invocation.arg(name).invoke_async(&mut self.conn()).await?)
    }

    /// Writes the scheduler hash with a fresh `last_heartbeat`, expiring after `ttl`. The whole
    /// mapping is written each time, so a hash that expired during a stall comes back whole.
    async fn register_scheduler(&self, record: &SchedulerRecord<'_>, ttl: Duration) -> Result<()> {
        let key = self.keys.scheduler(record.name);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &key,
                &[
                    ("name", record.name),
                    ("hostname", record.hostname),
                    ("pid", &record.pid.to_string()),
                    ("queues", &record.queues.join(",")),
                    ("created_at", &codec::format_time(record.created_at)),
                    ("last_heartbeat", &codec::format_time(now())),
                ],
            )
            .ignore()
            .expire(&key, i64::try_from(seconds(ttl)).unwrap_or(i64::MAX))
            .ignore();
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// Deletes the scheduler hash.
    async fn unregister_scheduler(&self, name: &str) -> Result<()> {
        let _: () = redis::cmd("DEL")
            .arg(self.keys.scheduler(name))
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Enqueues every due job of `queue`'s scheduled registry, batch by batch, while the
    /// scheduler `name` holds the queue's lock. `Ok(None)`: it does not hold the lock.
    async fn enqueue_scheduled(&self, name: &str, queue: &str) -> Result<Option<usize>> {
        let mut total = 0;
        loop {
            let now = now();
            let (enqueued, taken): (i64, usize) = ENQUEUE_SCHEDULED
                .key(self.keys.scheduler_lock(queue))
                .key(self.keys.scheduled(queue))
                .key(self.keys.queue(queue))
                .key(self.keys.queues())
                .arg(name)
                .arg(now.timestamp())
                .arg(codec::format_time(now))
                .arg(self.keys.queue(queue))
                .arg(self.keys.job_prefix())
                .arg(keys::DEPENDENTS_SUFFIX)
                .arg(self.keys.dependencies_prefix())
                .arg(keys::DEPENDENCIES_SUFFIX)
                .arg(BATCH)
                .arg(MAX_TTL.as_secs())
                .arg(self.keys.root())
                .invoke_async(&mut self.conn())
                .await?;
            let Ok(enqueued) = usize::try_from(enqueued) else {
                return Ok(None);
            };
            total += enqueued;
            if taken < BATCH {
                return Ok(Some(total));
            }
        }
    }
}

//! Schedulers ([`ScheduleStore`]): the per-queue locks (the flags `scheduler-lock:<q>`, held
//! by a scheduler's name), the rows of `schedulers`, and the enqueue of due jobs from the
//! scheduled registry, one transaction per batch.

use std::time::Duration;

use rusqlite::params;

use super::SqliteBackend;
use super::codec::{self, micros, seconds};
use super::registries::take_flag;
use super::rows;
use crate::backend::ScheduleStore;
use crate::backend::types::{Lock, SchedulerRecord};
use crate::defaults::MAX_TTL;
use crate::error::Result;

/// How many due jobs one transaction enqueues, so that a large backlog never holds the write
/// lock for long; the next batch follows at once.
const BATCH: usize = 1000;

/// The name of a queue's scheduler lock in `flags`.
fn lock(queue: &str) -> String {
    format!("scheduler-lock:{queue}")
}

fn ttl_micros(ttl: Duration) -> i64 {
    seconds(ttl.as_secs().max(1))
}

impl ScheduleStore for SqliteBackend {
    async fn acquire_scheduler_locks(
        &self,
        name: &str,
        queues: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lock>> {
        let name = name.to_owned();
        let queues = queues.to_vec();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let until = now + ttl_micros(ttl);
                let mut locks = Vec::with_capacity(queues.len());
                for queue in &queues {
                    let lock = if take_flag(tx, &lock(queue), &name, until, now)? {
                        Lock::Acquired
                    } else if tx
                        .prepare_cached(
                            "UPDATE flags SET expires_at = ?3 WHERE name = ?1 AND holder = ?2",
                        )?
                        .execute(params![lock(queue), name, until])?
                        == 1
                    {
                        Lock::Refreshed
                    } else {
                        Lock::Taken
                    };
                    locks.push(lock);
                }
                Ok(locks)
            })
            .await
    }

    async fn release_scheduler_locks(&self, name: &str, queues: &[String]) -> Result<usize> {
        let name = name.to_owned();
        let queues = queues.to_vec();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let mut released = 0;
                for queue in &queues {
                    released += tx
                        .prepare_cached(
                            "DELETE FROM flags WHERE name = ?1 AND holder = ?2 AND expires_at > ?3",
                        )?
                        .execute(params![lock(queue), name, now])?;
                }
                Ok(released)
            })
            .await
    }

    async fn register_scheduler(&self, record: &SchedulerRecord<'_>, ttl: Duration) -> Result<()> {
        let name = record.name.to_owned();
        let hostname = record.hostname.to_owned();
        let pid = record.pid;
        let queues = record.queues.join(",");
        let created_at = micros(record.created_at);
        self.db()
            .write(move |tx| {
                let now = codec::now();
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO schedulers (name, hostname, pid, queues, created_at, \
                     last_heartbeat, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    name,
                    hostname,
                    pid,
                    queues,
                    created_at,
                    now,
                    now + ttl_micros(ttl)
                ])?;
                Ok(())
            })
            .await
    }

    async fn unregister_scheduler(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.db()
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM schedulers WHERE name = ?1")?
                    .execute(params![name])?;
                Ok(())
            })
            .await
    }

    /// Each due job goes at the head of its queue if it asks to (`enqueue_at_front`, or
    /// `retry_at_front` once it has run), else at the tail, with its ttl started again; a job
    /// gone by its TTL meanwhile is dropped.
    async fn enqueue_scheduled(&self, name: &str, queue: &str) -> Result<Option<usize>> {
        let mut total = 0;
        loop {
            let name = name.to_owned();
            let queue = queue.to_owned();
            let batch = self
                .db()
                .write(move |tx| {
                    let now = codec::now();
                    let held = tx
                        .prepare_cached(
                            "SELECT 1 FROM flags WHERE name = ?1 AND holder = ?2 AND expires_at > ?3",
                        )?
                        .exists(params![lock(&queue), name, now])?;
                    if !held {
                        return Ok(None);
                    }
                    #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
                    let due: Vec<String> = tx
                        .prepare_cached(
                            "SELECT id FROM jobs WHERE place = 'scheduled' AND origin = ?1 \
                             AND score <= ?2 ORDER BY score LIMIT ?3",
                        )?
                        .query_map(
                            params![queue, now as f64, i64::try_from(BATCH).unwrap_or(1000)],
                            |row| row.get(0),
                        )?
                        .collect::<rusqlite::Result<_>>()?;
                    let mut enqueued = 0;
                    for id in &due {
                        let job = match rows::job(tx, id, now) {
                            Ok(Some(job)) => job,
                            Ok(None) => {
                                rows::delete(tx, id)?;
                                continue;
                            }
                            // Its status cannot be read: it goes on, and its worker fails it.
                            Err(_) => crate::backend::types::JobRecord::unreadable(
                                rows::id(id.clone()),
                                &queue,
                                String::new(),
                            ),
                        };
                        let lifecycle = &job.lifecycle;
                        let at_front = lifecycle.enqueue_at_front
                            || (lifecycle.retry_at_front && job.ended_at.is_some());
                        rows::enqueue(tx, id, &queue, at_front, now)?;
                        let ttl = job.ttl.filter(|ttl| *ttl <= MAX_TTL);
                        if let Some(ttl) = ttl {
                            tx.prepare_cached("UPDATE jobs SET expires_at = ?2 WHERE id = ?1")?
                                .execute(params![id, now + seconds(ttl.as_secs())])?;
                        }
                        enqueued += 1;
                    }
                    Ok(Some((enqueued, due.len())))
                })
                .await?;
            let Some((enqueued, taken)) = batch else {
                return Ok(None);
            };
            total += enqueued;
            if taken < BATCH {
                return Ok(Some(total));
            }
        }
    }
}

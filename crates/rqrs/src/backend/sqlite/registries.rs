//! Registries ([`RegistryStore`]): the rows of `jobs` whose place is the registry's, with their
//! scores (the started registry's are its runs' deadlines); removal, expired entries, abandoned
//! runs, the maintenance lock (the flag `clean_registries:<q>`), requeue from failed, and
//! failing a job by hand.

use std::time::Duration;

use rusqlite::params;

use super::SqliteBackend;
use super::codec::{self, seconds};
use super::rows;
use super::runs::{By, record_failure};
use crate::backend::RegistryStore;
use crate::backend::types::{Failed, RunId};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::registry::RegistryKind;
use crate::ttl::Ttl;

/// The name of a queue's maintenance lock in `flags`.
fn maintenance_lock(queue: &str) -> String {
    format!("clean_registries:{queue}")
}

/// Takes the flag `name` for `holder` until `expires_at` if no one holds it now; whether it
/// was free.
pub(super) fn take_flag(
    conn: &rusqlite::Connection,
    name: &str,
    holder: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool> {
    let taken = conn
        .prepare_cached(
            "INSERT INTO flags (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at WHERE flags.expires_at <= ?4",
        )?
        .execute(params![name, holder, expires_at, now])?;
    Ok(taken == 1)
}

impl RegistryStore for SqliteBackend {
    async fn registry_count(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        let queue = queue.to_owned();
        self.db()
            .read(move |conn| {
                let count: i64 = conn
                    .prepare_cached("SELECT count(*) FROM jobs WHERE place = ?1 AND origin = ?2")?
                    .query_row(params![rows::place(kind), queue], |row| row.get(0))?;
                Ok(usize::try_from(count).unwrap_or(0))
            })
            .await
    }

    async fn registry_job_ids(&self, kind: RegistryKind, queue: &str) -> Result<Vec<JobId>> {
        let queue = queue.to_owned();
        self.db()
            .read(move |conn| {
                let ids = conn
                    .prepare_cached(
                        "SELECT id FROM jobs WHERE place = ?1 AND origin = ?2 ORDER BY score",
                    )?
                    .query_map(params![rows::place(kind), queue], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(ids.into_iter().map(rows::id).collect())
            })
            .await
    }

    /// From the started registry, the job's run goes too (its outcome is then refused).
    async fn registry_remove(
        &self,
        kind: RegistryKind,
        queue: &str,
        id: &JobId,
        delete_job: bool,
    ) -> Result<bool> {
        let queue = queue.to_owned();
        let id = id.as_str().to_owned();
        self.db()
            .write(move |tx| {
                let removed = tx
                    .prepare_cached(
                        "UPDATE jobs SET place = NULL, score = NULL, execution_id = NULL \
                         WHERE id = ?1 AND place = ?2 AND origin = ?3",
                    )?
                    .execute(params![id, rows::place(kind), queue])?
                    == 1;
                if removed && delete_job {
                    rows::delete(tx, &id)?;
                }
                Ok(removed)
            })
            .await
    }

    /// The jobs go with their entries, as their TTL takes them on Redis; so do the other jobs of
    /// the queue whose TTL has passed (jobs that waited too long, say).
    async fn expire_entries(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        if !matches!(kind, RegistryKind::Finished | RegistryKind::Failed) {
            return Ok(0);
        }
        let queue = queue.to_owned();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
                let entries: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id FROM jobs WHERE place = ?1 AND origin = ?2 \
                         AND score > 0 AND score <= ?3",
                    )?
                    .query_map(params![rows::place(kind), queue, now as f64], |row| {
                        row.get(0)
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let expired: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id FROM jobs WHERE origin = ?1 AND expires_at <= ?2 \
                         AND (place IS NULL OR place != 'started')",
                    )?
                    .query_map(params![queue, now], |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for id in entries.iter().chain(&expired) {
                    rows::delete(tx, id)?;
                }
                Ok(entries.len())
            })
            .await
    }

    /// A slot here is a job row in the place `queued` or `started`, kept right by triggers in
    /// the transaction of every step (`schema.rs`): no process can leak one.
    async fn clean_rate_limits(&self) -> Result<usize> {
        Ok(0)
    }

    /// Only rqrs's workers take jobs off a SQLite queue, in the step that starts them.
    async fn recover_stranded(&self, _queue: &str) -> Result<usize> {
        Ok(0)
    }

    async fn abandoned_runs(&self, queue: &str) -> Result<Vec<RunId>> {
        let queue = queue.to_owned();
        self.db()
            .read(move |conn| {
                #[expect(clippy::cast_precision_loss, reason = "a score in microseconds")]
                let now = codec::now() as f64;
                let runs = conn
                    .prepare_cached(
                        "SELECT id, execution_id FROM jobs WHERE place = 'started' \
                         AND origin = ?1 AND score <= ?2 AND execution_id IS NOT NULL \
                         ORDER BY score",
                    )?
                    .query_map(params![queue, now], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(runs
                    .into_iter()
                    .map(|(job_id, execution_id)| RunId {
                        job_id: rows::id(job_id),
                        execution_id,
                        queue: queue.clone(),
                    })
                    .collect())
            })
            .await
    }

    async fn lock_maintenance(&self, queue: &str, ttl: Duration) -> Result<bool> {
        let name = maintenance_lock(queue);
        self.db()
            .write(move |tx| {
                let now = codec::now();
                take_flag(tx, &name, "", now + seconds(ttl.as_secs().max(1)), now)
            })
            .await
    }

    async fn unlock_maintenance(&self, queue: &str, hold: Duration) -> Result<()> {
        let name = maintenance_lock(queue);
        let hold = i64::try_from(hold.as_micros()).unwrap_or(i64::MAX);
        self.db()
            .write(move |tx| {
                tx.prepare_cached("UPDATE flags SET expires_at = ?2 WHERE name = ?1")?
                    .execute(params![name, codec::now().saturating_add(hold)])?;
                Ok(())
            })
            .await
    }

    /// Its expiry goes too: back on its queue, it waits until a worker takes it.
    async fn requeue(&self, queue: &str, id: &JobId, at_front: bool) -> Result<bool> {
        let queue = queue.to_owned();
        let id = id.clone();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let listed = tx
                    .prepare_cached(
                        "SELECT 1 FROM jobs WHERE id = ?1 AND place = 'failed' AND origin = ?2",
                    )?
                    .exists(params![id.as_str(), queue])?;
                if !listed {
                    return Ok(false);
                }
                if !rows::exists(tx, id.as_str(), now)? {
                    rows::delete(tx, id.as_str())?;
                    return Err(Error::NoSuchJob(id));
                }
                tx.prepare_cached(
                    "UPDATE jobs SET started_at = NULL, ended_at = NULL, expires_at = NULL \
                     WHERE id = ?1",
                )?
                .execute(params![id.as_str()])?;
                rows::enqueue(tx, id.as_str(), &queue, at_front, now)?;
                Ok(true)
            })
            .await
    }

    async fn add_to_failed(
        &self,
        id: &JobId,
        _queue: &str,
        failure_ttl: Option<Ttl>,
        exc_info: &str,
    ) -> Result<()> {
        let id = id.as_str().to_owned();
        let failed = Failed {
            exc_info: exc_info.to_owned(),
            failure_ttl,
            stopped: false,
        };
        self.db()
            .write(move |tx| record_failure(tx, &id, None, By::Hand, &failed))
            .await?;
        Ok(())
    }
}

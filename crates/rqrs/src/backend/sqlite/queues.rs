//! Queues ([`QueueStore`]): the rows of `jobs` whose place is `queued`, in the order of their
//! score (the head first).

use rusqlite::{OptionalExtension, params};

use super::SqliteBackend;
use super::rows;
use crate::backend::QueueStore;
use crate::error::Result;
use crate::job::JobId;

impl QueueStore for SqliteBackend {
    async fn queue_names(&self) -> Result<Vec<String>> {
        self.db()
            .read(|conn| {
                let names = conn
                    .prepare_cached("SELECT name FROM queues ORDER BY name")?
                    .query_map([], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(names)
            })
            .await
    }

    async fn queue_count(&self, queue: &str) -> Result<usize> {
        let queue = queue.to_owned();
        self.db()
            .read(move |conn| {
                let count: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM jobs WHERE place = 'queued' AND origin = ?1",
                    )?
                    .query_row(params![queue], |row| row.get(0))?;
                Ok(usize::try_from(count).unwrap_or(0))
            })
            .await
    }

    async fn queue_job_ids(
        &self,
        queue: &str,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<JobId>> {
        let queue = queue.to_owned();
        self.db()
            .read(move |conn| {
                let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
                let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                let ids = conn
                    .prepare_cached(
                        "SELECT id FROM jobs WHERE place = 'queued' AND origin = ?1 \
                         ORDER BY score LIMIT ?2 OFFSET ?3",
                    )?
                    .query_map(params![queue, limit, offset], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(ids.into_iter().map(rows::id).collect())
            })
            .await
    }

    async fn queue_position(&self, queue: &str, id: &JobId) -> Result<Option<usize>> {
        let queue = queue.to_owned();
        let id = id.as_str().to_owned();
        self.db()
            .read(move |conn| {
                let score: Option<f64> = conn
                    .prepare_cached(
                        "SELECT score FROM jobs WHERE id = ?1 AND place = 'queued' AND origin = ?2",
                    )?
                    .query_row(params![id, queue], |row| row.get(0))
                    .optional()?;
                let Some(score) = score else {
                    return Ok(None);
                };
                let ahead: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM jobs WHERE place = 'queued' AND origin = ?1 \
                         AND score < ?2",
                    )?
                    .query_row(params![queue, score], |row| row.get(0))?;
                Ok(usize::try_from(ahead).ok())
            })
            .await
    }

    async fn empty_queue(&self, queue: &str) -> Result<usize> {
        let queue = queue.to_owned();
        self.db()
            .write(move |tx| {
                let ids = tx
                    .prepare_cached("SELECT id FROM jobs WHERE place = 'queued' AND origin = ?1")?
                    .query_map(params![queue], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                for id in &ids {
                    rows::delete(tx, id)?;
                }
                Ok(ids.len())
            })
            .await
    }
}

//! The test hooks ([`TestHooks`]) on SQLite: what a fault does to the rows.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::SqliteBackend;
use super::codec::micros;
use crate::backend::TestHooks;
use crate::backend::types::RunId;
use crate::error::Result;
use crate::job::JobId;

impl TestHooks for SqliteBackend {
    async fn set_run_deadline(&self, run: &RunId, deadline: DateTime<Utc>) -> Result<()> {
        let run = run.clone();
        self.db()
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE jobs SET score = ?3 WHERE id = ?1 AND execution_id = ?2 AND place = 'started'",
                )?
                .execute(params![
                    run.job_id.as_str(),
                    run.execution_id,
                    micros(deadline) as f64
                ])?;
                Ok(())
            })
            .await
    }

    /// The row is gone for every reader, as a Redis job hash goes by its TTL; its place in a
    /// queue or a registry stays, as the stale entry does on Redis.
    async fn expire_job(&self, id: &JobId) -> Result<()> {
        let id = id.as_str().to_owned();
        self.db()
            .write(move |tx| {
                tx.prepare_cached("UPDATE jobs SET expires_at = 0 WHERE id = ?1")?
                    .execute(params![id])?;
                Ok(())
            })
            .await
    }

    async fn expire_worker(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.db()
            .write(move |tx| {
                tx.prepare_cached("UPDATE workers SET expires_at = 0 WHERE name = ?1")?
                    .execute(params![name])?;
                Ok(())
            })
            .await
    }
}

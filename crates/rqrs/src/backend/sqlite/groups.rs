//! Groups ([`GroupStore`], RQ 2.x's `rq.group.Group`): the rows of `group_members`. A group
//! exists while it has a row; jobs join one in the enqueue (`jobs.rs`), and leave when they are
//! deleted or pruned here once gone by their TTL.

use rusqlite::{Connection, params};

use super::SqliteBackend;
use super::codec;
use super::rows;
use crate::backend::GroupStore;
use crate::error::Result;
use crate::job::JobId;

/// Drops the members of `group` (every group, for `None`) whose job is gone; returns how many
/// went.
fn prune(conn: &Connection, group: Option<&str>, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM group_members WHERE (?1 IS NULL OR group_name = ?1) AND NOT EXISTS \
             (SELECT 1 FROM jobs WHERE id = job_id AND (expires_at IS NULL OR expires_at > ?2))",
        )?
        .execute(params![group, now])?)
}

impl GroupStore for SqliteBackend {
    async fn group_names(&self) -> Result<Vec<String>> {
        self.db()
            .read(|conn| {
                let names = conn
                    .prepare_cached("SELECT DISTINCT group_name FROM group_members ORDER BY 1")?
                    .query_map([], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(names)
            })
            .await
    }

    async fn group_exists(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.db()
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT 1 FROM group_members WHERE group_name = ?1")?
                    .exists(params![name])?)
            })
            .await
    }

    async fn group_cleanup(&self, name: &str) -> Result<(usize, Vec<JobId>)> {
        let name = name.to_owned();
        self.db()
            .write(move |tx| {
                let pruned = prune(tx, Some(&name), codec::now())?;
                let ids = tx
                    .prepare_cached(
                        "SELECT job_id FROM group_members WHERE group_name = ?1 ORDER BY job_id",
                    )?
                    .query_map(params![name], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok((pruned, ids.into_iter().map(rows::id).collect()))
            })
            .await
    }

    async fn group_remove(&self, name: &str, id: &JobId) -> Result<bool> {
        let name = name.to_owned();
        let id = id.as_str().to_owned();
        self.db()
            .write(move |tx| {
                Ok(tx
                    .prepare_cached(
                        "DELETE FROM group_members WHERE group_name = ?1 AND job_id = ?2",
                    )?
                    .execute(params![name, id])?
                    == 1)
            })
            .await
    }

    async fn clean_groups(&self) -> Result<usize> {
        self.db().write(|tx| prune(tx, None, codec::now())).await
    }
}

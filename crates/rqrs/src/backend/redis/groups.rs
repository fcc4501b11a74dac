//! Groups ([`GroupStore`], RQ 2.x's `rq.group.Group`): the set of a group's job ids
//! `rq:group:<name>` and the set of group names `rq:groups`. Jobs join a group in the enqueue
//! script (`jobs.rs`); this file reads groups and prunes them.

use std::sync::LazyLock;

use redis::Script;

use super::RedisBackend;
use crate::backend::GroupStore;
use crate::error::Result;
use crate::job::JobId;

static GROUP_CLEANUP: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/group_cleanup.lua")));

impl GroupStore for RedisBackend {
    /// The names in `rq:groups` whose set exists; names without one are dropped from
    /// `rq:groups`, as RQ's `Group.all()` drops them.
    async fn group_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.groups())
            .query_async(&mut self.conn())
            .await?;
        if names.is_empty() {
            return Ok(names);
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.exists(self.keys.group(name));
        }
        let exists: Vec<bool> = pipe.query_async(&mut self.conn()).await?;
        let gone: Vec<&String> = names
            .iter()
            .zip(&exists)
            .filter(|(_, exists)| !**exists)
            .map(|(name, _)| name)
            .collect();
        if !gone.is_empty() {
            let _: () = redis::cmd("SREM")
                .arg(self.keys.groups())
                .arg(&gone)
                .query_async(&mut self.conn())
                .await?;
        }
        let mut exists = exists.into_iter();
        names.retain(|_| exists.next().unwrap_or(false));
        names.sort();
        Ok(names)
    }

    /// Whether the group's set exists (it does while it holds an id).
    async fn group_exists(&self, name: &str) -> Result<bool> {
        Ok(redis::cmd("EXISTS")
            .arg(self.keys.group(name))
            .query_async(&mut self.conn())
            .await?)
    }

    /// Prunes the group (see `group_cleanup.lua`); returns the number of ids pruned and the
    /// ids left, sorted.
    async fn group_cleanup(&self, name: &str) -> Result<(usize, Vec<JobId>)> {
        let (pruned, mut ids): (usize, Vec<String>) = GROUP_CLEANUP
            .key(self.keys.group(name))
            .key(self.keys.groups())
            .arg(name)
            .arg(self.keys.job_prefix())
            .invoke_async(&mut self.conn())
            .await?;
        ids.sort();
        Ok((pruned, ids.into_iter().map(JobId::from_stored).collect()))
    }

    /// Removes an id from the group; returns whether it was there.
    async fn group_remove(&self, name: &str, id: &JobId) -> Result<bool> {
        let removed: i64 = redis::cmd("SREM")
            .arg(self.keys.group(name))
            .arg(id.as_str())
            .query_async(&mut self.conn())
            .await?;
        Ok(removed == 1)
    }

    /// Prunes every group, as a worker's maintenance does after its queues (RQ's
    /// `Group.clean_registries`); returns how many ids went.
    async fn clean_groups(&self) -> Result<usize> {
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.groups())
            .query_async(&mut self.conn())
            .await?;
        let mut pruned = 0;
        for name in names {
            pruned += self.group_cleanup(&name).await?.0;
        }
        Ok(pruned)
    }
}

//! Queues ([`QueueStore`]): the set of queues `rq:queues`, a queue's list of ids
//! `rq:queue:<q>`, a job's position on it, emptying a queue.

use std::sync::LazyLock;

use redis::Script;

use super::{RedisBackend, keys};
use crate::backend::QueueStore;
use crate::error::Result;
use crate::job::JobId;

static EMPTY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/empty.lua")));

impl QueueStore for RedisBackend {
    async fn queue_names(&self) -> Result<Vec<String>> {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.queues())
            .query_async(&mut self.conn())
            .await?;
        let mut names: Vec<String> = members
            .iter()
            .filter_map(|key| self.keys.queue_name(key))
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn queue_count(&self, queue: &str) -> Result<usize> {
        Ok(redis::cmd("LLEN")
            .arg(self.keys.queue(queue))
            .query_async(&mut self.conn())
            .await?)
    }

    async fn queue_job_ids(
        &self,
        queue: &str,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<JobId>> {
        let end = limit.map_or(-1, |limit| {
            i64::try_from(offset + limit).unwrap_or(i64::MAX) - 1
        });
        let ids: Vec<String> = redis::cmd("LRANGE")
            .arg(self.keys.queue(queue))
            .arg(offset)
            .arg(end)
            .query_async(&mut self.conn())
            .await?;
        Ok(ids.into_iter().map(JobId::from_stored).collect())
    }

    async fn queue_position(&self, queue: &str, id: &JobId) -> Result<Option<usize>> {
        Ok(redis::cmd("LPOS")
            .arg(self.keys.queue(queue))
            .arg(id.as_str())
            .query_async(&mut self.conn())
            .await?)
    }

    async fn empty_queue(&self, queue: &str) -> Result<usize> {
        Ok(EMPTY
            .key(self.keys.queue(queue))
            .arg(self.keys.job_prefix())
            .arg(keys::DEPENDENTS_SUFFIX)
            .arg(self.keys.results_prefix())
            .invoke_async(&mut self.conn())
            .await?)
    }
}

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
            .arg(keys::QUEUES)
            .query_async(&mut self.conn())
            .await?;
        let mut names: Vec<String> = members
            .iter()
            .filter_map(|key| keys::queue_name(key))
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn queue_count(&self, queue: &str) -> Result<usize> {
        Ok(redis::cmd("LLEN")
            .arg(keys::queue(queue))
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
            .arg(keys::queue(queue))
            .arg(offset)
            .arg(end)
            .query_async(&mut self.conn())
            .await?;
        Ok(ids.into_iter().map(JobId::from_stored).collect())
    }

    async fn queue_position(&self, queue: &str, id: &JobId) -> Result<Option<usize>> {
        Ok(redis::cmd("LPOS")
            .arg(keys::queue(queue))
            .arg(id.as_str())
            .query_async(&mut self.conn())
            .await?)
    }

    async fn empty_queue(&self, queue: &str) -> Result<usize> {
        Ok(EMPTY
            .key(keys::queue(queue))
            .arg(keys::JOB_PREFIX)
            .arg(keys::DEPENDENTS_SUFFIX)
            .arg(keys::RESULTS_PREFIX)
            .invoke_async(&mut self.conn())
            .await?)
    }
}

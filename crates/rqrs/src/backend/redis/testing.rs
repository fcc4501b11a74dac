//! The test hooks ([`TestHooks`]) on Redis: what a fault does to RQ's keys.

use chrono::{DateTime, Utc};

use super::RedisBackend;
use crate::backend::TestHooks;
use crate::backend::types::RunId;
use crate::error::Result;
use crate::job::JobId;

impl TestHooks for RedisBackend {
    async fn set_run_deadline(&self, run: &RunId, deadline: DateTime<Utc>) -> Result<()> {
        let member = format!("{}:{}", run.job_id, run.execution_id);
        let _: i64 = redis::cmd("ZADD")
            .arg(self.keys.started(&run.queue))
            .arg("XX")
            .arg(deadline.timestamp())
            .arg(member)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn expire_job(&self, id: &JobId) -> Result<()> {
        let _: i64 = redis::cmd("DEL")
            .arg(self.keys.job(id.as_str()))
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn expire_worker(&self, name: &str) -> Result<()> {
        let _: i64 = redis::cmd("DEL")
            .arg(self.keys.worker(name))
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }
}

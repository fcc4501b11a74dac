//! Operations on a job from outside its runs: cancel and delete, each one script. Both take the
//! job off its queue list and out of every registry of its queue (`scripts/unlist.lua`).

use std::sync::LazyLock;

use redis::Script;

use super::{RedisBackend, keys, now};
use crate::error::{Error, Result};
use crate::job::JobId;

// unlist.lua goes in front of both scripts: a Redis script cannot call another.
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/unlist.lua"),
        include_str!("scripts/cancel.lua")
    ))
});
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/unlist.lua"),
        include_str!("scripts/delete.lua")
    ))
});

/// The key pieces `job_pieces` in unlist.lua reads, in its order.
const JOB_PIECES: [&str; 16] = [
    keys::QUEUE_PREFIX,
    keys::STARTED_PREFIX,
    keys::FINISHED_PREFIX,
    keys::FAILED_PREFIX,
    keys::DEFERRED_PREFIX,
    keys::SCHEDULED_PREFIX,
    keys::CANCELED_PREFIX,
    keys::JOB_PREFIX,
    keys::DEPENDENTS_SUFFIX,
    keys::DEPENDENCIES_PREFIX,
    keys::DEPENDENCIES_SUFFIX,
    keys::EXECUTION_PREFIX,
    keys::EXECUTIONS_PREFIX,
    keys::RESULTS_PREFIX,
    keys::GROUP_PREFIX,
    keys::GROUPS,
];

impl RedisBackend {
    /// Cancels a job (see `cancel.lua`). `origin` is the queue to use if the hash has none.
    ///
    /// # Errors
    /// [`Error::NoSuchJob`]; [`Error::AlreadyCanceled`].
    pub(crate) async fn cancel(&self, id: &JobId, origin: &str) -> Result<()> {
        let mut invocation = CANCEL.key(keys::job(id.as_str()));
        invocation
            .arg(id.as_str())
            .arg(now().timestamp())
            .arg(origin)
            .arg(&JOB_PIECES[..]);
        let outcome: i64 = invocation.invoke_async(&mut self.conn()).await?;
        match outcome {
            1 => Ok(()),
            0 => Err(Error::AlreadyCanceled(id.clone())),
            _ => Err(Error::NoSuchJob(id.clone())),
        }
    }

    /// Deletes a job and its traces, and its dependents too if asked (see `delete.lua`);
    /// returns how many job hashes went. `origin` is the queue to clean if the hash is gone.
    pub(crate) async fn delete(
        &self,
        id: &JobId,
        origin: &str,
        delete_dependents: bool,
    ) -> Result<usize> {
        let mut invocation = DELETE.key(keys::job(id.as_str()));
        invocation
            .arg(id.as_str())
            .arg(if delete_dependents { "1" } else { "" })
            .arg(origin)
            .arg(&JOB_PIECES[..]);
        Ok(invocation.invoke_async(&mut self.conn()).await?)
    }
}

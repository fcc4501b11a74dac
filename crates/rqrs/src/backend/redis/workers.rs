//! Workers ([`WorkerStore`]): registration as RQ does it (`rq:worker:<name>`, `rq:workers`,
//! `rq:workers:<q>`), state, death, the list of live workers, suspension (`rq:suspended`) and
//! the control channel `rq:pubsub:<name>`.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Script;

use super::{RedisBackend, codec, keys, now};
use crate::backend::WorkerStore;
use crate::backend::types::{Commands, Liveness};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::worker::{WorkerInfo, WorkerState};

static WORKER_STATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/worker_state.lua")));

impl WorkerStore for RedisBackend {
    /// Writes the worker hash and its memberships, as RQ's `register_birth` does.
    async fn register_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()> {
        let key = self.keys.worker(&info.name);
        let existing: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&key)
            .arg("birth")
            .arg("death")
            .query_async(&mut self.conn())
            .await?;
        if matches!(existing.as_slice(), [Some(_), None]) {
            return Err(Error::WorkerExists(info.name.clone()));
        }
        self.reregister_worker(info, liveness).await
    }

    /// Writes the worker hash and memberships again (after the hash expired), as they are in
    /// `info`.
    async fn reregister_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()> {
        let key = self.keys.worker(&info.name);
        let ip_address = self.client_address().await.unwrap_or_default();
        let fields = codec::worker::fields(info, &codec::format_time(now()), &ip_address);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        pipe.hset_multiple(&key, &fields).ignore();
        pipe.sadd(self.keys.workers(), &key).ignore();
        for queue in &info.queues {
            pipe.sadd(self.keys.workers_by_queue(queue), &key).ignore();
        }
        pipe.expire(
            &key,
            i64::try_from(liveness.worker_ttl.as_secs()).unwrap_or(i64::MAX),
        )
        .ignore();
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn set_worker_state(&self, worker: &str, state: WorkerState) -> Result<()> {
        let _: i64 = WORKER_STATE
            .key(self.keys.worker(worker))
            .arg(state.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Removes the worker from the worker sets and marks its hash dead (kept 60 s), as RQ's
    /// `register_death` does.
    async fn register_death(&self, worker: &str, queues: &[String]) -> Result<()> {
        let key = self.keys.worker(worker);
        let mut pipe = redis::pipe();
        pipe.atomic().srem(self.keys.workers(), &key).ignore();
        for queue in queues {
            pipe.srem(self.keys.workers_by_queue(queue), &key).ignore();
        }
        pipe.hset(&key, "death", codec::format_time(now())).ignore();
        pipe.hdel(&key, "current_job").ignore();
        pipe.del(self.keys.worker_executions(worker)).ignore();
        pipe.expire(&key, 60).ignore();
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The live workers (of one queue, or all), Python's and rqrs's alike. Keys whose hash has
    /// expired are dropped from the sets, as RQ's readers do.
    async fn workers(&self, queue: Option<&str>) -> Result<Vec<WorkerInfo>> {
        let set = queue.map_or_else(
            || self.keys.workers().to_owned(),
            |queue| self.keys.workers_by_queue(queue),
        );
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&set)
            .query_async(&mut self.conn())
            .await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        // Each hash, and its set of executions: RQ 3.0 names a busy worker's jobs there only,
        // not in `current_job`.
        let mut pipe = redis::pipe();
        for member in &members {
            pipe.hgetall(member);
            pipe.smembers(format!("{member}{}", keys::WORKER_EXECUTIONS_SUFFIX));
        }
        let replies: Vec<(HashMap<String, String>, Vec<String>)> =
            pipe.query_async(&mut self.conn()).await?;
        let mut workers = Vec::new();
        let mut expired = Vec::new();
        for (key, (hash, executions)) in members.iter().zip(replies) {
            if hash.is_empty() {
                expired.push(key);
                continue;
            }
            let mut worker =
                codec::worker::decode(self.keys.worker_name(key).unwrap_or(key), &hash);
            if worker.current_job.is_none() {
                worker.current_job = executions
                    .iter()
                    .filter_map(|member| member.rsplit_once(':'))
                    .map(|(id, _)| id.to_owned())
                    .min();
            }
            workers.push(worker);
        }
        if !expired.is_empty() {
            let _: () = redis::cmd("SREM")
                .arg(&set)
                .arg(&expired)
                .query_async(&mut self.conn())
                .await?;
        }
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(workers)
    }

    /// Sets RQ's suspension flag, expiring after `duration` if given.
    async fn suspend(&self, duration: Option<Duration>) -> Result<()> {
        let mut command = redis::cmd("SET");
        command.arg(self.keys.suspended()).arg(1);
        if let Some(duration) = duration {
            command.arg("EX").arg(duration.as_secs().max(1));
        }
        let _: () = command.query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn resume(&self) -> Result<()> {
        let _: () = redis::cmd("DEL")
            .arg(self.keys.suspended())
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn is_suspended(&self) -> Result<bool> {
        Ok(redis::cmd("EXISTS")
            .arg(self.keys.suspended())
            .query_async(&mut self.conn())
            .await?)
    }

    /// On a connection of its own; the stream ends when that connection drops.
    async fn commands(&self, worker: &str) -> Result<Commands> {
        let mut pubsub = self.client().get_async_pubsub().await?;
        pubsub.subscribe(self.keys.worker_channel(worker)).await?;
        Ok(Box::pin(pubsub.into_on_message().map(|message| {
            let text: String = message
                .get_payload()
                .map_err(|error| format!("an unreadable message: {error}"))?;
            Command::decode(&text)
        })))
    }

    async fn publish(&self, worker: &str, command: &Command) -> Result<usize> {
        Ok(redis::cmd("PUBLISH")
            .arg(self.keys.worker_channel(worker))
            .arg(command.encode())
            .query_async(&mut self.conn())
            .await?)
    }
}

impl RedisBackend {
    /// This connection's address as the server sees it (RQ's `ip_address`).
    async fn client_address(&self) -> Result<String> {
        let info: String = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(&mut self.conn())
            .await?;
        Ok(info
            .split_whitespace()
            .find_map(|part| part.strip_prefix("addr="))
            .unwrap_or_default()
            .to_owned())
    }
}

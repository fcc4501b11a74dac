//! Jobs: enqueue (one MULTI for any number of jobs), fetch, meta, results.

use std::sync::LazyLock;

use redis::Script;

use chrono::DateTime;
use serde_json::Map;

use super::codec::RawHash;
use super::{DEFAULT_TIMEOUT, NewJob, RedisBackend, codec, keys, now};
use crate::Connection;
use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::results::{JobResult, ResultType};

static SAVE_META: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/save_meta.lua")));

impl RedisBackend {
    /// Enqueues jobs on `queue` in one MULTI (one round trip however many jobs).
    pub(crate) async fn enqueue(
        &self,
        conn: &Connection,
        queue: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Job>> {
        let queue_key = keys::queue(queue);
        let created = now();
        let created_iso = codec::format_time(created);
        let mut pipe = redis::pipe();
        pipe.atomic().sadd(keys::QUEUES, &queue_key).ignore();
        let mut out = Vec::with_capacity(jobs.len());
        for NewJob { id, call, options } in jobs {
            let job_key = keys::job(id.as_str());
            let description = options
                .description
                .clone()
                .unwrap_or_else(|| codec::call_string(&call));
            let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
            let mut fields: Vec<(&str, Vec<u8>)> = vec![
                ("created_at", created_iso.clone().into_bytes()),
                ("data", codec::encode_data(&call)),
                ("success_callback_name", Vec::new()),
                ("failure_callback_name", Vec::new()),
                ("stopped_callback_name", Vec::new()),
                ("started_at", Vec::new()),
                ("ended_at", Vec::new()),
                ("last_heartbeat", Vec::new()),
                ("worker_name", Vec::new()),
                ("group_id", Vec::new()),
                ("origin", queue.as_bytes().to_vec()),
                ("description", description.clone().into_bytes()),
                ("enqueued_at", created_iso.clone().into_bytes()),
                ("timeout", timeout.to_string().into_bytes()),
                ("status", JobStatus::Queued.as_str().as_bytes().to_vec()),
            ];
            for (field, value) in [
                ("result_ttl", options.result_ttl),
                ("failure_ttl", options.failure_ttl),
                ("ttl", options.ttl.filter(|ttl| *ttl > 0)),
            ] {
                if let Some(value) = value {
                    fields.push((field, value.to_string().into_bytes()));
                }
            }
            if !options.meta.is_empty() {
                fields.push(("meta", serde_json::to_vec(&options.meta)?));
            }
            pipe.hset_multiple(&job_key, &fields).ignore();
            if let Some(ttl) = options.ttl.filter(|ttl| *ttl > 0) {
                pipe.expire(&job_key, ttl).ignore();
                pipe.expire(keys::job_dependents(id.as_str()), ttl).ignore();
                pipe.expire(keys::job_dependencies(id.as_str()), ttl)
                    .ignore();
            }
            if options.at_front {
                pipe.lpush(&queue_key, id.as_str()).ignore();
            } else {
                pipe.rpush(&queue_key, id.as_str()).ignore();
            }
            out.push(Job {
                conn: conn.clone(),
                id,
                call: Ok(call),
                status: JobStatus::Queued,
                origin: queue.to_owned(),
                description: Some(description),
                created_at: Some(created),
                enqueued_at: Some(created),
                started_at: None,
                ended_at: None,
                last_heartbeat: None,
                worker_name: None,
                timeout: Some(timeout),
                result_ttl: options.result_ttl,
                failure_ttl: options.failure_ttl,
                ttl: options.ttl,
                meta: options.meta,
                legacy_exc_info: None,
            });
        }
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(out)
    }

    pub(crate) async fn fetch_job(&self, conn: &Connection, id: &JobId) -> Result<Option<Job>> {
        let hash: RawHash = redis::cmd("HGETALL")
            .arg(keys::job(id.as_str()))
            .query_async(&mut self.conn())
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        decode_job(conn, id.clone(), &hash).map(Some)
    }

    pub(crate) async fn save_meta(
        &self,
        id: &JobId,
        meta: &Map<String, serde_json::Value>,
    ) -> Result<()> {
        let written: i64 = SAVE_META
            .key(keys::job(id.as_str()))
            .arg(serde_json::to_vec(meta)?)
            .invoke_async(&mut self.conn())
            .await?;
        if written == 0 {
            return Err(Error::NoSuchJob(id.clone()));
        }
        Ok(())
    }

    pub(crate) async fn latest_result(&self, id: &JobId) -> Result<Option<JobResult>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(keys::results(id.as_str()))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await?;
        reply
            .ids
            .into_iter()
            .next()
            .map(|entry| decode_result(id, &entry))
            .transpose()
    }
}

/// A job from its hash.
pub(super) fn decode_job(conn: &Connection, id: JobId, hash: &RawHash) -> Result<Job> {
    let status = codec::status(hash).map_err(|reason| Error::MalformedJob {
        id: id.clone(),
        reason,
    })?;
    let call = match hash.get("data") {
        Some(data) => codec::decode_data(data),
        None => Err("the job hash has no data field".to_owned()),
    };
    Ok(Job {
        conn: conn.clone(),
        call,
        status,
        origin: codec::text(hash, "origin").unwrap_or_default(),
        description: codec::text(hash, "description"),
        created_at: codec::time(hash, "created_at"),
        enqueued_at: codec::time(hash, "enqueued_at"),
        started_at: codec::time(hash, "started_at"),
        ended_at: codec::time(hash, "ended_at"),
        last_heartbeat: codec::time(hash, "last_heartbeat"),
        worker_name: codec::text(hash, "worker_name"),
        timeout: codec::integer(hash, "timeout"),
        result_ttl: codec::integer(hash, "result_ttl"),
        failure_ttl: codec::integer(hash, "failure_ttl"),
        ttl: codec::integer(hash, "ttl"),
        meta: hash
            .get("meta")
            .filter(|raw| !raw.is_empty())
            .map(|raw| codec::decode_meta(raw))
            .unwrap_or_default(),
        legacy_exc_info: hash
            .get("exc_info")
            .map(|raw| String::from_utf8_lossy(&codec::decompress(raw)).into_owned()),
        id,
    })
}

/// A result-stream entry.
fn decode_result(id: &JobId, entry: &redis::streams::StreamId) -> Result<JobResult> {
    let field = |name: &str| -> Option<Vec<u8>> {
        entry
            .map
            .get(name)
            .and_then(|value| redis::from_redis_value_ref::<Vec<u8>>(value).ok())
    };
    let malformed = |reason: String| Error::MalformedJob {
        id: id.clone(),
        reason,
    };
    let code = field("type")
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.parse::<u8>().ok());
    let result_type = code
        .and_then(ResultType::from_code)
        .ok_or_else(|| malformed(format!("result {} has no valid type", entry.id)))?;
    let millis = entry
        .id
        .split('-')
        .next()
        .and_then(|ms| ms.parse::<i64>().ok());
    Ok(JobResult {
        result_type,
        created_at: millis.and_then(DateTime::from_timestamp_millis),
        return_value: field("return_value")
            .map(|raw| codec::decode_return_value(&raw))
            .transpose()
            .map_err(malformed)?,
        exc_string: field("exc_string").map(|raw| codec::decode_exc_string(&raw)),
        worker_name: field("worker_name")
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .filter(|name| !name.is_empty()),
        execution_id: field("execution_id").map(|raw| String::from_utf8_lossy(&raw).into_owned()),
    })
}

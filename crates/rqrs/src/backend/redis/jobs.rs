//! Jobs: enqueue (one script call for any number of jobs), fetch one or many, meta, results.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use chrono::DateTime;
use serde_json::Map;

use super::codec::RawHash;
use super::{DEFAULT_TIMEOUT, NewJob, RedisBackend, codec, keys, now};
use crate::Connection;
use crate::error::{Error, Result};
use crate::job::{Call, Callback, EnqueueOptions, Job, JobId, JobStatus, Lifecycle};
use crate::results::{JobResult, ResultType};

static ENQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/enqueue.lua")));
static SAVE_META: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/save_meta.lua")));

impl RedisBackend {
    /// Enqueues jobs on `queue` in one script call: each is queued, scheduled or deferred, and
    /// joins `group` if one is given.
    ///
    /// # Errors
    /// [`Error::DuplicateJob`] when a unique job's id is taken (nothing is enqueued);
    /// [`Error::NotReplicated`] when `replicas` (how many, how long at most) were asked for
    /// and fewer acknowledged the enqueue in time.
    pub(crate) async fn enqueue(
        &self,
        conn: &Connection,
        queue: &str,
        jobs: Vec<NewJob>,
        group: Option<&str>,
        replicas: Option<(usize, Duration)>,
    ) -> Result<Vec<Job>> {
        self.enqueue_to(conn, queue, &keys::queue(queue), jobs, group, replicas)
            .await
    }

    /// [`enqueue`](Self::enqueue), pushing ready jobs on `list` instead of the queue's list
    /// (test mode runs them from a list of their own).
    pub(crate) async fn enqueue_to(
        &self,
        conn: &Connection,
        queue: &str,
        list: &str,
        jobs: Vec<NewJob>,
        group: Option<&str>,
        replicas: Option<(usize, Duration)>,
    ) -> Result<Vec<Job>> {
        let created = now();
        let created_iso = codec::format_time(created);
        let mut invocation = ENQUEUE.prepare_invoke();
        invocation
            .key(keys::QUEUES)
            .key(list)
            .key(keys::deferred(queue))
            .key(keys::scheduled(queue));
        if let Some(group) = group {
            invocation.key(keys::group(group)).key(keys::GROUPS);
        }
        invocation
            .arg(keys::queue(queue))
            .arg(&created_iso)
            .arg(created.timestamp())
            .arg(keys::JOB_PREFIX)
            .arg(keys::DEPENDENTS_SUFFIX)
            .arg(keys::DEPENDENCIES_PREFIX)
            .arg(keys::DEPENDENCIES_SUFFIX)
            .arg(group.unwrap_or_default());
        let mut out = Vec::with_capacity(jobs.len());
        for NewJob { id, call, options } in jobs {
            let description = options
                .description
                .clone()
                .unwrap_or_else(|| codec::call_string(&call));
            let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
            let fields = job_fields(
                queue,
                &created_iso,
                &call,
                &description,
                timeout,
                &options,
                group,
            )?;
            let placement = match (options.scheduled_at, options.at_front) {
                (Some(_), _) => "S",
                (None, true) => "L",
                (None, false) => "R",
            };
            let dependencies = options
                .depends_on
                .as_ref()
                .map(|d| d.jobs.as_slice())
                .unwrap_or_default();
            invocation
                .arg(id.as_str())
                .arg(placement)
                .arg(
                    options
                        .scheduled_at
                        .map(|at| at.timestamp().to_string())
                        .unwrap_or_default(),
                )
                .arg(if options.unique { "1" } else { "" })
                .arg(
                    options
                        .ttl
                        .filter(|ttl| *ttl > 0)
                        .map(|ttl| ttl.to_string())
                        .unwrap_or_default(),
                )
                .arg(
                    if options.depends_on.as_ref().is_some_and(|d| d.allow_failure) {
                        "1"
                    } else {
                        ""
                    },
                )
                .arg(dependencies.len());
            for dependency in dependencies {
                invocation.arg(dependency.as_str());
            }
            invocation.arg(fields.len());
            for (field, value) in &fields {
                invocation.arg(*field).arg(value.as_slice());
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
                lifecycle: Lifecycle::of(&options),
                meta: options.meta,
                legacy_exc_info: None,
                group_id: group.map(str::to_owned),
            });
        }
        let (reply, acknowledged): (Vec<String>, _) = match replicas {
            None => (invocation.invoke_async(&mut self.conn()).await?, None),
            Some((count, timeout)) => {
                let (reply, acknowledged) =
                    self.invoke_replicated(&invocation, count, timeout).await?;
                (reply, Some(acknowledged))
            }
        };
        if let [marker, id] = reply.as_slice()
            && marker == "duplicate"
        {
            return Err(Error::DuplicateJob(JobId::from_stored(id.clone())));
        }
        if let (Some((replicas, _)), Some(acknowledged)) = (replicas, acknowledged)
            && acknowledged < replicas
        {
            return Err(Error::NotReplicated {
                jobs: out.iter().map(|job| job.id.clone()).collect(),
                acknowledged,
                replicas,
            });
        }
        for (job, status) in out.iter_mut().zip(&reply) {
            job.status = status.parse()?;
            if job.status != JobStatus::Queued {
                job.enqueued_at = None;
            }
        }
        Ok(out)
    }

    /// Runs a script, then `WAIT`s for `replicas` replicas for `timeout` at most, on the
    /// backend's connection for replicated writes: WAIT covers the writes of its own
    /// connection, and blocks it meanwhile, so it cannot go on the shared one. That connection
    /// does not reconnect by itself, so a drop between the script and the WAIT is an error,
    /// never a WAIT on a fresh connection that proves nothing; it is opened again next time.
    /// Returns the script's reply and how many replicas acknowledged it.
    async fn invoke_replicated(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        replicas: usize,
        timeout: Duration,
    ) -> Result<(Vec<String>, usize)> {
        let mut slot = self.replicated.lock().await;
        let connection = match &mut *slot {
            Some(connection) => connection,
            None => slot.insert(self.blocking_connection().await?),
        };
        // The shared connection's response timeout, plus the WAIT's own.
        let bound = super::endpoint::RESPONSE_TIMEOUT + timeout;
        let waited = tokio::time::timeout(bound, async {
            let reply: Vec<String> = invocation.invoke_async(connection).await?;
            let millis = u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let acknowledged: usize = redis::cmd("WAIT")
                .arg(replicas)
                .arg(millis)
                .query_async(connection)
                .await?;
            Ok::<_, redis::RedisError>((reply, acknowledged))
        })
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no reply to an enqueue waiting for replicas within {bound:?}"),
            )
            .into())
        });
        if waited.is_err() {
            *slot = None;
        }
        Ok(waited?)
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

    /// Reads several jobs in one round trip (a pipeline of HGETALLs); `None` for each id whose
    /// job does not exist.
    pub(crate) async fn fetch_jobs(
        &self,
        conn: &Connection,
        ids: &[JobId],
    ) -> Result<Vec<Option<Job>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(keys::job(id.as_str()));
        }
        let hashes: Vec<RawHash> = pipe.query_async(&mut self.conn()).await?;
        ids.iter()
            .zip(&hashes)
            .map(|(id, hash)| {
                if hash.is_empty() {
                    Ok(None)
                } else {
                    decode_job(conn, id.clone(), hash).map(Some)
                }
            })
            .collect()
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

    /// Every result kept for the job, newest first (RQ's `Job.results()`).
    pub(crate) async fn results(&self, id: &JobId) -> Result<Vec<JobResult>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(keys::results(id.as_str()))
            .arg("+")
            .arg("-")
            .query_async(&mut self.conn())
            .await?;
        reply
            .ids
            .iter()
            .map(|entry| decode_result(id, entry))
            .collect()
    }
}

/// The hash fields of a new job, as RQ's `Job.to_dict()` writes them (status and
/// `enqueued_at` are the script's to set).
fn job_fields(
    queue: &str,
    created_iso: &str,
    call: &Call,
    description: &str,
    timeout: i64,
    options: &EnqueueOptions,
    group: Option<&str>,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let text = |value: &str| value.as_bytes().to_vec();
    let callback_name = |callback: &Option<Callback>| {
        callback
            .as_ref()
            .map(|c| text(c.name()))
            .unwrap_or_default()
    };
    let mut fields = vec![
        ("created_at", text(created_iso)),
        ("data", codec::encode_data(call)),
        ("success_callback_name", callback_name(&options.on_success)),
        ("failure_callback_name", callback_name(&options.on_failure)),
        ("stopped_callback_name", callback_name(&options.on_stopped)),
        ("started_at", Vec::new()),
        ("ended_at", Vec::new()),
        ("last_heartbeat", Vec::new()),
        ("worker_name", Vec::new()),
        ("group_id", text(group.unwrap_or_default())),
        ("origin", text(queue)),
        ("description", text(description)),
        ("timeout", timeout.to_string().into_bytes()),
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
    for (field, callback) in [
        ("success_callback_timeout", &options.on_success),
        ("failure_callback_timeout", &options.on_failure),
        ("stopped_callback_timeout", &options.on_stopped),
    ] {
        if let Some(callback) = callback {
            fields.push((field, callback.timeout_secs().to_string().into_bytes()));
        }
    }
    if let Some(retry) = &options.retry {
        fields.push(("retries_left", retry.max().to_string().into_bytes()));
        fields.push((
            "retry_intervals",
            serde_json::to_vec(retry.intervals_secs())?,
        ));
        if retry.is_at_front() {
            fields.push(("enqueue_at_front_on_retry", text("1")));
        }
    }
    if let Some(repeat) = &options.repeat {
        fields.push(("repeats_left", repeat.times().to_string().into_bytes()));
        fields.push((
            "repeat_intervals",
            serde_json::to_vec(repeat.intervals_secs())?,
        ));
    }
    if let Some(dependency) = &options.depends_on
        && let Some(first) = dependency.jobs.first()
    {
        let ids: Vec<&str> = dependency.jobs.iter().map(JobId::as_str).collect();
        fields.push(("dependency_id", text(first.as_str())));
        fields.push(("dependency_ids", serde_json::to_vec(&ids)?));
        fields.push((
            "allow_dependency_failures",
            text(if dependency.allow_failure { "1" } else { "0" }),
        ));
        if dependency.enqueue_at_front {
            fields.push(("enqueue_at_front", text("1")));
        }
    }
    if !options.webhooks.is_empty() {
        fields.push(("webhooks", serde_json::to_vec(&options.webhooks)?));
    }
    if options.scheduled_at.is_some() && options.at_front {
        fields.push(("enqueue_at_front", text("1")));
    }
    Ok(fields)
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
        lifecycle: decode_lifecycle(hash),
        group_id: codec::text(hash, "group_id"),
        id,
    })
}

/// The retry, repeat, callback and dependency fields; absent or unreadable ones are unset.
fn decode_lifecycle(hash: &RawHash) -> Lifecycle {
    let seconds = |field: &str| {
        codec::text(hash, field)
            .map(|text| codec::seconds_list(&text))
            .unwrap_or_default()
    };
    let callback = |name: &str, timeout: &str| {
        codec::text(hash, name).map(|name| {
            let callback = Callback::new(name);
            match codec::integer(hash, timeout) {
                Some(seconds) => callback.timeout(seconds),
                None => callback,
            }
        })
    };
    let count =
        |field: &str| codec::integer(hash, field).map_or(0, |n| u64::try_from(n).unwrap_or(0));
    let flag = |field: &str| codec::text(hash, field).as_deref() == Some("1");
    Lifecycle {
        retries_left: count("retries_left"),
        retry_intervals: seconds("retry_intervals"),
        retry_at_front: flag("enqueue_at_front_on_retry"),
        repeats_left: count("repeats_left"),
        repeat_intervals: seconds("repeat_intervals"),
        on_success: callback("success_callback_name", "success_callback_timeout"),
        on_failure: callback("failure_callback_name", "failure_callback_timeout"),
        on_stopped: callback("stopped_callback_name", "stopped_callback_timeout"),
        dependency_ids: codec::text(hash, "dependency_ids")
            .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
            .unwrap_or_default()
            .into_iter()
            .map(JobId::from_stored)
            .collect(),
        allow_dependency_failures: flag("allow_dependency_failures"),
        // Python's `Webhook.to_dict()` list; one that cannot be read is skipped.
        webhooks: codec::text(hash, "webhooks")
            .and_then(|text| serde_json::from_str::<Vec<serde_json::Value>>(&text).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|value| serde_json::from_value(value).ok())
            .collect(),
    }
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

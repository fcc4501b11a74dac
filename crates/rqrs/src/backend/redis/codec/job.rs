//! The job hash `rq:job:<id>` to and from a [`JobRecord`]: every field as Python RQ's
//! `Job.to_dict()` writes it and `Job.restore()` reads it. `data` is zlib of the JSON array
//! `[func_name, null, args, kwargs]`; `meta` is plain JSON.

use serde_json::{Map, Value};

use super::{RawHash, compress, decompress, integer, parse_json, seconds_list, text, time};
use crate::RateLimit;
use crate::backend::types::JobRecord;
use crate::error::{Error, Result};
use crate::job::{Call, Callback, JobId, JobStatus, Lifecycle};
use crate::ttl::{Timeout, Ttl};

/// Encodes a call as `data`.
pub(crate) fn encode_data(call: &Call) -> Vec<u8> {
    let tuple = (&call.func_name, Value::Null, &call.args, &call.kwargs);
    compress(&serde_json::to_vec(&tuple).expect("JSON values always serialize"))
}

/// Decodes `data` into a call, or says why it cannot.
pub(crate) fn decode_data(raw: &[u8]) -> Result<Call, String> {
    let bytes = decompress(raw);
    // Pickle protocol 2+ opens with 0x80; RQ's default serializer is pickle (protocol 5).
    if bytes.first() == Some(&0x80) {
        return Err(
            "the job's data is pickled (Python RQ's default serializer); rqrs reads \
                    JSON only: enqueue with serializer=JSONSerializer"
                .to_owned(),
        );
    }
    let value = parse_json(&bytes)
        .map_err(|reason| format!("the job's data is not valid JSON: {reason}"))?;
    let Value::Array(mut parts) = value else {
        return Err(
            "the job's data is not a JSON array [func_name, instance, args, kwargs]".to_owned(),
        );
    };
    if parts.len() != 4 {
        return Err(format!(
            "the job's data has {} elements, not 4 ([func_name, instance, args, kwargs])",
            parts.len()
        ));
    }
    let kwargs = match parts.pop() {
        Some(Value::Object(map)) => map,
        Some(Value::Null) => Map::new(),
        _ => return Err("the job's kwargs are not a JSON object".to_owned()),
    };
    let args = match parts.pop() {
        Some(Value::Array(args)) => args,
        Some(Value::Null) => Vec::new(),
        _ => return Err("the job's args are not a JSON array".to_owned()),
    };
    if !matches!(parts.pop(), Some(Value::Null)) {
        return Err(
            "the job calls a method of an object instance, which rqrs cannot run".to_owned(),
        );
    }
    let func_name = match parts.pop() {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => return Err("the job's function name is not a string".to_owned()),
    };
    Ok(Call {
        func_name,
        args,
        kwargs,
    })
}

/// Reads `meta` as RQ does: a JSON object, or `{"unserialized": <text>}` when it is not one.
pub(crate) fn decode_meta(raw: &[u8]) -> Map<String, Value> {
    match parse_json(raw) {
        Ok(Value::Object(map)) => map,
        _ => {
            let mut map = Map::new();
            map.insert(
                "unserialized".to_owned(),
                Value::String(String::from_utf8_lossy(raw).into_owned()),
            );
            map
        }
    }
}

/// The `status` field; RQ assumes `created` when it is missing.
pub(crate) fn status(hash: &RawHash) -> Result<JobStatus, String> {
    match text(hash, "status") {
        None => Ok(JobStatus::Created),
        Some(text) => text.parse().map_err(|_| format!("unknown status {text:?}")),
    }
}

/// The hash fields of a new job, as RQ's `Job.to_dict()` writes them (`status` and
/// `enqueued_at` are the enqueue script's to set); `created_at` is its creation time as RQ
/// writes it (the jobs of a batch share it, so it is formatted once).
///
/// # Errors
/// [`Error::Invalid`] for a job whose call is not known (only jobs read back have none).
pub(crate) fn fields(job: &JobRecord, created_at: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let text = |value: &str| value.as_bytes().to_vec();
    let number = |value: i64| value.to_string().into_bytes();
    let callback_name = |callback: &Option<Callback>| {
        callback
            .as_ref()
            .map(|c| text(c.name()))
            .unwrap_or_default()
    };
    let call = job
        .call
        .as_ref()
        .map_err(|reason| Error::invalid("job", reason.clone()))?;
    let lifecycle = &job.lifecycle;
    let mut fields = vec![
        ("created_at", text(created_at)),
        ("data", encode_data(call)),
        (
            "success_callback_name",
            callback_name(&lifecycle.on_success),
        ),
        (
            "failure_callback_name",
            callback_name(&lifecycle.on_failure),
        ),
        (
            "stopped_callback_name",
            callback_name(&lifecycle.on_stopped),
        ),
        ("started_at", Vec::new()),
        ("ended_at", Vec::new()),
        ("last_heartbeat", Vec::new()),
        ("worker_name", Vec::new()),
        (
            "group_id",
            text(job.group_id.as_deref().unwrap_or_default()),
        ),
        ("origin", text(&job.origin)),
        (
            "description",
            text(job.description.as_deref().unwrap_or_default()),
        ),
    ];
    if let Some(timeout) = job.timeout {
        fields.push(("timeout", number(timeout.to_seconds())));
    }
    for (field, ttl) in [
        ("result_ttl", job.result_ttl),
        ("failure_ttl", job.failure_ttl),
    ] {
        if let Some(ttl) = ttl {
            fields.push((field, number(ttl.to_seconds())));
        }
    }
    if let Some(ttl) = job
        .ttl
        .map(crate::ttl::whole_seconds)
        .filter(|ttl| *ttl > 0)
    {
        fields.push(("ttl", ttl.to_string().into_bytes()));
    }
    if !job.meta.is_empty() {
        fields.push(("meta", serde_json::to_vec(&job.meta)?));
    }
    for (field, callback) in [
        ("success_callback_timeout", &lifecycle.on_success),
        ("failure_callback_timeout", &lifecycle.on_failure),
        ("stopped_callback_timeout", &lifecycle.on_stopped),
    ] {
        if let Some(callback) = callback {
            fields.push((field, number(callback.time_limit().to_seconds())));
        }
    }
    // A retry or repeat policy always has at least one interval (RQ's list is never empty).
    if !lifecycle.retry_intervals.is_empty() {
        fields.push((
            "retries_left",
            lifecycle.retries_left.to_string().into_bytes(),
        ));
        fields.push((
            "retry_intervals",
            serde_json::to_vec(&lifecycle.retry_intervals)?,
        ));
        if lifecycle.retry_at_front {
            fields.push(("enqueue_at_front_on_retry", text("1")));
        }
    }
    if !lifecycle.repeat_intervals.is_empty() {
        fields.push((
            "repeats_left",
            lifecycle.repeats_left.to_string().into_bytes(),
        ));
        fields.push((
            "repeat_intervals",
            serde_json::to_vec(&lifecycle.repeat_intervals)?,
        ));
    }
    if let Some(first) = lifecycle.dependency_ids.first() {
        let ids: Vec<&str> = lifecycle.dependency_ids.iter().map(JobId::as_str).collect();
        fields.push(("dependency_id", text(first.as_str())));
        fields.push(("dependency_ids", serde_json::to_vec(&ids)?));
        fields.push((
            "allow_dependency_failures",
            text(if lifecycle.allow_dependency_failures {
                "1"
            } else {
                "0"
            }),
        ));
    }
    if lifecycle.enqueue_at_front {
        fields.push(("enqueue_at_front", text("1")));
    }
    if !lifecycle.webhooks.is_empty() {
        fields.push(("webhooks", serde_json::to_vec(&lifecycle.webhooks)?));
    }
    if let Some(limit) = &lifecycle.rate_limit {
        fields.push(("rate_limit_key", text(limit.key())));
        fields.push((
            "rate_limit_concurrency",
            text(&limit.concurrency().to_string()),
        ));
    }
    Ok(fields)
}

/// A job from its hash.
///
/// # Errors
/// [`Error::MalformedJob`] when the hash's status is not one RQ writes.
pub(crate) fn decode(id: JobId, hash: &RawHash) -> Result<JobRecord> {
    let status = status(hash).map_err(|reason| Error::MalformedJob {
        id: id.clone(),
        reason,
    })?;
    let call = match hash.get("data") {
        Some(data) => decode_data(data),
        None => Err("the job hash has no data field".to_owned()),
    };
    Ok(JobRecord {
        call,
        status,
        origin: text(hash, "origin").unwrap_or_default(),
        description: text(hash, "description"),
        created_at: time(hash, "created_at"),
        enqueued_at: time(hash, "enqueued_at"),
        started_at: time(hash, "started_at"),
        ended_at: time(hash, "ended_at"),
        last_heartbeat: time(hash, "last_heartbeat"),
        worker_name: text(hash, "worker_name"),
        timeout: integer(hash, "timeout").map(Timeout::from_seconds),
        result_ttl: integer(hash, "result_ttl").map(Ttl::from_seconds),
        failure_ttl: integer(hash, "failure_ttl").map(Ttl::from_seconds),
        ttl: integer(hash, "ttl")
            .and_then(|seconds| u64::try_from(seconds).ok())
            .filter(|seconds| *seconds > 0)
            .map(std::time::Duration::from_secs),
        meta: hash
            .get("meta")
            .filter(|raw| !raw.is_empty())
            .map(|raw| decode_meta(raw))
            .unwrap_or_default(),
        legacy_exc_info: hash
            .get("exc_info")
            .map(|raw| String::from_utf8_lossy(&decompress(raw)).into_owned()),
        lifecycle: decode_lifecycle(hash),
        group_id: text(hash, "group_id"),
        id,
    })
}

/// The retry, repeat, callback and dependency fields; absent or unreadable ones are unset.
fn decode_lifecycle(hash: &RawHash) -> Lifecycle {
    let seconds = |field: &str| {
        text(hash, field)
            .map(|text| seconds_list(&text))
            .unwrap_or_default()
    };
    let callback = |name: &str, timeout: &str| {
        text(hash, name).map(|name| {
            let callback = Callback::new(name);
            match integer(hash, timeout) {
                Some(seconds) => callback.timeout(Timeout::from_seconds(seconds)),
                None => callback,
            }
        })
    };
    let count = |field: &str| integer(hash, field).map_or(0, |n| u64::try_from(n).unwrap_or(0));
    let flag = |field: &str| text(hash, field).as_deref() == Some("1");
    Lifecycle {
        retries_left: count("retries_left"),
        retry_intervals: seconds("retry_intervals"),
        retry_at_front: flag("enqueue_at_front_on_retry"),
        repeats_left: count("repeats_left"),
        repeat_intervals: seconds("repeat_intervals"),
        on_success: callback("success_callback_name", "success_callback_timeout"),
        on_failure: callback("failure_callback_name", "failure_callback_timeout"),
        on_stopped: callback("stopped_callback_name", "stopped_callback_timeout"),
        dependency_ids: text(hash, "dependency_ids")
            .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
            .unwrap_or_default()
            .into_iter()
            .map(JobId::from_stored)
            .collect(),
        allow_dependency_failures: flag("allow_dependency_failures"),
        enqueue_at_front: flag("enqueue_at_front"),
        // RQ 3.0's: a limit needs both fields, and a concurrency of at least 1.
        rate_limit: text(hash, "rate_limit_key")
            .filter(|key| !key.is_empty())
            .zip(integer(hash, "rate_limit_concurrency"))
            .and_then(|(key, concurrency)| {
                u32::try_from(concurrency)
                    .ok()
                    .filter(|concurrency| *concurrency >= 1)
                    .map(|concurrency| RateLimit::new(key, concurrency))
            }),
        // Python's `Webhook.to_dict()` list; one that cannot be read is skipped.
        webhooks: text(hash, "webhooks")
            .and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|value| serde_json::from_value(value).ok())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(func: &str, args: Value, kwargs: Value) -> Call {
        Call::of(func, args, kwargs)
    }

    #[test]
    fn data_round_trips_through_zlib_json() {
        let original = call("tasks.add", json!([1, 2]), json!({"k": "v"}));
        assert_eq!(decode_data(&encode_data(&original)), Ok(original));
    }

    #[test]
    fn reads_pythons_bytes_for_tasks_add() {
        // zlib of b'["tasks.add", null, [1, 2], {}]' as Python 3.11 writes it (RQ-SPEC 2.4).
        let python: [u8; 39] = [
            0x78, 0x9c, 0x8b, 0x56, 0x2a, 0x49, 0x2c, 0xce, 0x2e, 0xd6, 0x4b, 0x4c, 0x49, 0x51,
            0xd2, 0x51, 0xc8, 0x2b, 0xcd, 0xc9, 0xd1, 0x51, 0x88, 0x36, 0xd4, 0x51, 0x30, 0x8a,
            0xd5, 0x51, 0xa8, 0xae, 0x8d, 0x05, 0x00, 0x9d, 0xbe, 0x09, 0x78,
        ];
        assert_eq!(
            decode_data(&python),
            Ok(call("tasks.add", json!([1, 2]), json!({})))
        );
    }

    #[test]
    fn reads_uncompressed_data() {
        let decoded = decode_data(br#"["tasks.add",null,[1,2],{}]"#);
        assert_eq!(decoded, Ok(call("tasks.add", json!([1, 2]), json!({}))));
    }

    #[test]
    fn pickled_data_names_the_json_serializer() {
        let pickled = compress(b"\x80\x05\x95\x19\x00\x00\x00\x00\x00\x00\x00(\x8c\ttasks.add");
        let error = decode_data(&pickled).unwrap_err();
        assert!(error.contains("serializer=JSONSerializer"), "{error}");
    }

    #[test]
    fn nan_is_refused_with_a_reason_and_big_integers_are_kept() {
        let error = decode_data(br#"["f", null, [NaN], {}]"#).unwrap_err();
        assert!(error.contains("NaN or Infinity"), "{error}");
        let big = decode_data(br#"["f", null, [123456789012345678901234567890], {}]"#);
        assert_eq!(
            big.map(|c| c.args[0].to_string()),
            Ok("123456789012345678901234567890".to_owned())
        );
        assert!(decode_data(br#"["f", null, ["NaN"], {}]"#).is_ok());
    }

    #[test]
    fn malformed_data_says_what_is_wrong() {
        assert!(
            decode_data(b"\x00\x01garbage")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            decode_data(br#"["f", null, [1]]"#)
                .unwrap_err()
                .contains("3 elements")
        );
        assert!(
            decode_data(br#"["f", {"x": 1}, [], {}]"#)
                .unwrap_err()
                .contains("instance")
        );
    }

    #[test]
    fn meta_that_is_not_json_is_kept_as_text() {
        assert_eq!(
            decode_meta(br#"{"a": 1}"#),
            json!({"a": 1}).as_object().cloned().unwrap_or_default()
        );
        assert_eq!(
            Value::Object(decode_meta(b"\x80\x05junk"))["unserialized"],
            json!("\u{fffd}\u{5}junk")
        );
    }
}

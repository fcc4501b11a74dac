//! Result stream entries `rq:results:<id>` as RQ 2.x writes them: `type` (RQ's number),
//! `worker_name`, `return_value` (base64 of JSON) or `exc_string` (base64 of zlib of the text),
//! and the execution's id and times. The entry's id is the result's time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::DateTime;
use serde_json::Value;

use super::{compress, decompress, parse_json};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::results::{JobResult, ResultType};

/// base64 of the JSON of a return value, as the result stream stores it.
pub(crate) fn encode_return_value(value: &Value) -> String {
    BASE64.encode(serde_json::to_vec(value).expect("JSON values always serialize"))
}

/// A return value from the result stream.
pub(crate) fn decode_return_value(encoded: &[u8]) -> Result<Value, String> {
    let bytes = BASE64
        .decode(encoded)
        .map_err(|e| format!("return_value is not base64: {e}"))?;
    if bytes.first() == Some(&0x80) {
        return Err(
            "the return value is pickled; read it with Python RQ's default serializer".to_owned(),
        );
    }
    parse_json(&bytes)
}

/// base64 of zlib of an error text, as the result stream stores `exc_string`.
pub(crate) fn encode_exc_string(text: &str) -> String {
    BASE64.encode(compress(text.as_bytes()))
}

/// An `exc_string` from the result stream.
pub(crate) fn decode_exc_string(encoded: &[u8]) -> String {
    match BASE64.decode(encoded) {
        Ok(bytes) => String::from_utf8_lossy(&decompress(&bytes)).into_owned(),
        Err(_) => String::from_utf8_lossy(encoded).into_owned(),
    }
}

/// A result-stream entry of job `id`.
///
/// # Errors
/// [`Error::MalformedJob`] for an entry without a known type, or whose return value cannot be
/// read.
pub(crate) fn decode(id: &JobId, entry: &redis::streams::StreamId) -> Result<JobResult> {
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
            .map(|raw| decode_return_value(&raw))
            .transpose()
            .map_err(malformed)?,
        exc_string: field("exc_string").map(|raw| decode_exc_string(&raw)),
        worker_name: field("worker_name")
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .filter(|name| !name.is_empty()),
        execution_id: field("execution_id").map(|raw| String::from_utf8_lossy(&raw).into_owned()),
    })
}

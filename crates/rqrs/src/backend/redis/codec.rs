//! The job hash `rq:job:<id>` and the result stream entries, to and from Python RQ's encoding
//! with its JSON serializer (`RQ-FORMAT.md`).
//!
//! `data` is zlib of the JSON array `[func_name, null, args, kwargs]`; `meta` is plain JSON;
//! `exc_info` and result `exc_string`s are zlib of UTF-8 text (base64 in the stream);
//! timestamps are `%Y-%m-%dT%H:%M:%S%.6fZ`; integers are decimal strings.

use std::collections::HashMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, Utc};
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::{Map, Value};

use crate::job::{Call, JobStatus};

/// A hash as read with HGETALL: raw bytes, since `data` and `exc_info` are binary.
pub(crate) type RawHash = HashMap<String, Vec<u8>>;

/// RQ's timestamp format, always with six fraction digits and a `Z`.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Reads RQ's timestamps (1 to 6 fraction digits, or none); `""` is unset.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

/// Seconds since the epoch as Python's `time.time()` writes them (execution fields).
pub(crate) fn epoch_float(time: DateTime<Utc>) -> String {
    format!("{}.{:06}", time.timestamp(), time.timestamp_subsec_micros())
}

/// zlib at the default level, as Python's `zlib.compress`. Each thread keeps one compressor
/// and resets it: making one per job costs more than compressing a small job.
pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    thread_local! {
        static COMPRESS: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(Compression::default(), true));
    }
    COMPRESS.with(|compress| {
        let mut compress = compress.borrow_mut();
        compress.reset();
        // Deflate's worst case: stored blocks of 5 bytes of overhead per 16 KiB, plus the
        // zlib header and checksum.
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16_000 * 5 + 64);
        match compress.compress_vec(bytes, &mut out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => out,
            _ => {
                let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
                encoder
                    .write_all(bytes)
                    .expect("writing to a Vec cannot fail");
                encoder.finish().expect("writing to a Vec cannot fail")
            }
        }
    })
}

/// zlib-decompresses, or returns the bytes as they are when they are not zlib (RQ's readers
/// fall back the same way, so producers may store plain JSON).
pub(crate) fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    match ZlibDecoder::new(bytes).read_to_end(&mut out) {
        Ok(_) => out,
        Err(_) => bytes.to_vec(),
    }
}

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

/// Parses JSON as Python writes it. Integers of any size are kept (`arbitrary_precision`);
/// Python's bare `NaN`, `Infinity` and `-Infinity` are refused with a message saying so,
/// since JSON numbers cannot carry them and rewriting them would change the data silently.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|error| {
        if has_non_finite_token(bytes) {
            "it holds NaN or Infinity, which JSON cannot carry; send finite numbers or strings"
                .to_owned()
        } else {
            error.to_string()
        }
    })
}

/// Whether `NaN` or `Infinity` stands outside a string in JSON-like text.
fn has_non_finite_token(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if bytes[i..].starts_with(b"NaN") || bytes[i..].starts_with(b"Infinity") {
            return true;
        }
    }
    false
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

/// A JSON list of seconds (`retry_intervals`, `repeat_intervals`); Python may write floats,
/// which are rounded up. Unreadable text is an empty list.
pub(crate) fn seconds_list(text: &str) -> Vec<u64> {
    serde_json::from_str::<Vec<Value>>(text)
        .map(|values| {
            values
                .iter()
                .filter_map(|v| {
                    v.as_u64()
                        .or_else(|| v.as_f64().map(|f| f.max(0.0).ceil() as u64))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A text field of a hash; `""` and missing are both `None`.
pub(crate) fn text(hash: &RawHash, field: &str) -> Option<String> {
    hash.get(field)
        .filter(|bytes| !bytes.is_empty())
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// An integer field; a missing, empty or non-decimal value is `None`.
pub(crate) fn integer(hash: &RawHash, field: &str) -> Option<i64> {
    text(hash, field).and_then(|text| text.trim().parse().ok())
}

/// A timestamp field.
pub(crate) fn time(hash: &RawHash, field: &str) -> Option<DateTime<Utc>> {
    text(hash, field).and_then(|text| parse_time(&text))
}

/// The `status` field; RQ assumes `created` when it is missing.
pub(crate) fn status(hash: &RawHash) -> Result<JobStatus, String> {
    match text(hash, "status") {
        None => Ok(JobStatus::Created),
        Some(text) => text.parse().map_err(|_| format!("unknown status {text:?}")),
    }
}

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

/// RQ's default description: the call as Python would write it, `tasks.add(1, 'x', k=2)`,
/// each argument's repr cut to 75 characters.
pub(crate) fn call_string(call: &Call) -> String {
    let mut parts: Vec<String> = call.args.iter().map(short_repr).collect();
    let mut kwargs: Vec<_> = call.kwargs.iter().collect();
    kwargs.sort_by(|a, b| a.0.cmp(b.0));
    parts.extend(
        kwargs
            .into_iter()
            .map(|(key, value)| format!("{key}={}", short_repr(value))),
    );
    format!("{}({})", call.func_name, parts.join(", "))
}

fn short_repr(value: &Value) -> String {
    let repr = python_repr(value);
    match repr.char_indices().nth(75) {
        Some((cut, _)) => format!("{}...", &repr[..cut]),
        None => repr,
    }
}

/// A JSON value written as Python's `repr` of the value `json.loads` gives.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_repr(&Value::String(k.clone())),
                    python_repr(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(func: &str, args: Value, kwargs: Value) -> Call {
        Call {
            func_name: func.to_owned(),
            args: match args {
                Value::Array(args) => args,
                _ => Vec::new(),
            },
            kwargs: match kwargs {
                Value::Object(kwargs) => kwargs,
                _ => Map::new(),
            },
        }
    }

    #[test]
    fn compression_reuses_its_state_and_handles_any_size() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        };
        for size in [0, 1, 100, 70_000, 300_000] {
            let incompressible: Vec<u8> = (0..size).map(|_| random()).collect();
            assert_eq!(
                decompress(&compress(&incompressible)),
                incompressible,
                "{size} bytes"
            );
            let repetitive = vec![b'a'; size];
            assert_eq!(
                decompress(&compress(&repetitive)),
                repetitive,
                "{size} bytes"
            );
        }
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
    fn timestamps_use_rqs_format() {
        let time = parse_time("2026-11-29T01:22:33.966393Z").expect("parses");
        assert_eq!(format_time(time), "2026-11-29T01:22:33.966393Z");
        assert_eq!(
            parse_time("2026-11-29T01:22:33Z")
                .map(format_time)
                .as_deref(),
            Some("2026-11-29T01:22:33.000000Z")
        );
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn description_is_pythons_call_string() {
        let c = call(
            "tasks.add",
            json!(["x", 1, null, true, [1, "a"]]),
            json!({"b": 3, "a": {"k": 1.5}}),
        );
        assert_eq!(
            call_string(&c),
            "tasks.add('x', 1, None, True, [1, 'a'], a={'k': 1.5}, b=3)"
        );
        let long = call("f", json!(["y".repeat(100)]), json!({}));
        assert_eq!(call_string(&long), format!("f('{}...)", "y".repeat(74)));
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

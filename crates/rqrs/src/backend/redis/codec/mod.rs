//! Python RQ's encoding of what rqrs stores in Redis, with its JSON serializer
//! (`RQ-FORMAT.md`): the primitives here (timestamps, zlib, JSON as Python writes it, fields of a
//! hash), and per record: the job hash ([`job`]), result stream entries ([`result`]) and the
//! worker hash ([`worker`]). The workers' control messages are [`Command`](crate::command)'s.
//!
//! Timestamps are `%Y-%m-%dT%H:%M:%S%.6fZ`; integers are decimal strings; `data`, `exc_info`
//! and result `exc_string`s are zlib.

pub(crate) mod job;
pub(crate) mod result;
pub(crate) mod worker;

use std::collections::HashMap;
use std::io::{Read, Write};

use chrono::{DateTime, NaiveDateTime, Utc};
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::Value;

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

/// Payloads up to this size go into the zlib stream uncompressed: deflate gains next to nothing
/// on them, and costs more than the rest of an enqueue (the reset of a compressor's tables
/// alone was three quarters of a client's instructions per job).
const STORED_UP_TO: usize = 256;

/// zlib, as Python's `zlib.compress` makes it and any zlib reader reads it: at the default
/// level, or, up to [`STORED_UP_TO`] bytes, one stored block. Each thread keeps one compressor
/// and resets it: making one per job costs more than compressing a small job.
pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    if let Some(len) = u16::try_from(bytes.len())
        .ok()
        .filter(|&len| usize::from(len) <= STORED_UP_TO)
    {
        return stored(bytes, len);
    }
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

/// A zlib stream (RFC 1950) of one final stored deflate block (RFC 1951) of `bytes`, whose
/// length is `len`.
fn stored(bytes: &[u8], len: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 11);
    // Deflate with a 32 KiB window, the fastest level, and the check bits of the two.
    out.extend_from_slice(&[0x78, 0x01]);
    // The final block, stored: its length and the length's complement.
    out.push(0x01);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(&zlib_rs::adler32::adler32(1, bytes).to_be_bytes());
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_reuses_its_state_and_handles_any_size() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        };
        for size in [0, 1, 100, 256, 257, 70_000, 300_000] {
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
    fn small_payloads_are_stored_in_a_valid_zlib_stream() {
        let json = br#"["fixtures.noop",null,[],{}]"#;
        let stream = compress(json);
        assert_eq!(stream.len(), json.len() + 11);
        let mut strict = Vec::new();
        ZlibDecoder::new(stream.as_slice())
            .read_to_end(&mut strict)
            .expect("a valid zlib stream, checksum included");
        assert_eq!(strict, json);
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
}

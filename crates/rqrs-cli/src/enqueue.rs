//! `rqrs enqueue`: the argument syntax of `rq enqueue`.
//!
//! | argument | becomes |
//! |---|---|
//! | `text` | a positional string |
//! | `:json` | a positional JSON value |
//! | `key=text` | a keyword string |
//! | `key:=json` | a keyword JSON value |
//! | `@file`, `:@file`, `key=@file`, `key:=@file` | the value read from the file |
//!
//! `--schedule-in 10s|5m|2h|1d` (or plain seconds) and `--schedule-at 2021-05-27T21:45:00` (a
//! local time) put the job in the scheduled registry instead, as `rq enqueue` does.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Local, NaiveDateTime, TimeZone as _, Utc};
use clap::Args;
use rqrs::{Connection, EnqueueOptions, Queue, Timeout, Ttl};
use serde_json::{Map, Value};

#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    /// The function's name, e.g. tasks.add.
    function: String,
    /// The arguments (see `rq enqueue`): text, :JSON, key=text, key:=JSON, @file. Options may
    /// come between and after them, as with `rq enqueue`; after `--`, everything is an argument.
    arguments: Vec<String>,
    /// The queue.
    #[arg(long, short = 'q', default_value = "default")]
    queue: String,
    /// Seconds the job may run (-1: no limit).
    #[arg(long, allow_hyphen_values = true)]
    timeout: Option<i64>,
    /// Seconds the result is kept (0: not kept, -1: forever).
    #[arg(long, allow_hyphen_values = true)]
    result_ttl: Option<i64>,
    /// Seconds the job may wait on the queue.
    #[arg(long, allow_hyphen_values = true)]
    ttl: Option<i64>,
    /// Seconds a failure is kept.
    #[arg(long, allow_hyphen_values = true)]
    failure_ttl: Option<i64>,
    /// A description.
    #[arg(long)]
    description: Option<String>,
    /// The job's id.
    #[arg(long)]
    job_id: Option<String>,
    /// Put the job at the head of the queue.
    #[arg(long)]
    at_front: bool,
    /// Enqueue after a delay: seconds, or a number and a unit: 10s, 5m, 2h, 1d. A scheduler
    /// must run (`rqrs worker --with-scheduler`).
    #[arg(long, value_name = "DELAY", value_parser = parse_delay, conflicts_with = "schedule_at")]
    schedule_in: Option<Duration>,
    /// Enqueue at a local time, ISO 8601 without a time zone: 2021-05-27T21:45:00. A scheduler
    /// must run (`rqrs worker --with-scheduler`).
    #[arg(long, value_name = "TIME", value_parser = parse_local_time)]
    schedule_at: Option<DateTime<Utc>>,
}

pub(crate) async fn run(conn: &Connection, args: EnqueueArgs) -> anyhow::Result<()> {
    let (positional, keyword) = parse_arguments(&args.arguments)?;
    let mut options = EnqueueOptions::default();
    options.job_id = args.job_id.map(|id| id.parse()).transpose()?;
    options.timeout = args
        .timeout
        .map(|seconds| rq_seconds("--timeout", seconds).map(Timeout::from_seconds))
        .transpose()?;
    options.result_ttl = args
        .result_ttl
        .map(|seconds| rq_seconds("--result-ttl", seconds).map(Ttl::from_seconds))
        .transpose()?;
    options.ttl = match args.ttl {
        None | Some(-1) => None,
        Some(seconds) => Some(Duration::from_secs(
            u64::try_from(rq_seconds("--ttl", seconds)?).unwrap_or(0),
        )),
    };
    options.failure_ttl = args
        .failure_ttl
        .map(|seconds| rq_seconds("--failure-ttl", seconds).map(Ttl::from_seconds))
        .transpose()?;
    options.description = args.description;
    options.at_front = args.at_front;
    options.scheduled_at = args.schedule_at;
    let queue = Queue::new(conn, args.queue);
    let mut enqueue = queue
        .enqueue(&args.function, positional)
        .kwargs(keyword)
        .options(options);
    if let Some(delay) = args.schedule_in {
        enqueue = enqueue.delay(delay);
    }
    let job = enqueue.send().await?;
    println!("{}", job.id());
    Ok(())
}

/// A number of seconds as RQ takes it: 0 or more, or -1 for "none" / "forever".
fn rq_seconds(flag: &str, seconds: i64) -> anyhow::Result<i64> {
    anyhow::ensure!(
        seconds >= -1,
        "{flag} {seconds}: give a number of seconds, or -1"
    );
    Ok(seconds)
}

/// `rq enqueue --schedule-in`'s syntax (RQ's `parse_timeout`): seconds, or a number followed by
/// `s`, `m`, `h` or `d`.
fn parse_delay(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("{text:?}: give seconds, or a number and a unit (s, m, h, d): 10s, 5m");
    let (number, unit) = match text.char_indices().last() {
        Some((index, unit)) if unit.is_ascii_alphabetic() => (&text[..index], unit),
        _ => (text, 's'),
    };
    let seconds_per_unit = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(invalid()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number: u64 = number.parse().map_err(|_| invalid())?;
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

/// `rq enqueue --schedule-at`'s syntax, `%Y-%m-%dT%H:%M:%S`, read as a local time as RQ reads
/// naive times. RQ takes the zone's DST offset whenever the zone has DST at all
/// (`registry.py`, `time.altzone`), an hour off in winter; this takes the offset in force on
/// that date.
fn parse_local_time(text: &str) -> Result<DateTime<Utc>, String> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").map_err(|error| {
        format!("{text:?}: {error}; give a local time like 2021-05-27T21:45:00")
    })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|time| time.with_timezone(&Utc))
        .ok_or_else(|| format!("{text:?} does not exist in the local time zone (a DST gap)"))
}

/// Splits `rq enqueue` arguments into positional and keyword values.
fn parse_arguments(arguments: &[String]) -> anyhow::Result<(Vec<Value>, Map<String, Value>)> {
    let mut positional = Vec::new();
    let mut keyword = Map::new();
    for argument in arguments {
        let (key, value) = parse_argument(argument, positional.len() + 1)?;
        match key {
            Some(key) if keyword.contains_key(&key) => bail!("the keyword {key:?} is given twice"),
            Some(key) => {
                keyword.insert(key, value);
            }
            None => positional.push(value),
        }
    }
    Ok((positional, keyword))
}

fn parse_argument(argument: &str, position: usize) -> anyhow::Result<(Option<String>, Value)> {
    let (key, raw, json) = if let Some(raw) = argument.strip_prefix(':') {
        (None, raw, true)
    } else {
        match argument.find('=') {
            Some(index) if index > 0 => {
                let key = &argument[..index];
                let raw = &argument[index + 1..];
                match key.strip_suffix(':') {
                    Some(key) => (Some(key), raw, true),
                    None => (Some(key), raw, false),
                }
            }
            _ => (None, argument, false),
        }
    };
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => raw.to_owned(),
    };
    let value = if json {
        let what = key.map_or_else(
            || format!("argument {position}"),
            |key| format!("keyword {key:?}"),
        );
        serde_json::from_str(&text).with_context(|| format!("{what} is not valid JSON: {text}"))?
    } else {
        Value::String(text)
    };
    Ok((key.map(str::to_owned), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(arguments: &[&str]) -> anyhow::Result<(Vec<Value>, Map<String, Value>)> {
        parse_arguments(
            &arguments
                .iter()
                .map(|a| (*a).to_owned())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn follows_rq_enqueue_syntax() {
        let (args, kwargs) = parse(&[
            "text",
            ":1",
            ":[1, 2]",
            "k=v",
            "n:=3",
            "u:={\"a\": null}",
            "=x",
        ])
        .unwrap();
        assert_eq!(Value::Array(args), json!(["text", 1, [1, 2], "=x"]));
        assert_eq!(
            Value::Object(kwargs),
            json!({"k": "v", "n": 3, "u": {"a": null}})
        );
    }

    #[test]
    fn reads_values_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        std::fs::write(&path, "[1, 2]").unwrap();
        let (args, kwargs) = parse(&[
            &format!(":@{}", path.display()),
            &format!("k=@{}", path.display()),
        ])
        .unwrap();
        assert_eq!(Value::Array(args), json!([[1, 2]]));
        assert_eq!(Value::Object(kwargs), json!({"k": "[1, 2]"}));
    }

    #[test]
    fn delays_follow_rq_syntax() {
        assert_eq!(parse_delay("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_delay("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_delay("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_delay("2H"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_delay("1d"), Ok(Duration::from_secs(86400)));
        for bad in ["", "s", "1w", "-1s", "1.5m", "m5"] {
            assert!(parse_delay(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schedule_times_are_local() {
        let time = parse_local_time("2021-05-27T21:45:00").unwrap();
        let local = time.with_timezone(&Local).naive_local();
        assert_eq!(local.to_string(), "2021-05-27 21:45:00");
        assert!(parse_local_time("2021-05-27 21:45").is_err());
        assert!(parse_local_time("2021-05-27T21:45:00Z").is_err());
    }

    #[test]
    fn bad_json_and_repeated_keywords_are_refused() {
        assert!(
            parse(&[":{nope"])
                .unwrap_err()
                .to_string()
                .contains("argument 1 is not valid JSON")
        );
        assert!(
            parse(&["k=1", "k=2"])
                .unwrap_err()
                .to_string()
                .contains("given twice")
        );
    }
}

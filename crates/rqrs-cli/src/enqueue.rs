//! `rqrs enqueue`: the argument syntax of `rq enqueue`.
//!
//! | argument | becomes |
//! |---|---|
//! | `text` | a positional string |
//! | `:json` | a positional JSON value |
//! | `key=text` | a keyword string |
//! | `key:=json` | a keyword JSON value |
//! | `@file`, `:@file`, `key=@file`, `key:=@file` | the value read from the file |

use anyhow::{Context as _, bail};
use clap::Args;
use rqrs::{Connection, EnqueueOptions, Queue};
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
}

pub(crate) async fn run(conn: &Connection, args: EnqueueArgs) -> anyhow::Result<()> {
    let (positional, keyword) = parse_arguments(&args.arguments)?;
    let mut options = EnqueueOptions::default();
    options.job_id = args.job_id.map(|id| id.parse()).transpose()?;
    options.timeout = args.timeout;
    options.result_ttl = args.result_ttl;
    options.ttl = args.ttl;
    options.failure_ttl = args.failure_ttl;
    options.description = args.description;
    options.at_front = args.at_front;
    let queue = Queue::new(conn, args.queue);
    let job = queue
        .enqueue(&args.function, positional)
        .kwargs(keyword)
        .options(options)
        .send()
        .await?;
    println!("{}", job.id());
    Ok(())
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

//! The fixture job functions, registered by the `worker` example under these names for tests
//! and users to rely on (their names and arguments are a stable contract):
//!
//! | name | does |
//! |---|---|
//! | `fixtures.add(x, y)` | returns `x + y` (integers) |
//! | `fixtures.echo(*args, **kwargs)` | returns `{"args": [...], "kwargs": {...}}` |
//! | `fixtures.fail(message)` | fails with `message` |
//! | `fixtures.sleep(seconds)` | sleeps (async), returns `seconds` |
//! | `fixtures.spin(seconds)` | sleeps on its thread (blocking), returns `seconds` |
//! | `fixtures.set_meta(key, value)` | sets `meta[key] = value` on the job, saves it, returns the job's id |
//! | `fixtures.noop()` | returns `null` |
//! | `fixtures.append(path, line, seconds=0)` | waits `seconds`, then appends `line` and a newline to the file `path` |
//! | `fixtures.progress(steps, seconds)` | reports progress `i/steps` after each of `steps` sleeps of `seconds`, returns `steps` |
//! | `fixtures.on_success_mark` | a callback: sets meta `"callback"` to `"success"` on the job and saves it |
//! | `fixtures.on_failure_mark` | a callback: sets meta `"callback"` to `"failure"` on the job and saves it |
//! | `fixtures.abort()` | aborts the process (`std::process::abort`): for work horses only, it kills an in-process worker |
//! | `fixtures.allocate(bytes)` | allocates and touches `bytes` bytes, holds them 5 s (blocking), returns `bytes` |
//! | `fixtures.pid()` | returns the id of the process that runs it (the worker's, or its work horse's) |

use std::io::Write;
use std::time::Duration;

use rqrs::{Functions, JobContext, JobError};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Number, Value, json};

/// Every fixture function.
///
/// # Examples
/// ```
/// let functions = rqrs_test::fixtures::functions();
/// assert!(functions.contains("fixtures.add"));
/// assert!(functions.contains("fixtures.on_success_mark"));
/// ```
pub fn functions() -> Functions {
    Functions::new()
        .register("fixtures.add", add)
        .register("fixtures.echo", echo)
        .register("fixtures.fail", fail)
        .register("fixtures.sleep", sleep)
        .register_blocking("fixtures.spin", spin)
        .register("fixtures.set_meta", set_meta)
        .register("fixtures.noop", noop)
        .register("fixtures.append", append)
        .register("fixtures.progress", progress)
        .register(
            "fixtures.on_success_mark",
            |ctx: JobContext, _: IgnoredAny| mark(ctx, "success"),
        )
        .register(
            "fixtures.on_failure_mark",
            |ctx: JobContext, _: IgnoredAny| mark(ctx, "failure"),
        )
        .register("fixtures.abort", abort)
        .register_blocking("fixtures.allocate", allocate)
        .register("fixtures.pid", pid)
}

#[derive(Deserialize)]
struct Progress {
    steps: u64,
    seconds: Number,
}

async fn progress(ctx: JobContext, Progress { steps, seconds }: Progress) -> Result<u64, JobError> {
    let pause = duration(&seconds)?;
    for step in 1..=steps {
        tokio::time::sleep(pause).await;
        ctx.set_progress(step, steps).await?;
    }
    Ok(steps)
}

/// A callback (it runs with the context of the job it is called for).
async fn mark(ctx: JobContext, outcome: &'static str) -> Result<(), JobError> {
    ctx.set_meta("callback", outcome);
    ctx.save_meta().await?;
    Ok(())
}

#[derive(Deserialize)]
struct Add {
    x: i64,
    y: i64,
}

async fn add(_ctx: JobContext, Add { x, y }: Add) -> Result<i64, JobError> {
    x.checked_add(y)
        .ok_or_else(|| JobError::new(format!("{x} + {y} overflows a 64-bit integer")))
}

async fn echo(ctx: JobContext, _: IgnoredAny) -> Result<Value, JobError> {
    Ok(json!({"args": ctx.args(), "kwargs": ctx.kwargs()}))
}

#[derive(Deserialize)]
struct Fail {
    message: String,
}

async fn fail(_ctx: JobContext, Fail { message }: Fail) -> Result<(), JobError> {
    Err(JobError::new(message))
}

#[derive(Deserialize)]
struct Seconds {
    seconds: Number,
}

fn duration(seconds: &Number) -> Result<Duration, JobError> {
    seconds
        .as_f64()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| JobError::new(format!("{seconds} is not a number of seconds")))
}

async fn sleep(_ctx: JobContext, Seconds { seconds }: Seconds) -> Result<Number, JobError> {
    tokio::time::sleep(duration(&seconds)?).await;
    Ok(seconds)
}

fn spin(_ctx: JobContext, Seconds { seconds }: Seconds) -> Result<Number, JobError> {
    std::thread::sleep(duration(&seconds)?);
    Ok(seconds)
}

#[derive(Deserialize)]
struct SetMeta {
    key: String,
    value: Value,
}

async fn set_meta(_ctx: JobContext, SetMeta { key, value }: SetMeta) -> Result<String, JobError> {
    // Through current_job(), as a function deep inside a job would reach it.
    let job = rqrs::current_job().ok_or_else(|| JobError::new("no current job"))?;
    job.set_meta(key, value);
    job.save_meta().await?;
    Ok(job.id().to_string())
}

async fn noop(_ctx: JobContext, (): ()) -> Result<(), JobError> {
    Ok(())
}

#[derive(Deserialize)]
struct Append {
    path: String,
    line: String,
    #[serde(default)]
    seconds: Option<Number>,
}

async fn append(
    _ctx: JobContext,
    Append {
        path,
        line,
        seconds,
    }: Append,
) -> Result<(), JobError> {
    if let Some(seconds) = &seconds {
        tokio::time::sleep(duration(seconds)?).await;
    }
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        // One write call, so that lines from concurrent workers never interleave.
        file.write_all(format!("{line}\n").as_bytes())
    })
    .await??;
    Ok(())
}

async fn abort(_ctx: JobContext, (): ()) -> Result<(), JobError> {
    std::process::abort()
}

#[derive(Deserialize)]
struct Allocate {
    bytes: usize,
}

fn allocate(_ctx: JobContext, Allocate { bytes }: Allocate) -> Result<usize, JobError> {
    // Written, not only reserved: untouched pages would not count in the resident memory.
    let held = std::hint::black_box(vec![1u8; bytes]);
    std::thread::sleep(Duration::from_secs(5));
    Ok(held.len())
}

async fn pid(_ctx: JobContext, (): ()) -> Result<u32, JobError> {
    Ok(std::process::id())
}

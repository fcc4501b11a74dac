//! rqrs's benchmark: enqueue rates, burst processing of no-op jobs by the `worker` example,
//! enqueue-to-start latency, Redis commands per job, worker memory and start-up, and the same
//! burst with process isolation (jobs in work horses) and the memory of a horse. Run it with
//! `bench/run.sh`, which starts a private redis-server and runs Python RQ's baseline beside it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use rqrs::{Connection, Queue};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// The private redis-server to use (it is flushed).
    #[arg(long)]
    url: String,
    /// The `worker` example binary.
    #[arg(long)]
    worker: PathBuf,
    /// Runs of each timed figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Multiplies every job count.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Where to write the figures as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn scaled(args: &Args, n: usize) -> usize {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "job counts are small"
    )]
    let n = (n as f64 * args.scale) as usize;
    n.max(10)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.worker.exists(),
        "no worker binary at {}: cargo build --release --examples",
        args.worker.display()
    );
    let conn = rqrs::connect(&args.url).await?;
    let redis = redis::Client::open(args.url.as_str())?;
    let mut raw = redis.get_multiplexed_async_connection().await?;
    let mut results = serde_json::Map::new();
    let mut runs: HashMap<&str, Vec<f64>> = HashMap::new();

    for rep in 0..args.reps {
        eprintln!("--- round {}/{}", rep + 1, args.reps);
        let n = scaled(&args, 20_000);
        runs.entry("enqueue_one")
            .or_default()
            .push(enqueue_one(&conn, &mut raw, n).await?);
        runs.entry("enqueue_many")
            .or_default()
            .push(enqueue_many(&conn, &mut raw, n).await?);
        for concurrency in [64, 1] {
            let n = scaled(&args, if concurrency == 1 { 20_000 } else { 50_000 });
            let run = process(&args, &conn, &mut raw, n, concurrency, &[]).await?;
            eprintln!(
                "  worker -c {concurrency}: {:.0} jobs/s, peak RSS {} KiB",
                run.rate, run.peak_rss_kib
            );
            runs.entry(if concurrency == 1 {
                "worker_c1"
            } else {
                "worker_c64"
            })
            .or_default()
            .push(run.rate);
            runs.entry(if concurrency == 1 {
                "worker_c1_peak_rss_kib"
            } else {
                "worker_c64_peak_rss_kib"
            })
            .or_default()
            .push(run.peak_rss_kib as f64);
        }
        for concurrency in [1, 4] {
            let n = scaled(&args, 20_000);
            let run = process(
                &args,
                &conn,
                &mut raw,
                n,
                concurrency,
                &["--isolation", "process"],
            )
            .await?;
            eprintln!(
                "  worker -c {concurrency} --isolation process: {:.0} jobs/s, peak RSS {} KiB, \
                 work horse peak RSS {} KiB",
                run.rate, run.peak_rss_kib, run.horse_peak_rss_kib
            );
            runs.entry(if concurrency == 1 {
                "isolated_c1"
            } else {
                "isolated_c4"
            })
            .or_default()
            .push(run.rate);
            runs.entry("work_horse_peak_rss_kib")
                .or_default()
                .push(run.horse_peak_rss_kib as f64);
        }
        runs.entry("startup_ms")
            .or_default()
            .push(startup(&args, &mut raw).await?);
    }
    for (key, values) in &runs {
        results.insert((*key).to_owned(), summary(values));
        eprintln!("{key}: median {:.1}", median(values));
    }
    results.insert(
        "latency".to_owned(),
        latency(&args, &conn, &mut raw, scaled(&args, 500)).await?,
    );
    results.insert(
        "commands".to_owned(),
        commands(&args, &conn, &mut raw, scaled(&args, 1000)).await?,
    );
    results.insert(
        "redis_memory_per_queued_job_bytes".to_owned(),
        json!(memory_per_job(&conn, &mut raw, scaled(&args, 20_000)).await?),
    );
    let results = Value::Object(results);
    println!("{}", serde_json::to_string_pretty(&results)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn summary(values: &[f64]) -> Value {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({"median": median(values), "min": min, "max": max, "runs": values})
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index"
    )]
    let index = ((values.len() - 1) as f64 * p).round() as usize;
    values[index.min(values.len() - 1)]
}

async fn flush(raw: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<()> {
    let _: () = redis::cmd("FLUSHALL").query_async(raw).await?;
    Ok(())
}

#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn enqueue_one(
    conn: &Connection,
    raw: &mut redis::aio::MultiplexedConnection,
    n: usize,
) -> anyhow::Result<f64> {
    flush(raw).await?;
    let queue = Queue::new(conn, "bench");
    let start = Instant::now();
    for _ in 0..n {
        queue.enqueue("fixtures.noop", ()).send().await?;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    ensure!(queue.count().await? == n);
    Ok(rate)
}

#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn enqueue_many(
    conn: &Connection,
    raw: &mut redis::aio::MultiplexedConnection,
    n: usize,
) -> anyhow::Result<f64> {
    flush(raw).await?;
    let queue = Queue::new(conn, "bench");
    let start = Instant::now();
    queue
        .enqueue_many((0..n).map(|_| queue.enqueue("fixtures.noop", ())))
        .await?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    ensure!(queue.count().await? == n);
    Ok(rate)
}

async fn fill(conn: &Connection, n: usize) -> anyhow::Result<Vec<rqrs::JobId>> {
    let queue = Queue::new(conn, "bench");
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(5000) {
        let batch = queue
            .enqueue_many((start..n.min(start + 5000)).map(|_| queue.enqueue("fixtures.noop", ())))
            .await?;
        ids.extend(batch.into_iter().map(|job| job.id().clone()));
    }
    Ok(ids)
}

fn spawn_worker(args: &Args, extra: &[&str]) -> anyhow::Result<Child> {
    Command::new(&args.worker)
        .args(["--url", &args.url, "--logging-level", "ERROR"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {}", args.worker.display()))
}

/// A field of /proc/<pid>/status in KiB.
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// The processes whose parent is `pid` (a worker's work horses).
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent = |child: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse::<u32>()
            .ok()
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| parent(*child) == Some(pid))
        .collect()
}

struct Processed {
    rate: f64,
    peak_rss_kib: u64,
    horse_peak_rss_kib: u64,
}

/// The peak RSS of a worker and of its largest child, in KiB.
#[derive(Default)]
struct Peaks {
    worker_kib: u64,
    horse_kib: u64,
}

/// Waits for a child, reading its peak RSS (and every 100 ms its children's) while it runs;
/// fails after `limit`.
async fn wait_child(child: &mut Child, limit: Duration) -> anyhow::Result<Peaks> {
    let deadline = Instant::now() + limit;
    let mut peaks = Peaks::default();
    let mut looked = Instant::now() - Duration::from_secs(1);
    loop {
        if let Some(kib) = proc_kib(child.id(), "VmHWM:") {
            peaks.worker_kib = peaks.worker_kib.max(kib);
        }
        if looked.elapsed() >= Duration::from_millis(100) {
            looked = Instant::now();
            for horse in children(child.id()) {
                if let Some(kib) = proc_kib(horse, "VmHWM:") {
                    peaks.horse_kib = peaks.horse_kib.max(kib);
                }
            }
        }
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "the worker exited with {status}");
            return Ok(peaks);
        }
        if Instant::now() > deadline {
            child.kill()?;
            bail!("the worker did not finish in {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn process(
    args: &Args,
    conn: &Connection,
    raw: &mut redis::aio::MultiplexedConnection,
    n: usize,
    concurrency: usize,
    extra: &[&str],
) -> anyhow::Result<Processed> {
    flush(raw).await?;
    let ids = fill(conn, n).await?;
    let start = Instant::now();
    let concurrency = concurrency.to_string();
    let mut worker_args = vec!["--burst", "--concurrency", &concurrency, "bench"];
    worker_args.extend_from_slice(extra);
    let mut child = spawn_worker(args, &worker_args)?;
    let peaks = wait_child(&mut child, Duration::from_secs(600)).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let done: usize = redis::cmd("ZCARD")
        .arg("rq:finished:bench")
        .query_async(raw)
        .await?;
    ensure!(
        done == ids.len(),
        "only {done} of {} jobs finished",
        ids.len()
    );
    Ok(Processed {
        rate: n as f64 / elapsed,
        peak_rss_kib: peaks.worker_kib,
        horse_peak_rss_kib: peaks.horse_kib,
    })
}

/// Milliseconds from spawning a burst worker on an empty queue to its exit.
async fn startup(args: &Args, raw: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    flush(raw).await?;
    let start = Instant::now();
    let mut child = spawn_worker(args, &["--burst", "bench"])?;
    wait_child(&mut child, Duration::from_secs(30)).await?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

async fn wait_registered(raw: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let count: usize = redis::cmd("SCARD")
            .arg("rq:workers")
            .query_async(raw)
            .await?;
        if count > 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the worker did not register")
}

fn stop(child: &mut Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    ensure!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            bail!("the worker did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Enqueue-to-start and enqueue-to-end latency with one idle worker, jobs 5 ms apart (as the
/// Python baseline measures it, from the job's timestamps); plus idle worker RSS.
async fn latency(
    args: &Args,
    conn: &Connection,
    raw: &mut redis::aio::MultiplexedConnection,
    n: usize,
) -> anyhow::Result<Value> {
    flush(raw).await?;
    let mut child = spawn_worker(args, &["--concurrency", "8", "lat"])?;
    let outcome = async {
        wait_registered(raw).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_rss = proc_kib(child.id(), "VmRSS:").unwrap_or(0);
        let queue = Queue::new(conn, "lat");
        let start = Instant::now();
        let mut ids = Vec::with_capacity(n);
        let mut calls = Vec::with_capacity(n);
        for i in 0..n {
            let due = start + Duration::from_millis(5) * u32::try_from(i)?;
            tokio::time::sleep_until(due.into()).await;
            let call = Instant::now();
            ids.push(queue.enqueue("fixtures.noop", ()).send().await?.id().clone());
            calls.push(call.elapsed().as_secs_f64() * 1000.0);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut to_start, mut to_end) = (Vec::new(), Vec::new());
        loop {
            to_start.clear();
            to_end.clear();
            for id in &ids {
                let job = rqrs::Job::fetch(conn, id).await?;
                if let (Some(enqueued), Some(started), Some(ended)) = (job.enqueued_at(), job.started_at(), job.ended_at())
                    && job.status() == rqrs::JobStatus::Finished
                {
                    to_start.push((started - enqueued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    to_end.push((ended - enqueued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
            if to_start.len() == ids.len() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ensure!(to_start.len() == ids.len(), "only {} of {} jobs finished", to_start.len(), ids.len());
        Ok(json!({
            "n": n,
            "start_p50_ms": percentile(&mut to_start, 0.5), "start_p99_ms": percentile(&mut to_start, 0.99),
            "end_p50_ms": percentile(&mut to_end, 0.5), "end_p99_ms": percentile(&mut to_end, 0.99),
            "enqueue_call_p50_ms": percentile(&mut calls, 0.5), "enqueue_call_p99_ms": percentile(&mut calls, 0.99),
            "idle_worker_rss_kib": idle_rss,
        }))
    }
    .await;
    stop(&mut child)?;
    outcome
}

async fn total_commands(raw: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await?;
    let mut total = 0;
    for line in info.lines().filter(|line| line.starts_with("cmdstat_")) {
        // INFO itself and RESETSTAT are ours, not the queue's.
        if line.starts_with("cmdstat_info:") || line.starts_with("cmdstat_config") {
            continue;
        }
        let calls = line
            .split("calls=")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<u64>().ok());
        total += calls.unwrap_or(0);
    }
    Ok(total)
}

async fn reset_stats(raw: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<()> {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(raw)
        .await?;
    Ok(())
}

/// Redis commands per job (server-side counts; a Lua script's inner commands count too).
#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn commands(
    args: &Args,
    conn: &Connection,
    raw: &mut redis::aio::MultiplexedConnection,
    n: usize,
) -> anyhow::Result<Value> {
    flush(raw).await?;
    let queue = Queue::new(conn, "bench");
    queue.enqueue("fixtures.noop", ()).send().await?;
    flush(raw).await?;
    reset_stats(raw).await?;
    for _ in 0..n {
        queue.enqueue("fixtures.noop", ()).send().await?;
    }
    let enqueue = total_commands(raw).await? as f64 / n as f64;

    flush(raw).await?;
    reset_stats(raw).await?;
    let mut child = spawn_worker(args, &["--burst", "bench"])?;
    wait_child(&mut child, Duration::from_secs(60)).await?;
    let fixed = total_commands(raw).await?;

    let mut per_concurrency = serde_json::Map::new();
    for concurrency in [1, 64] {
        flush(raw).await?;
        fill(conn, n).await?;
        reset_stats(raw).await?;
        let mut child = spawn_worker(
            args,
            &[
                "--burst",
                "--concurrency",
                &concurrency.to_string(),
                "bench",
            ],
        )?;
        wait_child(&mut child, Duration::from_secs(120)).await?;
        let total = total_commands(raw).await?;
        per_concurrency.insert(
            format!("work_c{concurrency}"),
            json!((total.saturating_sub(fixed)) as f64 / n as f64),
        );
    }
    Ok(
        json!({"enqueue_one": enqueue, "worker_fixed_cost": fixed, "per_job": per_concurrency,
              "note": "server-side INFO commandstats: the commands inside a Lua script count one each, EVALSHA counts one more"}),
    )
}

async fn memory_per_job(
    conn: &Connection,
    raw: &mut redis::aio::MultiplexedConnection,
    n: usize,
) -> anyhow::Result<f64> {
    flush(raw).await?;
    let used = |info: String| -> f64 {
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:")?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let before = used(redis::cmd("INFO").arg("memory").query_async(raw).await?);
    fill(conn, n).await?;
    let after = used(redis::cmd("INFO").arg("memory").query_async(raw).await?);
    #[expect(clippy::cast_precision_loss, reason = "job counts")]
    Ok((after - before) / n as f64)
}

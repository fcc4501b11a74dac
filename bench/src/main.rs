//! rqrs's benchmark: enqueue rates, burst processing of no-op jobs by the `worker` example,
//! enqueue-to-start latency, an idle worker's CPU, worker memory and start-up, and the same
//! burst with process isolation (jobs in work horses) and the memory of a horse; on Redis also
//! the commands per job and the server's memory per queued job, on SQLite the database's bytes
//! per queued job. Run it with `bench/run.sh`, which runs it on a private redis-server and on a
//! SQLite file, and Python RQ's baseline beside them.

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
    /// The store: a private redis-server (flushed before each figure) or a SQLite database file
    /// (`sqlite:///dir/jobs.db`: each figure gets a new file beside it, `jobs-<n>.db`).
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

/// The store the figures are taken on, emptied before each figure.
enum Target {
    /// The server's URL and a raw connection, to flush it and read its counters.
    Redis {
        url: String,
        raw: redis::aio::MultiplexedConnection,
    },
    /// A new database file for each figure, `<base>-<figure>.db` (a file is never deleted
    /// under a connection that may still have it open).
    Sqlite { base: String, figure: u32 },
}

impl Target {
    async fn open(url: &str) -> anyhow::Result<Target> {
        match url.strip_prefix("sqlite://") {
            Some(path) => Ok(Target::Sqlite {
                base: path.strip_suffix(".db").unwrap_or(path).to_owned(),
                figure: 0,
            }),
            None => Ok(Target::Redis {
                url: url.to_owned(),
                raw: redis::Client::open(url)?
                    .get_multiplexed_async_connection()
                    .await?,
            }),
        }
    }

    /// The store's URL, for the workers of the current figure.
    fn url(&self) -> String {
        match self {
            Target::Redis { url, .. } => url.clone(),
            Target::Sqlite { base, figure } => format!("sqlite://{base}-{figure}.db"),
        }
    }

    /// The database file of the current figure.
    fn file(&self) -> Option<PathBuf> {
        self.url().strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// Empties the store (a new file on SQLite) and connects to it.
    async fn fresh(&mut self) -> anyhow::Result<Connection> {
        match self {
            Target::Redis { raw, .. } => {
                let _: () = redis::cmd("FLUSHALL").query_async(raw).await?;
            }
            Target::Sqlite { figure, .. } => *figure += 1,
        }
        Ok(rqrs::connect(&self.url()).await?)
    }

    /// The raw Redis connection, for the figures only Redis has.
    fn redis(&mut self) -> Option<&mut redis::aio::MultiplexedConnection> {
        match self {
            Target::Redis { raw, .. } => Some(raw),
            Target::Sqlite { .. } => None,
        }
    }
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
    let mut target = Target::open(&args.url).await?;
    let mut results = serde_json::Map::new();
    let mut runs: HashMap<String, Vec<f64>> = HashMap::new();

    for rep in 0..args.reps {
        eprintln!("--- round {}/{}", rep + 1, args.reps);
        let n = scaled(&args, 20_000);
        runs.entry("enqueue_one".to_owned())
            .or_default()
            .push(enqueue_one(&mut target, n).await?);
        runs.entry("enqueue_many".to_owned())
            .or_default()
            .push(enqueue_many(&mut target, n).await?);
        for concurrency in [1, 8, 64, 256] {
            let n = scaled(&args, if concurrency == 1 { 20_000 } else { 50_000 });
            let run = process(&args, &mut target, &Burst::noop(n, concurrency)).await?;
            eprintln!(
                "  worker -c {concurrency}: {:.0} jobs/s, peak RSS {} KiB, Redis CPU {:.1} us/job",
                run.rate,
                run.peak_rss_kib,
                run.redis_cpu_us.unwrap_or(f64::NAN)
            );
            run.record(&mut runs, &format!("worker_c{concurrency}"));
        }
        let n = scaled(&args, 50_000);
        let two = process(
            &args,
            &mut target,
            &Burst {
                workers: 2,
                ..Burst::noop(n, 64)
            },
        )
        .await?;
        eprintln!("  two workers -c 64: {:.0} jobs/s", two.rate);
        two.record(&mut runs, "workers2_c64");
        let n = scaled(&args, 10_000);
        let slow = process(
            &args,
            &mut target,
            &Burst {
                job: SLEEP_10MS,
                ..Burst::noop(n, 64)
            },
        )
        .await?;
        eprintln!("  worker -c 64, 10 ms jobs: {:.0} jobs/s", slow.rate);
        slow.record(&mut runs, "sleep10ms_c64");
        for concurrency in [1, 4] {
            let n = scaled(&args, 20_000);
            let run = process(
                &args,
                &mut target,
                &Burst {
                    extra: &["--isolation", "process"],
                    ..Burst::noop(n, concurrency)
                },
            )
            .await?;
            eprintln!(
                "  worker -c {concurrency} --isolation process: {:.0} jobs/s, peak RSS {} KiB, \
                 work horse peak RSS {} KiB",
                run.rate, run.peak_rss_kib, run.horse_peak_rss_kib
            );
            runs.entry(format!("isolated_c{concurrency}"))
                .or_default()
                .push(run.rate);
            runs.entry("work_horse_peak_rss_kib".to_owned())
                .or_default()
                .push(run.horse_peak_rss_kib as f64);
        }
        runs.entry("startup_ms".to_owned())
            .or_default()
            .push(startup(&args, &mut target).await?);
    }
    for (key, values) in &runs {
        results.insert(key.clone(), summary(values));
        eprintln!("{key}: median {:.1}", median(values));
    }
    results.insert(
        "latency".to_owned(),
        latency(&args, &mut target, scaled(&args, 500)).await?,
    );
    // Half the rate one worker reached at concurrency 64, in steady arrivals.
    let rate = median(&runs["worker_c64"]) / 2.0;
    results.insert(
        "latency_under_load".to_owned(),
        latency_under_load(&args, &mut target, rate, scaled(&args, 20_000)).await?,
    );
    if target.redis().is_some() {
        results.insert(
            "commands".to_owned(),
            commands(&args, &mut target, scaled(&args, 1000)).await?,
        );
    }
    let (queued, finished) = memory_per_job(&args, &mut target, scaled(&args, 20_000)).await?;
    results.insert("store_bytes_per_queued_job".to_owned(), json!(queued));
    results.insert("store_bytes_per_finished_job".to_owned(), json!(finished));
    results.insert(
        "backlog".to_owned(),
        backlog(&args, &mut target, scaled(&args, 1_000_000)).await?,
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

#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn enqueue_one(target: &mut Target, n: usize) -> anyhow::Result<f64> {
    let conn = target.fresh().await?;
    let queue = Queue::new(&conn, "bench");
    let start = Instant::now();
    for _ in 0..n {
        queue.enqueue("fixtures.noop", ()).send().await?;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    ensure!(queue.count().await? == n);
    Ok(rate)
}

#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn enqueue_many(target: &mut Target, n: usize) -> anyhow::Result<f64> {
    let conn = target.fresh().await?;
    let queue = Queue::new(&conn, "bench");
    let start = Instant::now();
    queue
        .enqueue_many((0..n).map(|_| queue.enqueue("fixtures.noop", ())))
        .await?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    ensure!(queue.count().await? == n);
    Ok(rate)
}

/// A job function the benchmark's workers run, and its arguments.
#[derive(Debug, Clone, Copy)]
struct Fixture {
    function: &'static str,
    /// Seconds to sleep, for `fixtures.sleep`.
    seconds: Option<f64>,
}

const NOOP: Fixture = Fixture {
    function: "fixtures.noop",
    seconds: None,
};
const SLEEP_10MS: Fixture = Fixture {
    function: "fixtures.sleep",
    seconds: Some(0.01),
};

async fn fill(conn: &Connection, n: usize) -> anyhow::Result<Vec<rqrs::JobId>> {
    fill_with(conn, n, NOOP).await
}

/// Enqueues `n` jobs of `job` on `bench`, 5,000 a call.
async fn fill_with(conn: &Connection, n: usize, job: Fixture) -> anyhow::Result<Vec<rqrs::JobId>> {
    let queue = Queue::new(conn, "bench");
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(5000) {
        let calls = (start..n.min(start + 5000)).map(|_| match job.seconds {
            Some(seconds) => queue.enqueue(job.function, (seconds,)),
            None => queue.enqueue(job.function, ()),
        });
        let batch = queue.enqueue_many(calls).await?;
        ids.extend(batch.into_iter().map(|job| job.id().clone()));
    }
    Ok(ids)
}

fn spawn_worker(args: &Args, target: &Target, extra: &[&str]) -> anyhow::Result<Child> {
    Command::new(&args.worker)
        .args(["--url", &target.url(), "--logging-level", "ERROR"])
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
    /// Redis's CPU time per job (user and system), in microseconds; Redis only.
    redis_cpu_us: Option<f64>,
}

impl Processed {
    /// Adds the run's figures to `runs` under `key`: its rate, peak RSS and Redis CPU.
    fn record(&self, runs: &mut HashMap<String, Vec<f64>>, key: &str) {
        runs.entry(key.to_owned()).or_default().push(self.rate);
        #[expect(clippy::cast_precision_loss, reason = "KiB")]
        runs.entry(format!("{key}_peak_rss_kib"))
            .or_default()
            .push(self.peak_rss_kib as f64);
        if let Some(us) = self.redis_cpu_us {
            runs.entry(format!("{key}_redis_cpu_us"))
                .or_default()
                .push(us);
        }
    }
}

/// A burst to time: `n` jobs of `job` filled untimed, then `workers` worker processes at
/// `concurrency` each, with `extra` arguments, from spawning until the last one exits.
struct Burst<'a> {
    n: usize,
    concurrency: usize,
    workers: usize,
    extra: &'a [&'a str],
    job: Fixture,
}

impl Burst<'_> {
    fn noop(n: usize, concurrency: usize) -> Self {
        Burst {
            n,
            concurrency,
            workers: 1,
            extra: &[],
            job: NOOP,
        }
    }
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
async fn process(args: &Args, target: &mut Target, burst: &Burst<'_>) -> anyhow::Result<Processed> {
    let conn = target.fresh().await?;
    let ids = fill_with(&conn, burst.n, burst.job).await?;
    let cpu_before = redis_cpu(target).await?;
    let start = Instant::now();
    let concurrency = burst.concurrency.to_string();
    let mut worker_args = vec!["--burst", "--concurrency", &concurrency, "bench"];
    worker_args.extend_from_slice(burst.extra);
    let mut children = (0..burst.workers)
        .map(|_| spawn_worker(args, target, &worker_args))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut peaks = Peaks::default();
    for child in &mut children {
        let child_peaks = wait_child(child, Duration::from_secs(600)).await?;
        peaks.worker_kib = peaks.worker_kib.max(child_peaks.worker_kib);
        peaks.horse_kib = peaks.horse_kib.max(child_peaks.horse_kib);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_after = redis_cpu(target).await?;
    let done = rqrs::FinishedJobRegistry::new(&conn, "bench")
        .count()
        .await?;
    ensure!(
        done == ids.len(),
        "only {done} of {} jobs finished",
        ids.len()
    );
    Ok(Processed {
        rate: burst.n as f64 / elapsed,
        peak_rss_kib: peaks.worker_kib,
        horse_peak_rss_kib: peaks.horse_kib,
        redis_cpu_us: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| (after - before) * 1e6 / burst.n as f64),
    })
}

/// Redis's CPU time so far (user and system, seconds); `None` on SQLite.
async fn redis_cpu(target: &mut Target) -> anyhow::Result<Option<f64>> {
    let Some(raw) = target.redis() else {
        return Ok(None);
    };
    let info: String = redis::cmd("INFO").arg("cpu").query_async(raw).await?;
    Ok(Some(
        info.lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                matches!(name, "used_cpu_user" | "used_cpu_sys")
                    .then(|| value.trim().parse::<f64>().ok())?
            })
            .sum(),
    ))
}

/// Milliseconds from spawning a burst worker on an empty queue to its exit.
async fn startup(args: &Args, target: &mut Target) -> anyhow::Result<f64> {
    // An existing store, as a worker finds it in production (a new SQLite file would time the
    // making of its tables too).
    target.fresh().await?;
    let start = Instant::now();
    let mut child = spawn_worker(args, target, &["--burst", "bench"])?;
    wait_child(&mut child, Duration::from_secs(30)).await?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

async fn wait_registered(conn: &Connection) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !rqrs::Worker::all(conn).await?.is_empty() {
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

/// The CPU time a process has used (user and system), from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...: utime and stime are fields 14 and 15, 12 and 13 after the comm.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports them in clock ticks of 1/100 s (USER_HZ).
    Some(Duration::from_millis(ticks * 10))
}

/// How long an idle worker's CPU is sampled for.
const IDLE_SAMPLE: Duration = Duration::from_secs(10);

/// Enqueue-to-start and enqueue-to-end latency with one idle worker in another process, jobs
/// 5 ms apart (as the Python baseline measures it, from the job's timestamps); plus the idle
/// worker's RSS and its CPU over [`IDLE_SAMPLE`].
async fn latency(args: &Args, target: &mut Target, n: usize) -> anyhow::Result<Value> {
    let conn = target.fresh().await?;
    let conn = &conn;
    let mut child = spawn_worker(args, target, &["--concurrency", "8", "lat"])?;
    let outcome = async {
        wait_registered(conn).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_rss = proc_kib(child.id(), "VmRSS:").unwrap_or(0);
        let before = cpu_time(child.id()).context("reading the worker's CPU time")?;
        tokio::time::sleep(IDLE_SAMPLE).await;
        let after = cpu_time(child.id()).context("reading the worker's CPU time")?;
        let idle_cpu_percent =
            (after - before).as_secs_f64() * 100.0 / IDLE_SAMPLE.as_secs_f64();
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
            "idle_worker_cpu_percent": idle_cpu_percent,
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
async fn commands(args: &Args, target: &mut Target, n: usize) -> anyhow::Result<Value> {
    let conn = target.fresh().await?;
    let queue = Queue::new(&conn, "bench");
    queue.enqueue("fixtures.noop", ()).send().await?;
    let conn = target.fresh().await?;
    let queue = Queue::new(&conn, "bench");
    let raw = target
        .redis()
        .context("commands are counted on Redis only")?;
    reset_stats(raw).await?;
    for _ in 0..n {
        queue.enqueue("fixtures.noop", ()).send().await?;
    }
    let enqueue = total_commands(raw).await? as f64 / n as f64;

    target.fresh().await?;
    let raw = target
        .redis()
        .context("commands are counted on Redis only")?;
    reset_stats(raw).await?;
    let mut child = spawn_worker(args, target, &["--burst", "bench"])?;
    wait_child(&mut child, Duration::from_secs(60)).await?;
    let raw = target
        .redis()
        .context("commands are counted on Redis only")?;
    let fixed = total_commands(raw).await?;

    let mut per_concurrency = serde_json::Map::new();
    for concurrency in [1, 64] {
        let conn = target.fresh().await?;
        fill(&conn, n).await?;
        let raw = target
            .redis()
            .context("commands are counted on Redis only")?;
        reset_stats(raw).await?;
        let mut child = spawn_worker(
            args,
            target,
            &[
                "--burst",
                "--concurrency",
                &concurrency.to_string(),
                "bench",
            ],
        )?;
        wait_child(&mut child, Duration::from_secs(120)).await?;
        let raw = target
            .redis()
            .context("commands are counted on Redis only")?;
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

/// The store's bytes per queued job, then per finished job (its hash, result and registry
/// entry, kept for the default result_ttl): Redis's `used_memory`, or the database file (and
/// its write-ahead log) on SQLite.
#[expect(clippy::cast_precision_loss, reason = "job counts")]
async fn memory_per_job(args: &Args, target: &mut Target, n: usize) -> anyhow::Result<(f64, f64)> {
    let conn = target.fresh().await?;
    let before = stored_bytes(target).await?;
    fill(&conn, n).await?;
    let queued = stored_bytes(target).await?;
    let mut child = spawn_worker(args, target, &["--burst", "--concurrency", "64", "bench"])?;
    wait_child(&mut child, Duration::from_secs(600)).await?;
    let finished = stored_bytes(target).await?;
    Ok(((queued - before) / n as f64, (finished - before) / n as f64))
}

/// Latency while one worker (concurrency 64) is busy: `n` jobs arriving steadily at `rate`
/// jobs/s (each millisecond, one enqueue call with the jobs then due), enqueue to start.
#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "job counts and rates"
)]
async fn latency_under_load(
    args: &Args,
    target: &mut Target,
    rate: f64,
    n: usize,
) -> anyhow::Result<Value> {
    let conn = target.fresh().await?;
    let conn = &conn;
    let mut child = spawn_worker(args, target, &["--concurrency", "64", "load"])?;
    let outcome = async {
        wait_registered(conn).await?;
        let queue = Queue::new(conn, "load");
        let mut ids = Vec::with_capacity(n);
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        while ids.len() < n {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * rate) as usize).min(n);
            if due > ids.len() {
                let jobs = queue
                    .enqueue_many((ids.len()..due).map(|_| queue.enqueue("fixtures.noop", ())))
                    .await?;
                ids.extend(jobs.into_iter().map(|job| job.id().clone()));
            }
        }
        let offered = n as f64 / start.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(60);
        while rqrs::FinishedJobRegistry::new(conn, "load").count().await? < n {
            ensure!(Instant::now() < deadline, "the jobs did not finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut to_start = Vec::with_capacity(n);
        for chunk in ids.chunks(1000) {
            for job in rqrs::Job::fetch_many(conn, chunk)
                .await?
                .into_iter()
                .flatten()
            {
                if let (Some(enqueued), Some(started)) = (job.enqueued_at(), job.started_at()) {
                    to_start
                        .push((started - enqueued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
        }
        Ok(json!({
            "n": n, "target_rate": rate, "offered_rate": offered,
            "start_p50_ms": percentile(&mut to_start, 0.5),
            "start_p99_ms": percentile(&mut to_start, 0.99),
        }))
    }
    .await;
    stop(&mut child)?;
    outcome
}

/// Runs a burst worker at concurrency 64 on `bench` until it has taken `jobs` jobs.
async fn run_c64(args: &Args, target: &Target, jobs: usize, limit: Duration) -> anyhow::Result<()> {
    let max = jobs.to_string();
    let worker_args = [
        "--burst",
        "--concurrency",
        "64",
        "--max-jobs",
        &max,
        "bench",
    ];
    let mut child = spawn_worker(args, target, &worker_args)?;
    wait_child(&mut child, limit).await?;
    Ok(())
}

/// Throughput with a big backlog, on Redis: `n` jobs are finished first (`n` in the finished
/// registry), `n` more wait on the queue, then one worker at concurrency 64 takes 50,000 (at
/// scale 1) of them. Compare with `worker_c64`, the same run on an empty store.
async fn backlog(args: &Args, target: &mut Target, n: usize) -> anyhow::Result<Value> {
    if target.redis().is_none() {
        return Ok(json!({"note": "measured on Redis only"}));
    }
    let conn = target.fresh().await?;
    fill(&conn, n).await?;
    run_c64(args, target, n, Duration::from_secs(3600)).await?;
    fill(&conn, n).await?;
    let taken = scaled(args, 50_000).min(n);
    let queue = Queue::new(&conn, "bench");
    let waiting = queue.count().await?;
    let finished = rqrs::FinishedJobRegistry::new(&conn, "bench")
        .count()
        .await?;
    let bytes = stored_bytes(target).await?;
    let start = Instant::now();
    run_c64(args, target, taken, Duration::from_secs(600)).await?;
    #[expect(clippy::cast_precision_loss, reason = "job counts")]
    let rate = taken as f64 / start.elapsed().as_secs_f64();
    Ok(
        json!({"waiting": waiting, "finished": finished, "jobs": taken, "worker_c64": rate,
              "redis_used_memory": bytes}),
    )
}

async fn stored_bytes(target: &mut Target) -> anyhow::Result<f64> {
    match target {
        Target::Redis { raw, .. } => {
            let info: String = redis::cmd("INFO").arg("memory").query_async(raw).await?;
            Ok(info
                .lines()
                .find_map(|line| line.strip_prefix("used_memory:")?.trim().parse().ok())
                .unwrap_or(0.0))
        }
        Target::Sqlite { .. } => {
            let mut bytes = 0;
            if let Some(path) = target.file() {
                for suffix in ["", "-wal"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    bytes += std::fs::metadata(&file).map_or(0, |meta| meta.len());
                }
            }
            #[expect(clippy::cast_precision_loss, reason = "file sizes")]
            Ok(bytes as f64)
        }
    }
}

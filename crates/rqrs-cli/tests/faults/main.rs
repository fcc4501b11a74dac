//! The fault suite: jobs must survive killed workers, a restarted Redis, a Sentinel failover,
//! several workers at once, a mixed fleet of Python RQ 2.12, RQ 3.0 and rqrs workers, malformed
//! job hashes and bad rows of a SQLite database. The
//! scenarios that are not about Redis run on both backends (`name::redis`, `name::sqlite`).
//! Each scenario prints one summary line (lost, duplicated and stuck jobs, time to recover) and
//! asserts that nothing is lost or stuck; a job runs twice only when its run was cut by the
//! fault (at-least-once), and those runs are counted.
//!
//! The scale comes from the environment, so that CI runs this binary small (well under two
//! minutes) and `scripts/fault-suite.sh` runs the same binary large:
//!
//! | variable | scenario | default |
//! |---|---|---|
//! | `RQRS_FAULT_JOBS` | jobs of the kill, cold-stop and restart scenarios | 300 |
//! | `RQRS_FAULT_KILLS` | workers killed (SIGKILL) | 3 |
//! | `RQRS_FAULT_COLD_STOPS` | workers stopped cold (SIGTERM twice) | 2 |
//! | `RQRS_FAULT_WORKERS` | worker processes of the kill, cold-stop and restart scenarios | 3 |
//! | `RQRS_FAULT_RESTARTS` | Redis kills and restarts | 2 |
//! | `RQRS_FAULT_REDIS_DOWN_MS` | how long Redis stays down at every second restart | 1500 |
//! | `RQRS_FAULT_FAILOVERS` | Sentinel failovers (the master killed) | 1 |
//! | `RQRS_FAULT_DUP_JOBS` | jobs of the several-workers scenario | 2000 |
//! | `RQRS_FAULT_DUP_WORKERS` | its worker processes | 4 |
//! | `RQRS_FAULT_FUZZ_CASES` | fuzzed job hashes | 256 |
//! | `RQRS_FAULT_MIXED_JOBS` | jobs of the mixed fleet (rq 2.12, rq 3.0 and rqrs workers) | 240 |
//! | `RQRS_FAULT_SEED` | seed of the random choices and of proptest | random (fixed for proptest), printed |
//! | `RQRS_FAULT_TIMEOUT` | seconds that bound a hang of one scenario | 300 |
//! | `RQRS_FAULT_REPORT` | a file to append one tab-separated line per scenario to | none |
//! | `RQRS_FAULT_LOG_DIR` | a directory to keep the workers' logs in | a temporary one |
//!
//! Every job of the kill, restart and several-workers scenarios is `fixtures.append(path, line,
//! seconds)`: a run appends the job's own line to a file, so the lines count the runs of each
//! job.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod bad_rows;
mod duplicates;
#[path = "../common/example_programs.rs"]
mod example_programs;
mod failover;
mod fuzz;
mod kills;
mod mixed_fleet;
mod redis_restart;

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use redis::aio::ConnectionManager;
use rqrs::{
    Connection, FailedJobRegistry, Job, JobId, JobStatus, Queue, Retry, StartedJobRegistry,
};
use tokio::process::{Child, Command};

/// Defines the scenario `$name`, taking the scenario's `Store`, once per backend: `name::redis`
/// and `name::sqlite`, as the behaviour suite's `on_every_backend!` does.
macro_rules! on_every_backend {
    ($(#[doc = $doc:literal])* async fn $name:ident($store:ident: Store) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn scenario($store: rqrs_test::Store) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                scenario(rqrs_test::Store::redis()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                scenario(rqrs_test::Store::sqlite()).await;
            }
        }
    };
}
pub(crate) use on_every_backend;

/// The queue every scenario works.
const QUEUE: &str = "faults";

/// Reads a scale knob from the environment.
fn knob(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The seed of a scenario's random choices: `RQRS_FAULT_SEED`, or a fresh one (printed in the
/// summary, so that a failure can be replayed).
fn seed() -> u64 {
    match std::env::var("RQRS_FAULT_SEED") {
        Ok(value) => value.trim().parse().unwrap(),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            u64::try_from(nanos % u128::from(u64::MAX)).unwrap()
        }
    }
}

/// The seed of the fuzzing: `RQRS_FAULT_SEED`, or a fixed one, so that CI explores the same
/// inputs on every run (`scripts/fault-suite.sh` draws a fresh seed).
fn fuzz_seed() -> u64 {
    match std::env::var("RQRS_FAULT_SEED") {
        Ok(value) => value.trim().parse().unwrap(),
        Err(_) => 0x5eed_f022,
    }
}

/// Bounds a hang of one scenario; never a delay that a scenario relies on.
fn hang() -> Duration {
    Duration::from_secs(knob("RQRS_FAULT_TIMEOUT", 300) as u64)
}

/// A small deterministic generator (splitmix64) for the scenarios' random choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

/// One scenario's outcome: printed as one line on the terminal (even while cargo captures the
/// tests' output) and appended to `$RQRS_FAULT_REPORT` for `scripts/fault-suite.sh`.
struct Summary {
    scenario: String,
    /// Jobs, or fuzzed hashes.
    jobs: usize,
    /// The faults injected, in words ("5 kills", "3 restarts").
    faults: String,
    lost: usize,
    /// Jobs that ran more than once.
    duplicated: usize,
    stuck: usize,
    /// The longest time to recover from one fault, in words.
    recovery: String,
    elapsed: Duration,
    notes: String,
}

impl Summary {
    fn print(&self) {
        let line = format!(
            "faults: {}: jobs={} faults={} lost={} duplicated={} stuck={} recovery={} elapsed={:.1}s; {}\n",
            self.scenario,
            self.jobs,
            self.faults,
            self.lost,
            self.duplicated,
            self.stuck,
            self.recovery,
            self.elapsed.as_secs_f64(),
            self.notes
        );
        // Straight to the process's stderr: the test harness captures only print! and eprint!.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        if let Ok(path) = std::env::var("RQRS_FAULT_REPORT") {
            let row = format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}s\t{}\n",
                self.scenario,
                self.jobs,
                self.faults,
                self.lost,
                self.duplicated,
                self.stuck,
                self.recovery,
                self.elapsed.as_secs_f64(),
                self.notes.replace('\t', " ")
            );
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|error| panic!("cannot write the report {path}: {error}"));
            file.write_all(row.as_bytes()).unwrap();
        }
    }
}

/// Formats a duration for a summary.
fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// The `worker` example (the fixture functions).
fn worker_example() -> PathBuf {
    example_programs::example("worker")
}

/// Where the workers of a scenario write their logs: under `$RQRS_FAULT_LOG_DIR` (kept), or
/// a temporary directory (removed with the value).
struct Logs {
    dir: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl Logs {
    fn new(scenario: &str) -> Self {
        match std::env::var_os("RQRS_FAULT_LOG_DIR") {
            Some(root) => {
                let dir = Path::new(&root).join(scenario);
                std::fs::create_dir_all(&dir).unwrap();
                Logs {
                    dir,
                    _temporary: None,
                }
            }
            None => {
                let temporary = tempfile::tempdir().unwrap();
                Logs {
                    dir: temporary.path().to_owned(),
                    _temporary: Some(temporary),
                }
            }
        }
    }

    fn file(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap()
    }
}

/// How a worker process is started.
#[derive(Clone)]
struct WorkerOptions {
    url: String,
    concurrency: usize,
    /// `--heartbeat-interval`, seconds.
    heartbeat: Option<u64>,
    burst: bool,
}

/// A `worker` example process; killed if the test ends first.
struct WorkerProcess {
    name: String,
    child: Child,
}

impl WorkerProcess {
    fn start(options: &WorkerOptions, name: String, logs: &Logs) -> Self {
        let log = logs.file(&name);
        let mut command = Command::new(worker_example());
        command
            .arg("--url")
            .arg(&options.url)
            .args(["--name", &name])
            .args(["--concurrency", &options.concurrency.to_string()]);
        if let Some(seconds) = options.heartbeat {
            command.args(["--heartbeat-interval", &seconds.to_string()]);
        }
        if options.burst {
            command.arg("--burst");
        }
        let child = command
            .arg(QUEUE)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the worker example starts");
        WorkerProcess { name, child }
    }

    /// Runs a burst worker (concurrency 8) named `name` on `url` to its end; it must exit 0.
    async fn burst(url: String, name: &str, logs: &Logs) {
        let options = WorkerOptions {
            url,
            concurrency: 8,
            heartbeat: None,
            burst: true,
        };
        let mut worker = WorkerProcess::start(&options, name.to_owned(), logs);
        let status = tokio::time::timeout(hang(), worker.child.wait())
            .await
            .expect("the burst worker process ends")
            .unwrap();
        assert!(status.success(), "the worker process exited {status}");
    }

    /// SIGKILL, and wait for the process to be gone.
    async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// Panics if the process has exited.
    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("worker {} exited {when} ({status})", self.name);
        }
    }

    /// Sends `signal` to the process.
    fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("the worker still runs");
        kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal)
            .unwrap_or_else(|error| panic!("{signal} to worker {}: {error}", self.name));
    }

    /// Waits for the process to exit, which must be a success.
    async fn wait_success(mut self) {
        let status = tokio::time::timeout(hang(), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("worker {} did not exit", self.name))
            .unwrap();
        assert!(status.success(), "worker {} exited {status}", self.name);
    }

    /// A warm stop (SIGTERM), then waits for the exit, which must be a success.
    async fn stop(self) {
        self.signal(Signal::SIGTERM);
        self.wait_success().await;
    }
}

/// The start of a scenario whose jobs append their line to a file, with worker processes of
/// `--concurrency 8` and the default heartbeats (every 2 s, a 10 s deadline).
struct Appends {
    _dir: tempfile::TempDir,
    /// The file the runs append to.
    path: PathBuf,
    logs: Logs,
    /// Just before the enqueue (the worker example is built before).
    started: Instant,
    ids: Vec<JobId>,
    options: WorkerOptions,
}

impl Appends {
    /// Enqueues `jobs` appends of 50 ms through `conn`, for workers that will connect to `url`;
    /// the workers' logs go under `scenario`.
    async fn enqueue(conn: &Connection, url: String, scenario: &str, jobs: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.txt");
        let logs = Logs::new(scenario);
        // Built (once per binary) before the clock starts.
        worker_example();
        let started = Instant::now();
        let ids = enqueue_appends(conn, &path, jobs, 0.05).await;
        let options = WorkerOptions {
            url,
            concurrency: 8,
            heartbeat: None,
            burst: false,
        };
        Appends {
            _dir: dir,
            path,
            logs,
            started,
            ids,
            options,
        }
    }

    /// Starts `workers` worker processes, worker `i` named `name(i)`.
    fn start_workers(&self, workers: usize, name: impl Fn(usize) -> String) -> Vec<WorkerProcess> {
        (0..workers)
            .map(|i| WorkerProcess::start(&self.options, name(i), &self.logs))
            .collect()
    }

    /// Waits until the runs reach fault `n`'s share of the work: the faults of a scenario are
    /// spread over the work by progress, whatever the speed of the machine.
    async fn progress_to(&self, n: usize, faults: usize, what: &str) {
        self.progress_to_observing(n, faults, what, async || {})
            .await;
    }

    /// As [`progress_to`](Self::progress_to), running `each` every 100 ms or so (to time the
    /// recoveries of earlier faults while the work goes on), as [`settle`] does.
    async fn progress_to_observing<F>(&self, n: usize, faults: usize, what: &str, mut each: F)
    where
        F: AsyncFnMut(),
    {
        let target = self.ids.len() * n / (faults + 1);
        let deadline = Instant::now() + hang();
        let mut looked = Instant::now();
        while lines(&self.path) < target {
            assert!(
                Instant::now() < deadline,
                "no progress to {target} runs before {what} {n}"
            );
            if looked.elapsed() >= Duration::from_millis(100) {
                each().await;
                looked = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Enqueues `count` `fixtures.append` jobs, job `i` appending the line `i` to `path` after
/// `seconds`, each with `Retry::new(5)` (so that an abandoned run comes back by itself where
/// recovery retries) and a result kept for a day (the finished registry is the tally).
async fn enqueue_appends(conn: &Connection, path: &Path, count: usize, seconds: f64) -> Vec<JobId> {
    let queue = Queue::new(conn, QUEUE);
    let path = path.to_str().unwrap();
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(1000) {
        let end = (start + 1000).min(count);
        let jobs = queue
            .enqueue_many((start..end).map(|i| {
                queue
                    .enqueue("fixtures.append", (path, i.to_string(), seconds))
                    .retry(Retry::new(5))
                    .result_ttl(std::time::Duration::from_secs(86_400))
            }))
            .await
            .unwrap();
        ids.extend(jobs.iter().map(|job| job.id().clone()));
    }
    ids
}

/// How many times each job ran, read from the lines of the append file (index → runs).
fn runs(path: &Path, jobs: usize) -> Vec<usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs = vec![0; jobs];
    for line in text.lines() {
        let index: usize = line
            .parse()
            .unwrap_or_else(|_| panic!("a line that no job writes: {line:?}"));
        runs[index] += 1;
    }
    runs
}

/// How many lines the append file holds (runs so far).
fn lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

/// A plain client that reconnects by itself, to look at the keys directly.
async fn inspector(url: &str) -> ConnectionManager {
    redis::Client::open(url)
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap()
}

/// Runs `query` until Redis answers (it may be restarting), within the hang bound.
async fn retry_redis<T, F, Fut>(what: &str, mut query: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let deadline = Instant::now() + hang();
    loop {
        match query().await {
            Ok(value) => return value,
            Err(error) => {
                assert!(Instant::now() < deadline, "{what}: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The jobs in the started registry that `worker` runs (the job's `worker_name` is the worker
/// of its latest run).
async fn runs_of(conn: &Connection, worker: &str) -> Vec<JobId> {
    let ids = StartedJobRegistry::new(conn, QUEUE)
        .job_ids()
        .await
        .unwrap();
    let mut mine = Vec::new();
    for chunk in ids.chunks(500) {
        for job in Job::fetch_many(conn, chunk)
            .await
            .unwrap()
            .into_iter()
            .flatten()
        {
            if job.worker_name() == Some(worker) {
                mine.push(job.id().clone());
            }
        }
    }
    mine
}

/// Whether every job of `ids` has finished.
async fn all_done(conn: &Connection, ids: &[JobId]) -> bool {
    let jobs = Job::fetch_many(conn, ids).await.unwrap();
    jobs.iter().all(|job| {
        job.as_ref()
            .is_some_and(|job| job.status() == JobStatus::Finished)
    })
}

/// Where the jobs are once the scenario is over.
#[derive(Debug, Default)]
struct Census {
    finished: usize,
    /// Not finished but still somewhere (queued, started, scheduled, failed): stuck.
    stuck: Vec<(JobId, String)>,
    /// Gone: no job hash.
    lost: Vec<JobId>,
}

async fn census(conn: &Connection, ids: &[JobId]) -> Census {
    let mut census = Census::default();
    for chunk in ids.chunks(500) {
        let jobs = Job::fetch_many(conn, chunk).await.unwrap();
        for (id, job) in chunk.iter().zip(jobs) {
            match job {
                None => census.lost.push(id.clone()),
                Some(job) if job.status() == JobStatus::Finished => census.finished += 1,
                Some(job) => census
                    .stuck
                    .push((id.clone(), job.status().as_str().to_owned())),
            }
        }
    }
    census
}

/// What the suite had to do by hand to bring every job to an end.
#[derive(Debug, Default)]
struct Settled {
    /// Abandoned runs that recovery failed instead of retrying, requeued by the suite.
    requeued_abandoned: BTreeSet<JobId>,
    /// Jobs that failed for another reason (a bug: reported, never requeued).
    failed_otherwise: Vec<(JobId, String)>,
}

/// Waits until every job of `ids` is finished, within the hang bound. Abandoned runs come back
/// by themselves where recovery retries them; where it fails them instead (`AbandonedJobError`
/// in the failed registry), the suite requeues them and counts them, so that the rest of the
/// scenario still measures lost and duplicated jobs. `each` runs at every look (to sample
/// recovery times).
async fn settle<F>(conn: &Connection, ids: &[JobId], mut each: F) -> Settled
where
    F: AsyncFnMut(),
{
    let finished = rqrs::FinishedJobRegistry::new(conn, QUEUE);
    let failed = FailedJobRegistry::new(conn, QUEUE);
    let mut settled = Settled::default();
    let mut reasons: HashMap<JobId, String> = HashMap::new();
    let deadline = Instant::now() + hang();
    loop {
        each().await;
        let done = finished.count().await;
        if let Ok(done) = done
            && done >= ids.len()
        {
            return settled;
        }
        if let Ok(failures) = failed.job_ids().await {
            for id in failures {
                if reasons.contains_key(&id) {
                    continue;
                }
                let Ok(job) = Job::fetch(conn, &id).await else {
                    continue;
                };
                let reason = job.exc_info().await.ok().flatten().unwrap_or_default();
                if reason.contains("AbandonedJobError") {
                    if failed.requeue(&id).await.is_ok() {
                        settled.requeued_abandoned.insert(id);
                    }
                } else {
                    reasons.insert(id.clone(), reason.clone());
                    settled.failed_otherwise.push((id, reason));
                }
            }
        }
        if Instant::now() >= deadline {
            return settled;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The checks that end every scenario whose jobs all must finish: none failed for another
/// reason than an abandoned run, none gone, none that never ran, none stuck.
fn all_finished(settled: &Settled, census: &Census, never: &[JobId], jobs: usize) {
    assert!(
        settled.failed_otherwise.is_empty(),
        "jobs failed for another reason than an abandoned run: {:?}",
        settled.failed_otherwise
    );
    assert_eq!(census.lost, Vec::<JobId>::new(), "jobs gone (no job hash)");
    assert_eq!(never, &[] as &[JobId], "jobs that never ran");
    assert_eq!(census.stuck, Vec::new(), "jobs not finished");
    assert_eq!(census.finished, jobs);
}

/// The runs counted per job: lost (finished but never ran, or gone), and the jobs that ran more
/// than once.
fn duplicates(runs: &[usize], ids: &[JobId]) -> (Vec<JobId>, Vec<JobId>) {
    let mut never = Vec::new();
    let mut twice = Vec::new();
    for (index, count) in runs.iter().enumerate() {
        match count {
            0 => never.push(ids[index].clone()),
            1 => {}
            _ => twice.push(ids[index].clone()),
        }
    }
    (never, twice)
}

//! Scenario m: a mixed fleet on one queue of one Redis: a Python RQ 2.12 worker, a Python RQ
//! 3.0 worker and an rqrs worker, each SIGKILLed in turn and started again. Half the jobs share
//! RQ 3.0's rate limit (concurrency 3), which RQ 2.12 knows nothing of. Nothing may be lost or
//! stuck; a job runs twice only if a kill cut its run; never more rate-limited jobs at once
//! than the limit, measured from the jobs' own start and end times.

use std::time::Instant;

use rqrs::{JobId, Queue, RateLimit, Retry};
use rqrs_test::python::Rq;

use crate::{
    Logs, QUEUE, Summary, WorkerOptions, WorkerProcess, all_done, all_finished, census, duplicates,
    hang, knob, lines, runs, runs_of, secs, settle,
};

/// The fixture Python's workers import: `fixtures.append(path, line, seconds)`, as rqrs's.
const PYTHON_FIXTURES: &str = r"
import time

def append(path, line, seconds=None):
    if seconds:
        time.sleep(float(seconds))
    with open(path, 'a') as out:
        out.write(line + '\n')
";

/// The limit half the jobs share.
const LIMIT: u32 = 3;

/// A worker of the fleet: rqrs's `worker` example, or Python's `rq worker` (a SimpleWorker
/// with the JSON serializer) of one release.
enum Member {
    Rqrs(WorkerProcess),
    Python(tokio::process::Child),
}

fn start(kind: usize, name: &str, url: &str, modules: &std::path::Path, logs: &Logs) -> Member {
    match kind {
        0 | 1 => {
            let rq = if kind == 0 { Rq::V2_12 } else { Rq::V3_0 };
            let log = logs.file(name);
            let child = tokio::process::Command::from(rq.cli())
                .args(["worker", "--url", url, "--name", name])
                .args(["--worker-class", "rq.worker.SimpleWorker"])
                .args(["--serializer", "rq.serializers.JSONSerializer", QUEUE])
                .env("PYTHONPATH", modules)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("rq worker starts");
            Member::Python(child)
        }
        _ => {
            let options = WorkerOptions {
                url: url.to_owned(),
                concurrency: 4,
                heartbeat: None,
                burst: false,
            };
            Member::Rqrs(WorkerProcess::start(&options, name.to_owned(), logs))
        }
    }
}

impl Member {
    async fn kill(&mut self) {
        match self {
            Member::Rqrs(worker) => worker.kill().await,
            Member::Python(child) => {
                child.start_kill().unwrap();
                child.wait().await.unwrap();
            }
        }
    }

    async fn stop(self) {
        match self {
            Member::Rqrs(worker) => worker.stop().await,
            Member::Python(mut child) => {
                child.start_kill().unwrap();
                child.wait().await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fleet_loses_no_job_and_keeps_the_rate_limit() {
    let jobs = knob("RQRS_FAULT_MIXED_JOBS", 240);
    let server = rqrs_test::RedisServer::start();
    let url = server.url();
    let conn = rqrs::connect(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.txt");
    std::fs::write(dir.path().join("fixtures.py"), PYTHON_FIXTURES).unwrap();
    let logs = Logs::new("mixed-fleet");
    // Made before the clock starts.
    Rq::V2_12.python();
    Rq::V3_0.python();
    crate::worker_example();

    let started = Instant::now();
    let queue = Queue::new(&conn, QUEUE);
    let text = path.to_str().unwrap();
    let all = queue
        .enqueue_many((0..jobs).map(|i| {
            let job = queue
                .enqueue("fixtures.append", (text, i.to_string(), 0.05))
                .retry(Retry::new(5))
                // A Python SimpleWorker's run counts as abandoned 60 s past the job's timeout:
                // a short one keeps the scenario short.
                .timeout(std::time::Duration::from_secs(5))
                .result_ttl(std::time::Duration::from_secs(86_400));
            if i % 2 == 0 {
                job.rate_limit(RateLimit::new("fleet", LIMIT))
            } else {
                job
            }
        }))
        .await
        .unwrap();
    let ids: Vec<JobId> = all.iter().map(|job| job.id().clone()).collect();
    let limited: Vec<JobId> = ids.iter().step_by(2).cloned().collect();

    let names = ["py-2.12", "py-3.0", "rqrs"];
    let mut fleet: Vec<Member> = (0..3)
        .map(|kind| start(kind, &format!("{}-0", names[kind]), &url, dir.path(), &logs))
        .collect();
    let mut cut: Vec<JobId> = Vec::new();
    let mut killed = Vec::new();
    for kind in 0..3 {
        let target = jobs * (kind + 1) / 4;
        let deadline = Instant::now() + hang();
        while lines(&path) < target {
            assert!(Instant::now() < deadline, "no progress to {target} runs");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        fleet[kind].kill().await;
        let name = format!("{}-0", names[kind]);
        let orphans = runs_of(&conn, &name).await;
        killed.push(format!("{name}: {} runs cut", orphans.len()));
        cut.extend(orphans);
        fleet[kind] = start(kind, &format!("{}-1", names[kind]), &url, dir.path(), &logs);
    }

    let settled = settle(&conn, &ids, async || {}).await;
    let elapsed = started.elapsed();
    assert!(all_done(&conn, &ids).await || !settled.failed_otherwise.is_empty());
    for member in fleet {
        member.stop().await;
    }

    let census = census(&conn, &ids).await;
    let runs = runs(&path, jobs);
    let (never, twice) = duplicates(&runs, &ids);
    let unexpected: Vec<&JobId> = twice.iter().filter(|id| !cut.contains(id)).collect();
    let most = rqrs_test::most_at_once(&conn, &limited).await;
    Summary {
        scenario: "mixed fleet (rq 2.12 + rq 3.0 + rqrs) on redis".to_owned(),
        jobs,
        faults: format!("a SIGKILL of each worker in turn ({})", killed.join(", ")),
        lost: census.lost.len() + never.len(),
        duplicated: twice.len(),
        stuck: census.stuck.len(),
        recovery: secs(elapsed),
        elapsed,
        notes: format!(
            "half the jobs under a rate limit of {LIMIT}: at most {most} ran at once; \
             duplicates all from cut runs: {}; abandoned runs failed instead of retried \
             (requeued by the suite): {}; recovery = the whole run: RQ's SimpleWorker holds a \
             cut run for the job's timeout (5 s) + 60 s",
            unexpected.is_empty(),
            settled.requeued_abandoned.len()
        ),
    }
    .print();

    all_finished(&settled, &census, &never, jobs);
    assert!(
        unexpected.is_empty(),
        "jobs ran twice though no kill cut their run: {unexpected:?}"
    );
    assert!(
        (1..=LIMIT as usize).contains(&most),
        "{most} rate-limited jobs ran at once, over the limit of {LIMIT}"
    );
}

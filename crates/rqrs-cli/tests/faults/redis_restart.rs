//! Scenario b: Redis (append-only file, fsync at every write) is SIGKILLed and started again
//! while workers run jobs, once at once and once after a while down, in turn. The workers must
//! ride it out on their own (they may not exit), and every job must end finished. The time to
//! recover is from the moment Redis answers again to the first job finished after it.

use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use rqrs::{Job, JobId};
use rqrs_test::RedisServer;

use crate::{
    Appends, QUEUE, Summary, all_finished, census, duplicates, hang, inspector, knob, retry_redis,
    runs, secs, settle,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_loses_no_job_and_workers_resume() {
    let jobs = knob("RQRS_FAULT_JOBS", 300);
    let restarts = knob("RQRS_FAULT_RESTARTS", 2);
    let workers = knob("RQRS_FAULT_WORKERS", 3).max(1);
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let conn = rqrs::connect(&server.url()).await.unwrap();
    let inspect = inspector(&server.url()).await;
    let appends = Appends::enqueue(&conn, server.url(), "redis-restart", jobs).await;
    let (path, ids) = (&appends.path, &appends.ids);
    let mut pool = appends.start_workers(workers, |i| format!("restart-{i}"));
    let finished_key = format!("rq:finished:{QUEUE}");
    // (time down, time from the restart to the next finished job)
    let mut records: Vec<(Duration, Duration)> = Vec::new();
    for r in 1..=restarts {
        appends.progress_to(r, restarts, "restart").await;
        // In turn: straight back, and down for a while (every worker's calls fail meanwhile).
        let down = if r % 2 == 1 {
            Duration::ZERO
        } else {
            Duration::from_millis(knob("RQRS_FAULT_REDIS_DOWN_MS", 1500) as u64)
        };
        tokio::task::block_in_place(|| {
            server.kill();
            std::thread::sleep(down);
            server.start_again();
        });
        let back = Instant::now();
        let before: usize = retry_redis("counting finished jobs after the restart", || {
            let mut inspect = inspect.clone();
            let key = finished_key.clone();
            async move { inspect.zcard(key).await }
        })
        .await;
        let deadline = back + hang();
        loop {
            let now: usize = retry_redis("counting finished jobs", || {
                let mut inspect = inspect.clone();
                let key = finished_key.clone();
                async move { inspect.zcard(key).await }
            })
            .await;
            if now > before || now >= jobs {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no job finished after restart {r}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        records.push((down, back.elapsed()));
        for worker in &mut pool {
            worker.assert_running(&format!("after Redis restart {r}"));
        }
    }

    let settled = settle(&conn, ids, async || {}).await;
    let elapsed = appends.started.elapsed();
    for worker in &mut pool {
        worker.assert_running("after the work");
    }
    for worker in pool {
        worker.stop().await;
    }

    let census = census(&conn, ids).await;
    let runs = runs(path, jobs);
    let (never, twice) = duplicates(&runs, ids);
    // A run recovered as abandoned while Redis was away (its reply lost, or its heartbeats
    // missed for a whole deadline) may have run twice; nothing else may.
    let mut abandoned = Vec::new();
    for id in ids {
        if abandoned_runs(&conn, id).await > 0 || settled.requeued_abandoned.contains(id) {
            abandoned.push(id.clone());
        }
    }
    let unexpected: Vec<&JobId> = twice.iter().filter(|id| !abandoned.contains(id)).collect();
    // An abandoned run that never wrote its line never ran: its dequeue's reply was lost with
    // the connection, so no worker held it.
    let never_ran = abandoned
        .iter()
        .filter(|id| {
            ids.iter()
                .position(|other| other == *id)
                .is_some_and(|index| runs[index] <= 1)
        })
        .count();
    let recovery = records
        .iter()
        .map(|(_, first)| *first)
        .max()
        .unwrap_or_default();
    let lost = census.lost.len() + never.len();
    Summary {
        scenario: "redis restarts".to_owned(),
        jobs,
        faults: format!("{restarts} kill -9 + restart of Redis (AOF always), {workers} workers"),
        lost,
        duplicated: twice.len(),
        stuck: census.stuck.len(),
        recovery: secs(recovery),
        elapsed,
        notes: format!(
            "recovery = Redis back until the next job finished, per restart (down, recovery): \
             {}; runs recovered as abandoned: {} (of which never ran, their dequeue reply \
             lost: {}; requeued by the suite: {}); other failures: {}; workers kept running: \
             yes",
            records
                .iter()
                .map(|(down, first)| format!("({}, {})", secs(*down), secs(*first)))
                .collect::<Vec<_>>()
                .join(" "),
            abandoned.len(),
            never_ran,
            settled.requeued_abandoned.len(),
            settled.failed_otherwise.len()
        ),
    }
    .print();

    all_finished(&settled, &census, &never, jobs);
    assert!(
        unexpected.is_empty(),
        "jobs ran twice though no run of theirs was recovered: {unexpected:?}"
    );
}

/// How many runs of the job were recovered as abandoned (their result says so).
async fn abandoned_runs(conn: &rqrs::Connection, id: &JobId) -> usize {
    let job = Job::fetch(conn, id).await.unwrap();
    job.results()
        .await
        .unwrap()
        .iter()
        .filter(|result| {
            result
                .exc_string()
                .is_some_and(|text| text.contains("AbandonedJobError"))
        })
        .count()
}

//! Scenario c: several worker processes take jobs from one queue at once, with nothing killed.
//! The atomic dequeue hands each job to exactly one of them: every job runs exactly once.

use std::time::Instant;

use rqrs::{JobId, Queue, StartedJobRegistry};

use crate::{
    Logs, QUEUE, Summary, WorkerOptions, WorkerProcess, census, duplicates, enqueue_appends, hang,
    knob, on_every_backend, runs, secs, worker_example,
};

on_every_backend! {
async fn several_workers_run_each_job_exactly_once(store: Store) {
    let jobs = knob("RQRS_FAULT_DUP_JOBS", 2000);
    let workers = knob("RQRS_FAULT_DUP_WORKERS", 4).max(1);
    let conn = store.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.txt");
    let logs = Logs::new(&format!("several-workers-{}", store.backend()));
    let ids = enqueue_appends(&conn, &path, jobs, 0.0).await;

    // Built (once per binary) before the clock starts.
    worker_example();
    let started = Instant::now();
    let options = WorkerOptions {
        url: store.url(),
        concurrency: 8,
        heartbeat: None,
        burst: true,
    };
    let pool: Vec<WorkerProcess> = (0..workers)
        .map(|i| WorkerProcess::start(&options, format!("several-{i}"), &logs))
        .collect();
    for mut worker in pool {
        let status = tokio::time::timeout(hang(), worker.child.wait())
            .await
            .unwrap_or_else(|_| panic!("burst worker {} did not end", worker.name))
            .unwrap();
        assert!(status.success(), "worker {} exited {status}", worker.name);
    }
    let elapsed = started.elapsed();

    let census = census(&conn, &ids).await;
    let runs = runs(&path, jobs);
    let (never, twice) = duplicates(&runs, &ids);
    let left = Queue::new(&conn, QUEUE).count().await.unwrap();
    let running = StartedJobRegistry::new(&conn, QUEUE).count().await.unwrap();
    Summary {
        scenario: format!("several workers on {}", store.backend()),
        jobs,
        faults: format!("none ({workers} burst workers x 8 slots)"),
        lost: census.lost.len() + never.len(),
        duplicated: twice.len(),
        stuck: census.stuck.len() + left + running,
        recovery: "-".to_owned(),
        elapsed,
        notes: format!(
            "{:.0} jobs/s with an append per job ({} of work)",
            jobs as f64 / elapsed.as_secs_f64(),
            secs(elapsed)
        ),
    }
    .print();

    assert_eq!(census.lost, Vec::<JobId>::new(), "jobs gone (no job hash)");
    assert_eq!(never, Vec::<JobId>::new(), "jobs that never ran");
    assert_eq!(twice, Vec::<JobId>::new(), "jobs that ran twice");
    assert_eq!(census.stuck, Vec::new(), "jobs not finished");
    assert_eq!((left, running), (0, 0), "jobs left queued or started");
    assert_eq!(census.finished, jobs);
}
}

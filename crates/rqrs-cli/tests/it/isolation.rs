//! Process isolation end to end: the `worker` example with `--isolation process` runs each job
//! in a work horse (the example's own binary again), killed at the job's timeout, on a stop-job
//! command or above the memory cap; a crash fails only its job.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use rqrs::{Connection, Job, JobId, JobStatus, Queue, WorkerState};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::{HANG, on_every_backend, output, setup, success, worker_example};

/// The `worker` example on the server's `default` queue with `args`, run to its end; it must
/// exit 0.
async fn burst(server: &impl crate::Url, args: &[&str]) {
    let mut command = Command::new(worker_example());
    command
        .arg("--url")
        .arg(server.url())
        .arg("--burst")
        .args(args);
    success(&output(command, "the worker").await, "the worker");
}

async fn fetch(conn: &Connection, id: &JobId) -> Job {
    Job::fetch(conn, id).await.unwrap()
}

async fn exc_info(conn: &Connection, id: &JobId) -> String {
    let job = fetch(conn, id).await;
    assert_eq!(job.status(), JobStatus::Failed, "{id}");
    job.exc_info().await.unwrap().unwrap_or_default()
}

async fn return_value(conn: &Connection, id: &JobId) -> Value {
    let job = fetch(conn, id).await;
    assert_eq!(job.status(), JobStatus::Finished, "{id}");
    job.return_value().await.unwrap().unwrap()
}

on_every_backend! {
async fn async_and_blocking_jobs_end_at_their_timeout_in_both_isolation_modes(server: &Store, conn: &Connection) {
    for isolation in ["in-process", "process"] {
        let queue = Queue::new(conn, "default");
        let mut jobs = Vec::new();
        for function in ["fixtures.sleep", "fixtures.spin"] {
            let job = queue
                .enqueue(function, (30,))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .unwrap();
            jobs.push((function, job));
        }
        burst(&server, &["--concurrency", "2", "--isolation", isolation]).await;
        for (function, job) in jobs {
            let exc = exc_info(conn, job.id()).await;
            assert!(
                exc.contains(
                    "JobTimeoutException: Task exceeded maximum timeout value (1 seconds)"
                ),
                "{isolation} {function}: {exc}"
            );
            let job = fetch(conn, job.id()).await;
            let ran = job.ended_at().unwrap() - job.started_at().unwrap();
            assert!(
                ran < chrono::Duration::seconds(2),
                "{isolation} {function} ran {ran}"
            );
        }
    }
}
}

on_every_backend! {
async fn a_horse_that_aborts_fails_only_its_job_and_the_next_job_runs(server: &Store, conn: &Connection) {
    let queue = Queue::new(conn, "default");
    let aborts = queue.enqueue("fixtures.abort", ()).send().await.unwrap();
    let next = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    burst(&server, &["--isolation", "process"]).await;
    let exc = exc_info(conn, aborts.id()).await;
    assert!(
        exc.starts_with("Work-horse terminated unexpectedly; waitpid returned ")
            && exc.contains("(signal 6)")
            && exc.contains("SIGABRT"),
        "{exc}"
    );
    assert_eq!(return_value(conn, next.id()).await, json!(3));
}
}

on_every_backend! {
async fn a_horse_over_the_memory_cap_is_killed_and_the_next_job_runs(server: &Store, conn: &Connection) {
    let queue = Queue::new(conn, "default");
    let greedy = queue
        .enqueue("fixtures.allocate", (512 << 20,))
        .send()
        .await
        .unwrap();
    let modest = queue
        .enqueue("fixtures.allocate", (1 << 20,))
        .send()
        .await
        .unwrap();
    let cap = (64 << 20).to_string();
    burst(
        &server,
        &["--isolation", "process", "--max-memory-per-job", &cap],
    )
    .await;
    let exc = exc_info(conn, greedy.id()).await;
    assert!(
        exc.starts_with(&format!("killed: memory cap ({cap} bytes)")),
        "{exc}"
    );
    assert_eq!(return_value(conn, modest.id()).await, json!(1 << 20));
}
}

on_every_backend! {
async fn horses_are_reused_for_many_jobs(server: &Store, conn: &Connection) {
    let queue = Queue::new(conn, "default");
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(queue.enqueue("fixtures.pid", ()).send().await.unwrap());
    }
    let worker = Command::new(worker_example())
        .arg("--url")
        .arg(server.url())
        .args(["--burst", "--concurrency", "2", "--isolation", "process"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let worker_pid = worker.id().unwrap();
    let done = tokio::time::timeout(HANG, worker.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    success(&done, "the worker");
    let mut pids = BTreeSet::new();
    for job in &jobs {
        pids.insert(return_value(conn, job.id()).await.as_u64().unwrap());
    }
    assert!(
        !pids.is_empty() && pids.len() <= 2,
        "20 jobs, at most one horse per slot: {pids:?}"
    );
    assert!(
        !pids.contains(&u64::from(worker_pid)),
        "the jobs ran in the worker"
    );
}
}

#[tokio::test]
async fn pythons_stop_job_command_kills_the_horse_of_the_job() {
    let (server, conn) = setup().await;
    let _worker = Command::new(worker_example())
        .arg("--url")
        .arg(server.url())
        .args(["--name", "isolated", "--isolation", "process"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    rqrs_test::wait_for("the worker to be idle", HANG, || async {
        rqrs::Worker::all(&conn)
            .await
            .ok()?
            .into_iter()
            .find(|w| w.name == "isolated" && w.state == WorkerState::Idle)
    })
    .await;
    let queue = Queue::new(&conn, "default");
    let wait_status = |id: JobId, status: JobStatus| {
        let conn = conn.clone();
        async move {
            rqrs_test::wait_for(&format!("{id} to be {status}"), HANG, || async {
                Job::fetch(&conn, &id)
                    .await
                    .ok()
                    .filter(|job| job.status() == status)
            })
            .await
        }
    };
    // With one slot, the pid job and the next job run in the same horse.
    let first = queue.enqueue("fixtures.pid", ()).send().await.unwrap();
    wait_status(first.id().clone(), JobStatus::Finished).await;
    let horse = return_value(&conn, first.id()).await;
    let spinning = queue.enqueue("fixtures.spin", (60,)).send().await.unwrap();
    wait_status(spinning.id().clone(), JobStatus::Started).await;

    let out = crate::python(
        &server,
        r"
from rq.command import send_stop_job_command
send_stop_job_command(redis, sys.argv[1])
print(json.dumps({'sent': True}))
",
        &[spinning.id().as_str()],
    )
    .await;
    assert_eq!(out["sent"], true);
    let stopped = wait_status(spinning.id().clone(), JobStatus::Stopped).await;
    assert_eq!(
        stopped.exc_info().await.unwrap().as_deref(),
        Some("Job stopped by user, work-horse terminated.")
    );
    let proc_dir = format!("/proc/{horse}");
    rqrs_test::wait_for("the horse to be gone", HANG, || async {
        (!std::path::Path::new(&proc_dir).exists()).then_some(())
    })
    .await;
    let after = queue.enqueue("fixtures.pid", ()).send().await.unwrap();
    wait_status(after.id().clone(), JobStatus::Finished).await;
    assert_ne!(return_value(&conn, after.id()).await, horse, "a new horse");
}

#[tokio::test]
async fn a_horse_connects_to_a_tls_server_as_its_worker_does() {
    let server = rqrs_test::TlsRedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let conn = rqrs::connect_tls(&server.url(), server.ca_pem())
        .await
        .unwrap();
    // set_meta saves through the horse's own connection.
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.set_meta", ("by", "horse"))
        .send()
        .await
        .unwrap();
    let mut command = Command::new(worker_example());
    command
        .arg("--url")
        .arg(server.url())
        .arg("--tls-ca-cert")
        .arg(&ca)
        .args(["--burst", "--isolation", "process"]);
    success(&output(command, "the worker").await, "the worker");
    assert_eq!(
        return_value(&conn, job.id()).await,
        json!(job.id().as_str())
    );
    assert_eq!(
        fetch(&conn, job.id()).await.meta().get("by"),
        Some(&json!("horse"))
    );
}

#[tokio::test]
async fn a_horse_runs_a_job_whose_id_predates_rqs_strict_ids() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    // RQ before 2.8 allowed dots in ids; such a job may still be stored.
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (): () = redis::pipe()
        .cmd("RENAME")
        .arg(format!("rq:job:{}", job.id()))
        .arg("rq:job:legacy.id")
        .ignore()
        .cmd("LSET")
        .arg("rq:queue:default")
        .arg(0)
        .arg("legacy.id")
        .ignore()
        .query_async(&mut redis)
        .await
        .unwrap();
    burst(&server, &["--isolation", "process"]).await;
    let status: String = redis::cmd("HGET")
        .arg("rq:job:legacy.id")
        .arg("status")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(status, "finished");
}

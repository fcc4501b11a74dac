//! Scheduled jobs across the languages: Python's `enqueue_in` run by the `worker` example with
//! `--with-scheduler`, a Python scheduler's lock respected, and `rqrs enqueue --schedule-in` /
//! `--schedule-at`.

use chrono::{Local, NaiveDateTime, TimeZone as _};
use rqrs::{Connection, Job, JobId, JobStatus};
use rqrs_test::{RedisServer, wait_for};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::{HANG, output, python, rqrs, rqrs_output, setup, stop, success, worker_example};

/// Starts the `worker` example with the scheduler on `default` (not in burst mode).
fn start_worker_with_scheduler(server: &RedisServer) -> Child {
    Command::new(worker_example())
        .arg("--url")
        .arg(server.url())
        .args(["--with-scheduler", "default"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the worker example starts")
}

/// Runs the `worker` example in burst mode with the scheduler on `default`; it must exit 0.
async fn burst_with_scheduler(server: &RedisServer) {
    let mut command = Command::new(worker_example());
    command
        .arg("--url")
        .arg(server.url())
        .args(["--burst", "--with-scheduler", "default"]);
    let what = "the burst worker with the scheduler";
    success(&output(command, what).await, what);
}

async fn wait_until_finished(conn: &Connection, id: &JobId) {
    wait_for("the scheduled job to finish", HANG, || async {
        let status = Job::fetch(conn, id).await.unwrap().status();
        (status == JobStatus::Finished).then_some(())
    })
    .await;
}

async fn status(conn: &Connection, id: &str) -> JobStatus {
    Job::fetch(conn, &id.parse().unwrap())
        .await
        .unwrap()
        .status()
}

async fn lock_holder(server: &RedisServer) -> Option<String> {
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("GET")
        .arg("rq:scheduler-lock:default")
        .query_async(&mut redis)
        .await
        .unwrap()
}

/// Python's view of a job: status and return value.
const READ_JOB: &str = r"
job = Job.fetch(sys.argv[1], connection=redis, serializer=JSONSerializer)
print(json.dumps({'status': job.get_status().value, 'return_value': job.return_value()}))
";

#[tokio::test]
async fn python_enqueue_in_runs_on_the_worker_example_with_the_scheduler() {
    let (server, conn) = setup().await;
    let enqueued = python(
        &server,
        r"
from datetime import timedelta
job = queue.enqueue_in(timedelta(seconds=1), 'fixtures.add', 1, 2)
print(json.dumps({'id': job.id, 'status': job.get_status().value}))
",
        &[],
    )
    .await;
    assert_eq!(enqueued["status"], "scheduled");
    let id = enqueued["id"].as_str().unwrap();

    let worker = start_worker_with_scheduler(&server);
    wait_until_finished(&conn, &id.parse().unwrap()).await;
    // Python finds the running scheduler as it finds its own: lock, then hash.
    let scheduler = python(
        &server,
        r"
from rq.scheduler import RQScheduler
name = redis.get(RQScheduler.get_locking_key('default')).decode()
scheduler = RQScheduler.fetch(name, connection=redis)
print(json.dumps({'pid': queue.scheduler_pid, 'queues': sorted(scheduler._queue_names)}))
",
        &[],
    )
    .await;
    assert_eq!(
        scheduler,
        json!({"pid": worker.id().unwrap(), "queues": ["default"]})
    );
    stop(worker).await;

    let job = python(&server, READ_JOB, &[id]).await;
    assert_eq!(job, json!({"status": "finished", "return_value": 3}));
    assert_eq!(lock_holder(&server).await, None, "released on SIGTERM");
}

#[tokio::test]
async fn a_python_schedulers_lock_keeps_the_rqrs_scheduler_off_the_queue() {
    let (server, conn) = setup().await;
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg("rq:scheduler-lock:default")
        .arg("python-scheduler")
        .query_async(&mut redis)
        .await
        .unwrap();
    let enqueued = python(
        &server,
        r"
from datetime import datetime, timedelta, timezone
job = queue.enqueue_at(datetime.now(timezone.utc) - timedelta(seconds=5), 'fixtures.add', 1, 2)
print(json.dumps({'id': job.id}))
",
        &[],
    )
    .await;
    let id = enqueued["id"].as_str().unwrap();

    burst_with_scheduler(&server).await;
    assert_eq!(status(&conn, id).await, JobStatus::Scheduled);
    assert_eq!(
        lock_holder(&server).await.as_deref(),
        Some("python-scheduler")
    );

    // Once the Python scheduler is gone, the rqrs one takes the queue.
    let () = redis::cmd("DEL")
        .arg("rq:scheduler-lock:default")
        .query_async(&mut redis)
        .await
        .unwrap();
    burst_with_scheduler(&server).await;
    let job = python(&server, READ_JOB, &[id]).await;
    assert_eq!(job, json!({"status": "finished", "return_value": 3}));
}

#[tokio::test]
async fn rqrs_enqueue_schedule_in_runs_on_a_worker_with_the_scheduler() {
    let (server, conn) = setup().await;
    let id = rqrs(
        &server,
        &["enqueue", "fixtures.add", ":1", ":2", "--schedule-in", "1s"],
    )
    .await;
    let id = id.trim();
    assert_eq!(status(&conn, id).await, JobStatus::Scheduled);

    let worker = start_worker_with_scheduler(&server);
    wait_until_finished(&conn, &id.parse().unwrap()).await;
    stop(worker).await;
    let job = python(&server, READ_JOB, &[id]).await;
    assert_eq!(job, json!({"status": "finished", "return_value": 3}));
}

#[tokio::test]
async fn rqrs_enqueue_schedule_at_reads_a_local_time() {
    let (server, conn) = setup().await;
    let at = "2021-05-27T21:45:00";
    let id = rqrs(
        &server,
        &["enqueue", "fixtures.add", ":1", ":2", "--schedule-at", at],
    )
    .await;
    let id = id.trim();
    assert_eq!(status(&conn, id).await, JobStatus::Scheduled);
    let naive = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S").unwrap();
    let due = Local.from_local_datetime(&naive).earliest().unwrap();
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let score: i64 = redis::cmd("ZSCORE")
        .arg("rq:scheduled:default")
        .arg(id)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(score, due.timestamp());

    burst_with_scheduler(&server).await;
    assert_eq!(status(&conn, id).await, JobStatus::Finished);

    let both = rqrs_output(
        &server,
        &[
            "enqueue",
            "fixtures.add",
            "--schedule-in",
            "1s",
            "--schedule-at",
            at,
        ],
    )
    .await;
    assert!(!both.status.success());
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    let bad = rqrs_output(&server, &["enqueue", "fixtures.add", "--schedule-in", "1w"]).await;
    assert!(!bad.status.success());
}

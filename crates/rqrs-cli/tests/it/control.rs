//! Control of running rqrs workers from Python RQ's tools and from `rqrs`.

use rqrs::{Job, JobStatus, Queue, WorkerState};

use crate::{HANG, on_every_backend, rq_cli, rqrs, setup, start_worker, success};

#[tokio::test]
async fn rq_suspend_pauses_an_rqrs_worker_and_rq_resume_restarts_it() {
    let (server, conn) = setup().await;
    let _worker = start_worker(&server, "suspendable", &["default"]);
    wait_state(&conn, "suspendable", WorkerState::Idle).await;
    success(&rq_cli(&server, &["suspend"]).await, "rq suspend");
    wait_state(&conn, "suspendable", WorkerState::Suspended).await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .send()
        .await
        .unwrap();
    // rq info, Python's view, shows the worker suspended.
    let info = success(&rq_cli(&server, &["info", "--raw"]).await, "rq info");
    assert!(
        info.contains("suspendable") && info.contains("suspended"),
        "{info}"
    );
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Queued
    );
    success(&rq_cli(&server, &["resume"]).await, "rq resume");
    rqrs_test::wait_for("the job to run after rq resume", HANG, || async {
        Job::fetch(&conn, job.id())
            .await
            .ok()
            .filter(|job| job.status() == JobStatus::Finished)
    })
    .await;
    // And the same with rqrs's own commands, which Python sees.
    rqrs(&server, &["suspend", "--duration", "60"]).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg("rq:suspended")
        .query_async(
            &mut server
                .client()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!((50..=60).contains(&ttl), "{ttl}");
    wait_state(&conn, "suspendable", WorkerState::Suspended).await;
    rqrs(&server, &["resume"]).await;
    wait_state(&conn, "suspendable", WorkerState::Idle).await;
}

async fn wait_state(conn: &rqrs::Connection, name: &str, state: WorkerState) {
    rqrs_test::wait_for(
        &format!("worker {name} to be {}", state.as_str()),
        HANG,
        || async {
            rqrs::Worker::all(conn)
                .await
                .ok()?
                .into_iter()
                .find(|w| w.name == name && w.state == state)
        },
    )
    .await;
}

#[tokio::test]
async fn pythons_send_stop_job_command_stops_a_running_rqrs_job() {
    let (server, conn) = setup().await;
    let _worker = start_worker(&server, "stoppable", &["default"]);
    wait_state(&conn, "stoppable", WorkerState::Idle).await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.sleep", (60,))
        .send()
        .await
        .unwrap();
    rqrs_test::wait_for("the job to start", HANG, || async {
        Job::fetch(&conn, job.id())
            .await
            .ok()
            .filter(|job| job.status() == JobStatus::Started)
    })
    .await;
    let out = crate::python(
        &server,
        r"
from rq.command import send_stop_job_command
send_stop_job_command(redis, sys.argv[1])
import time
job = Job.fetch(sys.argv[1], connection=redis, serializer=JSONSerializer)
for _ in range(400):
    if job.get_status(refresh=True) == 'stopped':
        break
    time.sleep(0.05)
print(json.dumps({'status': job.get_status(), 'exc': job.latest_result().exc_string,
                  'failed': queue.failed_job_registry.get_job_ids()}))
",
        &[job.id().as_str()],
    )
    .await;
    assert_eq!(out["status"], "stopped", "{out}");
    assert!(
        out["exc"].as_str().unwrap().contains("Job stopped by user"),
        "{out}"
    );
    assert_eq!(out["failed"], serde_json::json!([job.id().as_str()]));
    // `rqrs job show` prints it; `rqrs job stop` on a job no worker runs fails clearly.
    let shown: serde_json::Value =
        serde_json::from_str(&rqrs(&server, &["job", "show", job.id().as_str()]).await).unwrap();
    assert_eq!(shown["status"], "stopped");
    let again = crate::rqrs_output(&server, &["job", "stop", "nope"]).await;
    assert!(!again.status.success());
}

on_every_backend! {
async fn rqrs_info_shows_the_progress_of_a_running_job(server: &Store, conn: &Connection) {
    let _worker = start_worker(&server, "progressing", &["default"]);
    wait_state(conn, "progressing", WorkerState::Idle).await;
    let job = Queue::new(conn, "default")
        .enqueue("fixtures.progress", (4, 0.5))
        .send()
        .await
        .unwrap();
    let shown = rqrs_test::wait_for("progress in rqrs info", HANG, || async {
        let info: serde_json::Value =
            serde_json::from_str(&rqrs(&server, &["info", "--json"]).await).ok()?;
        let worker = info["workers"]
            .as_array()?
            .iter()
            .find(|w| w["name"] == "progressing")?
            .clone();
        (worker["progress"]["done"].as_u64()? >= 1).then_some(worker)
    })
    .await;
    assert_eq!(shown["current_job"], job.id().as_str());
    assert_eq!(shown["progress"]["total"], 4);
    let text = rqrs(&server, &["info"]).await;
    assert!(text.contains("progress"), "{text}");
}
}

on_every_backend! {
async fn a_worker_pool_runs_several_worker_processes(server: &Store, conn: &Connection) {
    let queue = Queue::new(conn, "default");
    let jobs = queue
        .enqueue_many((0..20).map(|i| queue.enqueue("fixtures.add", (i, 1))))
        .await
        .unwrap();
    let mut command = tokio::process::Command::new(crate::example("cli"));
    command.args([
        "--url",
        &server.url(),
        "worker-pool",
        "-n",
        "2",
        "--burst",
        "--name",
        "pool",
        "default",
        "--concurrency",
        "2",
    ]);
    success(
        &crate::output(command, "rqrs worker-pool").await,
        "rqrs worker-pool",
    );
    let mut workers = std::collections::HashSet::new();
    for job in &jobs {
        let job = Job::fetch(conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        workers.insert(job.worker_name().unwrap().to_owned());
    }
    assert!(
        workers
            .iter()
            .all(|name| name == "pool-0" || name == "pool-1"),
        "{workers:?}"
    );
}
}

#[tokio::test]
async fn the_command_line_and_workers_speak_tls() {
    let server = rqrs_test::TlsRedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let ca = ca.to_str().unwrap();
    let run = |program: std::path::PathBuf, args: Vec<String>| async move {
        let mut command = tokio::process::Command::new(program);
        command.args(&args);
        success(
            &crate::output(command, "a TLS command").await,
            "a TLS command",
        )
    };
    let url = server.url();
    let id = run(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_rqrs")),
        [
            "--url",
            &url,
            "--tls-ca-cert",
            ca,
            "enqueue",
            "fixtures.add",
            ":40",
            ":2",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    run(
        crate::worker_example(),
        ["--url", &url, "--tls-ca-cert", ca, "--burst"]
            .map(str::to_owned)
            .to_vec(),
    )
    .await;
    let shown = run(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_rqrs")),
        ["--url", &url, "--tls-ca-cert", ca, "job", "show", id.trim()]
            .map(str::to_owned)
            .to_vec(),
    )
    .await;
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "finished");
    assert_eq!(shown["result"]["return_value"], 42);
}

on_every_backend! {
async fn rqrs_job_cancel_and_delete(server: &Store, conn: &Connection) {
    let queue = Queue::new(conn, "default");
    let first = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    let second = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    rqrs(&server, &["job", "cancel", first.id().as_str()]).await;
    assert_eq!(
        Job::fetch(conn, first.id()).await.unwrap().status(),
        JobStatus::Canceled
    );
    assert_eq!(
        rqrs::CanceledJobRegistry::new(conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [first.id().clone()]
    );
    rqrs(&server, &["job", "delete", second.id().as_str()]).await;
    assert!(
        Job::fetch(conn, second.id())
            .await
            .unwrap_err()
            .is_no_such_job()
    );
    assert_eq!(queue.count().await.unwrap(), 0);
    // Canceling twice is refused with a clear error.
    let again = crate::rqrs_output(&server, &["job", "cancel", first.id().as_str()]).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("cancel"),
        "{again:?}"
    );
}
}

on_every_backend! {
/// `rqrs job stop`, `suspend` and `resume` reach a worker in another process: the job ends
/// `stopped` in the failed registry, and the worker takes no job while suspended.
async fn rqrs_job_stop_suspend_and_resume_reach_a_worker_process(server: &Store, conn: &Connection) {
    let _worker = start_worker(&server, "commanded", &["default"]);
    wait_state(conn, "commanded", WorkerState::Idle).await;
    let queue = Queue::new(conn, "default");
    let job = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
    rqrs_test::wait_for("the job to start", HANG, || async {
        Job::fetch(conn, job.id())
            .await
            .ok()
            .filter(|job| job.status() == JobStatus::Started)
    })
    .await;
    rqrs(&server, &["job", "stop", job.id().as_str()]).await;
    let stopped = rqrs_test::wait_for("the job to stop", HANG, || async {
        Job::fetch(conn, job.id())
            .await
            .ok()
            .filter(|job| job.status() == JobStatus::Stopped)
    })
    .await;
    let exc = stopped.exc_info().await.unwrap().unwrap_or_default();
    assert!(exc.contains("Job stopped by user"), "{exc}");
    assert_eq!(
        rqrs::FailedJobRegistry::new(conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [job.id().clone()]
    );

    let shown: serde_json::Value =
        serde_json::from_str(&rqrs(&server, &["job", "show", job.id().as_str()]).await).unwrap();
    assert_eq!(shown["status"], "stopped");

    rqrs(&server, &["suspend"]).await;
    wait_state(conn, "commanded", WorkerState::Suspended).await;
    let waits = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        Job::fetch(conn, waits.id()).await.unwrap().status(),
        JobStatus::Queued
    );
    rqrs(&server, &["resume"]).await;
    rqrs_test::wait_for("the job to run after rqrs resume", HANG, || async {
        Job::fetch(conn, waits.id())
            .await
            .ok()
            .filter(|job| job.status() == JobStatus::Finished)
    })
    .await;
}
}

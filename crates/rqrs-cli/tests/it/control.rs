//! Control of running rqrs workers from Python RQ's tools and from `rqrs`.

use rqrs::{Job, JobStatus, Queue, WorkerState};

use crate::{HANG, rq_cli, rqrs, setup, start_worker, success};

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

//! Workers in RQ's layout (the worker hash and sets `rq:worker:<name>`, `rq:workers`,
//! `rq:workers:<q>`, the started registry's deadlines), and replies lost with a connection: a
//! TCP proxy between the worker and its server drops a reply after the server ran the command.

use std::time::Duration;

use rqrs::{Job, JobStatus, Queue, StartedJobRegistry};
use serde_json::json;

use super::{field, raw, setup};
use crate::{HANG, spawn_worker, spawn_worker_beating, wait_status};

#[tokio::test]
async fn a_worker_registers_and_heartbeats_as_rq_does() {
    let (server, conn) = setup().await;
    let (name, stop, task) = spawn_worker(&conn, 2);
    let key = format!("rq:worker:{name}");
    rqrs_test::wait_for("the worker to register", HANG, || async {
        (field(&server, &key, "state").await == Some(b"idle".to_vec())).then_some(())
    })
    .await;
    for (field_name, expected) in [
        ("queues", "default".to_owned()),
        ("pid", std::process::id().to_string()),
    ] {
        assert_eq!(
            field(&server, &key, field_name).await,
            Some(expected.into_bytes())
        );
    }
    for present in [
        "birth",
        "hostname",
        "last_heartbeat",
        "version",
        "ip_address",
    ] {
        assert!(field(&server, &key, present).await.is_some(), "{present}");
    }
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:workers"]).await;
    assert_eq!(members, std::slice::from_ref(&key));
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:workers:default"]).await;
    assert_eq!(members, std::slice::from_ref(&key));

    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.sleep", (2,))
        .send()
        .await
        .unwrap();
    wait_status(&conn, job.id(), JobStatus::Started).await;
    assert_eq!(
        field(&server, &key, "current_job").await,
        Some(job.id().as_str().as_bytes().to_vec())
    );
    // Heartbeats move the started-registry deadline forward while the job runs.
    let member = format!("{}:", job.id());
    let deadline = || async {
        let entries: Vec<(String, f64)> = raw(
            &server,
            &["ZRANGE", "rq:wip:default", "0", "-1", "WITHSCORES"],
        )
        .await;
        entries
            .into_iter()
            .find(|(m, _)| m.starts_with(&member))
            .map(|(_, score)| score)
    };
    let first = deadline().await.unwrap();
    rqrs_test::wait_for("a heartbeat", HANG, || async {
        deadline().await.filter(|score| *score > first)
    })
    .await;

    wait_status(&conn, job.id(), JobStatus::Finished).await;
    stop.warm();
    task.await.unwrap().unwrap();
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:workers"]).await;
    assert!(members.is_empty(), "the worker unregisters");
    assert!(field(&server, &key, "death").await.is_some());
    assert_eq!(field(&server, &key, "current_job").await, None);
    let ttl: i64 = raw(&server, &["TTL", &key]).await;
    assert!(
        (1..=60).contains(&ttl),
        "a dead worker's hash is kept 60 s: {ttl}"
    );
}

#[tokio::test]
async fn an_expired_worker_hash_is_not_brought_back_piecemeal() {
    let (server, conn) = setup().await;
    let (name, stop, task) = spawn_worker(&conn, 1);
    let key = format!("rq:worker:{name}");
    rqrs_test::wait_for("the worker to register", HANG, || async {
        field(&server, &key, "birth").await
    })
    .await;
    let _: i64 = raw(&server, &["DEL", &key]).await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .send()
        .await
        .unwrap();
    wait_status(&conn, job.id(), JobStatus::Finished).await;
    assert_eq!(
        field(&server, &key, "successful_job_count").await,
        None,
        "no stub hash of counters alone"
    );
    rqrs_test::wait_for("the worker to register again", HANG, || async {
        field(&server, &key, "birth").await
    })
    .await;
    assert!(field(&server, &key, "queues").await.is_some());
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dequeue_whose_reply_is_lost_puts_its_job_back_at_once() {
    let (server, conn) = setup().await;
    let proxy = rqrs_test::Proxy::start(server.port());
    let through = rqrs::connect(&proxy.url()).await.unwrap();
    // A deadline (six heartbeats) far past the test's bound: abandoned-run recovery cannot be
    // what brings the job back.
    let (name, stop, task) = spawn_worker_beating(&through, 1, Duration::from_secs(60));
    let key = format!("rq:worker:{name}");
    rqrs_test::wait_for("the worker to register", HANG, || async {
        (field(&server, &key, "state").await == Some(b"idle".to_vec())).then_some(())
    })
    .await;

    proxy.lose_replies();
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (2, 3))
        .send()
        .await
        .unwrap();
    // The waiter's reply is lost first (it reconnects and wakes the worker), then the
    // dequeue's: the dequeue ran on the server (its reply carries the job's hash) and the
    // worker never saw its reply.
    // Another reply may be lost first (a dequeue of the worker's safety net, say): then the
    // loss is armed again for the connections open now, until the dequeue's is the one lost.
    let id = job.id().as_str().as_bytes().to_vec();
    let mut seen = 0;
    rqrs_test::wait_for("the dequeue's reply to be lost", HANG, || {
        let lost = proxy.lost_replies();
        let found = lost.iter().any(|reply| {
            reply.windows(id.len()).any(|window| window == id)
                && reply.windows(10).any(|window| window == b"created_at")
        });
        if !found && lost.len() > seen {
            seen = lost.len();
            proxy.lose_replies();
        }
        async move { found.then_some(()) }
    })
    .await;
    let job = wait_status(&conn, job.id(), JobStatus::Finished).await;
    let results = job.results().await.unwrap();
    assert_eq!(results.len(), 1, "one run, never recovered as abandoned");
    assert_eq!(job.return_value().await.unwrap(), Some(json!(5)));
    let started = StartedJobRegistry::new(&conn, "default");
    assert_eq!(started.count().await.unwrap(), 0);
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_whose_reply_is_lost_is_recorded_once() {
    let (server, conn) = setup().await;
    let proxy = rqrs_test::Proxy::start(server.port());
    let through = rqrs::connect(&proxy.url()).await.unwrap();
    let (hook, requests) = rqrs_test::http_sink(1).await;
    let (_, stop, task) = spawn_worker_beating(&through, 1, Duration::from_secs(60));
    // A first job loads the scripts, so that the finish below is one EVALSHA and one reply.
    let first = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (1, 1))
        .send()
        .await
        .unwrap();
    wait_status(&conn, first.id(), JobStatus::Finished).await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.sleep", (1.0,))
        .webhook(rqrs::Webhook::new(hook, rqrs::WebhookStatus::Finished))
        .send()
        .await
        .unwrap();
    wait_status(&conn, job.id(), JobStatus::Started).await;
    // The next reply on the worker's connection is the finish's: it is lost, and the worker
    // tries again on a new connection.
    proxy.lose_replies();
    wait_status(&conn, job.id(), JobStatus::Finished).await;
    // The second attempt finds the run recorded by the first, so the worker goes on as after a
    // recorded outcome: the webhook is sent.
    let requests = tokio::time::timeout(HANG, requests)
        .await
        .expect("the webhook is sent")
        .unwrap();
    assert_eq!(requests.len(), 1);
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(job.results().await.unwrap().len(), 1, "recorded once");
    // (The liveness thread's connection may lose a maintenance reply too.)
    let lost = proxy.lost_replies();
    assert!(
        lost.contains(&b"*2\r\n*1\r\n:1\r\n*0\r\n".to_vec()),
        "the finish's reply was lost (recorded: 1; nothing taken): {lost:?}"
    );
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn two_copies_of_an_id_taken_in_one_round_trip_run_once() {
    let (server, conn) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.txt");
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.append", (lines.to_str().unwrap(), "ran"))
        .send()
        .await
        .unwrap();
    // Two cleanups that recovered one run at once each put the job back: two copies.
    let _: i64 = raw(&server, &["RPUSH", "rq:queue:default", job.id().as_str()]).await;
    crate::work(&conn, &["default"], 4, rqrs::Functions::new()).await;
    assert_eq!(std::fs::read_to_string(&lines).unwrap(), "ran\n");
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(job.results().await.unwrap().len(), 1);
    assert_eq!(Queue::new(&conn, "default").count().await.unwrap(), 0);
}

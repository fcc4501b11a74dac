//! What a Python worker that dies mid-step leaves on a shared Redis, staged key by key as its
//! steps write them (take the id with BLMOVE into `rq:queue:<q>:intermediate`, then start the
//! run in the started registry, then mark the job started and take the id off that list), and
//! how rqrs's recovery leaves each job in exactly one place, run once.

use rqrs::{FailedJobRegistry, Job, JobId, JobStatus, Queue, Retry, StartedJobRegistry};
use rqrs_test::RedisServer;

use super::{raw, setup};
use crate::work;

/// Enqueues `fixtures.add` on `default` and takes it off the queue as a Python worker's BLMOVE
/// does: the id moves to the queue's intermediate list.
async fn taken_by_python(server: &RedisServer, conn: &rqrs::Connection, retries: u32) -> JobId {
    let queue = Queue::new(conn, "default");
    let mut enqueue = queue.enqueue("fixtures.add", (1, 2));
    if retries > 0 {
        enqueue = enqueue.retry(Retry::new(retries));
    }
    let job = enqueue.send().await.unwrap();
    let moved: Option<String> = raw(
        server,
        &[
            "LMOVE",
            "rq:queue:default",
            "rq:queue:default:intermediate",
            "LEFT",
            "RIGHT",
        ],
    )
    .await;
    assert_eq!(moved.as_deref(), Some(job.id().as_str()));
    job.id().clone()
}

/// Stages the run a Python worker starts: an expired started-registry entry (its deadline
/// long past), and, with `started`, the job's status.
async fn abandoned_run(server: &RedisServer, id: &JobId, started: bool) {
    let _: i64 = raw(
        server,
        &["ZADD", "rq:wip:default", "1", &format!("{id}:e1")],
    )
    .await;
    let _: i64 = raw(server, &["ZADD", &format!("rq:executions:{id}"), "1", "e1"]).await;
    if started {
        let _: i64 = raw(
            server,
            &[
                "HSET",
                &format!("rq:job:{id}"),
                "status",
                "started",
                "worker_name",
                "py",
            ],
        )
        .await;
    }
}

async fn intermediate(server: &RedisServer) -> Vec<String> {
    raw(
        server,
        &["LRANGE", "rq:queue:default:intermediate", "0", "-1"],
    )
    .await
}

#[tokio::test]
async fn recovering_a_python_run_drops_its_id_from_the_intermediate_list() {
    let (server, conn) = setup().await;
    // Died after it started the job, before it took the id off the list.
    let failed = taken_by_python(&server, &conn, 0).await;
    abandoned_run(&server, &failed, true).await;
    let started = StartedJobRegistry::new(&conn, "default");
    assert_eq!(started.cleanup().await.unwrap(), 1);
    assert_eq!(
        Job::fetch(&conn, &failed).await.unwrap().status(),
        JobStatus::Failed
    );
    assert!(
        intermediate(&server).await.is_empty(),
        "a stale entry stayed"
    );

    // With a retry left, the job runs once more, and only once.
    let retried = taken_by_python(&server, &conn, 1).await;
    abandoned_run(&server, &retried, true).await;
    assert_eq!(started.cleanup().await.unwrap(), 1);
    assert!(
        intermediate(&server).await.is_empty(),
        "a stale entry stayed"
    );
    work(&conn, &["default"], 2, rqrs::Functions::new()).await;
    let job = Job::fetch(&conn, &retried).await.unwrap();
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(
        job.results().await.unwrap().len(),
        2,
        "one retry, one success"
    );
    // A cleanup later (a Python worker's, or rqrs's) finds nothing left to fail.
    assert_eq!(started.cleanup().await.unwrap(), 0);
    assert_eq!(
        Job::fetch(&conn, &retried).await.unwrap().status(),
        JobStatus::Finished
    );
}

#[tokio::test]
async fn a_job_a_python_worker_took_and_never_started_goes_back_on_its_queue() {
    let (server, conn) = setup().await;
    let started = StartedJobRegistry::new(&conn, "default");

    // Died right after its BLMOVE: the id is on the intermediate list only. The first cleanup
    // notes when it saw it (RQ's key); one that sees it after the grace puts it back.
    let stranded = taken_by_python(&server, &conn, 0).await;
    assert_eq!(started.cleanup().await.unwrap(), 0);
    let first_seen_key = format!("rq:queue:default:intermediate:first_seen:{stranded}");
    let seen: Option<f64> = raw(&server, &["GET", &first_seen_key]).await;
    assert!(seen.is_some(), "the first sight is noted");
    assert_eq!(intermediate(&server).await, [stranded.to_string()]);
    let long_ago = (chrono::Utc::now().timestamp() - 120).to_string();
    let _: () = raw(&server, &["SET", &first_seen_key, &long_ago]).await;
    assert_eq!(started.cleanup().await.unwrap(), 1);
    assert!(intermediate(&server).await.is_empty());
    let queue = Queue::new(&conn, "default");
    assert_eq!(
        queue.job_ids().await.unwrap(),
        std::slice::from_ref(&stranded)
    );
    work(&conn, &["default"], 2, rqrs::Functions::new()).await;

    // Died after it started the run, before the job was marked started: the run is dropped and
    // the job, which never ran, waits on the intermediate list as above (not failed).
    let half_started = taken_by_python(&server, &conn, 0).await;
    abandoned_run(&server, &half_started, false).await;
    assert_eq!(started.cleanup().await.unwrap(), 0);
    assert_eq!(started.count().await.unwrap(), 0);
    assert_eq!(intermediate(&server).await, [half_started.to_string()]);
    let _: () = raw(
        &server,
        &[
            "SET",
            &format!("rq:queue:default:intermediate:first_seen:{half_started}"),
            &long_ago,
        ],
    )
    .await;
    assert_eq!(started.cleanup().await.unwrap(), 1);

    // A queued job in the started registry and on no list (a Python worker that does not use
    // the intermediate list) goes straight back.
    let listless = queue.enqueue("fixtures.add", (5, 6)).send().await.unwrap();
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:default", "0", listless.id().as_str()],
    )
    .await;
    abandoned_run(&server, listless.id(), false).await;
    assert_eq!(started.cleanup().await.unwrap(), 0);

    let mut waiting = queue.job_ids().await.unwrap();
    waiting.sort();
    let mut expected = vec![half_started.clone(), listless.id().clone()];
    expected.sort();
    assert_eq!(waiting, expected);
    work(&conn, &["default"], 2, rqrs::Functions::new()).await;
    expected.push(stranded);
    for id in &expected {
        let job = Job::fetch(&conn, id).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished, "{id}");
        assert_eq!(job.results().await.unwrap().len(), 1, "{id} ran once");
    }
    assert_eq!(
        FailedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_second_copy_of_a_job_on_its_queue_does_not_run_it_again() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    // Two cleanups that recovered one run at once each pushed the id.
    let _: i64 = raw(&server, &["RPUSH", "rq:queue:default", job.id().as_str()]).await;
    work(&conn, &["default"], 1, rqrs::Functions::new()).await;
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(job.results().await.unwrap().len(), 1, "it ran once");
    assert_eq!(queue.count().await.unwrap(), 0);
}

#[tokio::test]
async fn dependents_a_python_3_process_left_ready_are_enqueued_once() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    // RQ 3.0 marks a released dependent ready_to_enqueue in its queue's ready registry, then
    // enqueues it in a second step; it died in between. A stale entry (its job went on) too.
    let ready = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let stale = queue.enqueue("fixtures.add", (3, 4)).send().await.unwrap();
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:default", "0", ready.id().as_str()],
    )
    .await;
    let _: i64 = raw(
        &server,
        &[
            "HSET",
            &format!("rq:job:{}", ready.id()),
            "status",
            "ready_to_enqueue",
        ],
    )
    .await;
    for id in [ready.id(), stale.id()] {
        let _: i64 = raw(&server, &["ZADD", "rq:ready:default", "1", id.as_str()]).await;
    }
    assert_eq!(
        Job::fetch(&conn, ready.id()).await.unwrap().status(),
        JobStatus::ReadyToEnqueue
    );
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .cleanup()
            .await
            .unwrap(),
        1
    );
    let left: i64 = raw(&server, &["ZCARD", "rq:ready:default"]).await;
    assert_eq!(left, 0);
    let mut waiting = queue.job_ids().await.unwrap();
    waiting.sort();
    let mut expected = vec![ready.id().clone(), stale.id().clone()];
    expected.sort();
    assert_eq!(waiting, expected, "each once on the queue");
    work(&conn, &["default"], 2, rqrs::Functions::new()).await;
    for id in &expected {
        let job = Job::fetch(&conn, id).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        assert_eq!(job.results().await.unwrap().len(), 1);
    }
}

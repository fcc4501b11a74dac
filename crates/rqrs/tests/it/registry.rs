use rqrs::{
    Error, FailedJobRegistry, FinishedJobRegistry, Functions, Job, JobStatus, Queue,
    StartedJobRegistry,
};

use crate::{field, raw, setup, work};

#[tokio::test]
async fn failed_jobs_can_be_requeued_one_or_all() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let ids: Vec<_> = futures_ids(&queue, 3).await;
    work(&conn, &["default"], 1, Functions::new()).await;
    let failed = FailedJobRegistry::new(&conn, "default");
    assert_eq!(failed.count().await.unwrap(), 3);

    failed.requeue(&ids[0]).await.unwrap();
    let job = Job::fetch(&conn, &ids[0]).await.unwrap();
    assert_eq!(job.status(), JobStatus::Queued);
    assert_eq!(job.started_at(), None);
    assert_eq!(
        job.exc_info().await.unwrap().as_deref(),
        Some("nope"),
        "the last failure stays readable"
    );
    // RQ marks a requeued job with exc_info = zlib(b"").
    let marker = field(&server, &format!("rq:job:{}", ids[0]), "exc_info").await;
    assert_eq!(
        marker,
        Some(vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
    );
    assert_eq!(queue.job_ids().await.unwrap(), [ids[0].clone()]);
    let again = failed.requeue(&ids[0]).await.unwrap_err();
    assert!(matches!(again, Error::NotInRegistry { .. }), "{again}");

    assert_eq!(failed.requeue_all().await.unwrap(), 2);
    assert_eq!(failed.count().await.unwrap(), 0);
    assert_eq!(queue.count().await.unwrap(), 3);
}

async fn futures_ids(queue: &Queue, count: usize) -> Vec<rqrs::JobId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(
            queue
                .enqueue("fixtures.fail", ("nope",))
                .send()
                .await
                .unwrap()
                .id()
                .clone(),
        );
    }
    ids
}

#[tokio::test]
async fn remove_can_delete_the_job() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let ids = futures_ids(&queue, 2).await;
    let done = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let failed = FailedJobRegistry::new(&conn, "default");
    assert!(failed.remove(&ids[0], false).await.unwrap());
    assert!(
        Job::fetch(&conn, &ids[0]).await.is_ok(),
        "kept when not asked to delete"
    );
    assert!(failed.remove(&ids[1], true).await.unwrap());
    assert!(
        Job::fetch(&conn, &ids[1])
            .await
            .unwrap_err()
            .is_no_such_job()
    );
    let results: i64 = raw(&server, &["EXISTS", &format!("rq:results:{}", ids[1])]).await;
    assert_eq!(results, 0);
    assert!(!failed.remove(&ids[1], true).await.unwrap());
    assert!(
        FinishedJobRegistry::new(&conn, "default")
            .remove(done.id(), true)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_queued_job_can_be_moved_to_failed_by_hand() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let other = Queue::new(&conn, "other");
    assert!(
        FailedJobRegistry::new(&conn, "other")
            .add(&job, "x")
            .await
            .is_err(),
        "wrong queue"
    );
    FailedJobRegistry::new(&conn, "default")
        .add(&job, "quarantined: bad customer")
        .await
        .unwrap();
    assert_eq!(queue.count().await.unwrap(), 0);
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Failed);
    assert_eq!(
        job.exc_info().await.unwrap().as_deref(),
        Some("quarantined: bad customer")
    );
    assert_eq!(other.count().await.unwrap(), 0);
}

#[tokio::test]
async fn started_registry_cleanup_fails_abandoned_runs() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    // A run whose deadline passed long ago, as a dead worker leaves it.
    let member = format!("{}:deadbeef", job.id());
    let _: i64 = raw(&server, &["ZADD", "rq:wip:default", "1", &member]).await;
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:default", "0", job.id().as_str()],
    )
    .await;
    let started = StartedJobRegistry::new(&conn, "default");
    assert_eq!(started.job_ids().await.unwrap(), [job.id().clone()]);
    assert_eq!(started.cleanup().await.unwrap(), 1);
    assert_eq!(started.count().await.unwrap(), 0);
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Failed);
    assert!(
        job.exc_info()
            .await
            .unwrap()
            .unwrap()
            .contains("AbandonedJobError")
    );
    assert_eq!(
        FailedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn finished_registry_cleanup_drops_expired_entries() {
    let (server, conn) = setup().await;
    let _: i64 = raw(
        &server,
        &[
            "ZADD",
            "rq:finished:default",
            "1",
            "old",
            "99999999999",
            "new",
        ],
    )
    .await;
    let finished = FinishedJobRegistry::new(&conn, "default");
    assert_eq!(finished.cleanup().await.unwrap(), 1);
    assert_eq!(finished.job_ids().await.unwrap(), ["new".parse().unwrap()]);
}

#[tokio::test]
async fn requeue_goes_to_the_jobs_origin_and_abandoned_results_have_no_execution() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "origin")
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:origin", "0", job.id().as_str()],
    )
    .await;
    let _: i64 = raw(
        &server,
        &["ZADD", "rq:wip:origin", "1", &format!("{}:gone", job.id())],
    )
    .await;
    StartedJobRegistry::new(&conn, "origin")
        .cleanup()
        .await
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = raw(
        &server,
        &["XRANGE", &format!("rq:results:{}", job.id()), "-", "+"],
    )
    .await;
    let fields: Vec<&str> = entries[0].1.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        fields,
        ["type", "worker_name", "exc_string"],
        "RQ writes no execution fields for abandoned runs"
    );
    // A failed registry entry filed under another queue still goes back to the job's origin.
    let _: i64 = raw(&server, &["ZREM", "rq:failed:origin", job.id().as_str()]).await;
    let _: i64 = raw(
        &server,
        &["ZADD", "rq:failed:elsewhere", "1", job.id().as_str()],
    )
    .await;
    FailedJobRegistry::new(&conn, "elsewhere")
        .requeue(job.id())
        .await
        .unwrap();
    assert_eq!(
        Queue::new(&conn, "origin").job_ids().await.unwrap(),
        [job.id().clone()]
    );
    assert_eq!(Queue::new(&conn, "elsewhere").count().await.unwrap(), 0);
}

#[tokio::test]
async fn cleanup_leaves_live_runs_alone() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    let _: i64 = raw(
        &server,
        &[
            "ZADD",
            "rq:wip:default",
            "99999999999",
            &format!("{}:alive", job.id()),
        ],
    )
    .await;
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .cleanup()
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Queued
    );
}

#[tokio::test]
async fn failure_ttl_zero_deletes_the_job_and_its_results() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.fail", ("x",))
        .failure_ttl(rqrs::Ttl::NOT_KEPT)
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let exists: i64 = raw(
        &server,
        &[
            "EXISTS",
            &format!("rq:job:{}", job.id()),
            &format!("rq:results:{}", job.id()),
        ],
    )
    .await;
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn an_abandoned_run_with_retries_left_is_requeued() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue("fixtures.add", (1, 2))
        .retry(rqrs::Retry::new(2))
        .send()
        .await
        .unwrap();
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:default", "0", job.id().as_str()],
    )
    .await;
    let _: i64 = raw(
        &server,
        &["ZADD", "rq:wip:default", "1", &format!("{}:dead", job.id())],
    )
    .await;
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .cleanup()
            .await
            .unwrap(),
        1
    );
    let requeued = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(requeued.status(), JobStatus::Queued);
    assert_eq!(requeued.retries_left(), 1);
    assert_eq!(queue.job_ids().await.unwrap(), [job.id().clone()]);
    let result = requeued.latest_result().await.unwrap().unwrap();
    assert_eq!(result.result_type(), rqrs::ResultType::Retried);
    assert!(result.exc_string().unwrap().contains("AbandonedJobError"));
    work(&conn, &["default"], 1, Functions::new()).await;
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Finished
    );
}

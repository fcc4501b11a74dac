use std::time::Duration;

use rqrs::{Error, Job, JobStatus, Queue};
use serde_json::json;

use crate::{field, raw, setup, work};

#[tokio::test]
async fn enqueue_writes_rqs_job_hash() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue("tasks.add", (1, 2))
        .job_id("job-add-1".parse().unwrap())
        .result_ttl(Duration::from_secs(600))
        .failure_ttl(Duration::from_secs(300))
        .meta(json!({"k": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(job.id().as_str(), "job-add-1");
    let key = "rq:job:job-add-1";
    let text = |bytes: Option<Vec<u8>>| String::from_utf8(bytes.expect("field present")).unwrap();
    assert_eq!(text(field(&server, key, "status").await), "queued");
    assert_eq!(text(field(&server, key, "origin").await), "default");
    assert_eq!(text(field(&server, key, "timeout").await), "180");
    assert_eq!(text(field(&server, key, "result_ttl").await), "600");
    assert_eq!(text(field(&server, key, "failure_ttl").await), "300");
    assert_eq!(
        text(field(&server, key, "description").await),
        "tasks.add(1, 2)"
    );
    assert_eq!(text(field(&server, key, "meta").await), r#"{"k":"v"}"#);
    assert_eq!(text(field(&server, key, "started_at").await), "");
    let created = text(field(&server, key, "created_at").await);
    assert_eq!(
        created.len(),
        "2026-11-29T01:22:33.966393Z".len(),
        "{created}"
    );
    assert!(created.ends_with('Z'));
    // data: zlib of the JSON array [func_name, null, args, kwargs].
    let data = field(&server, key, "data").await.unwrap();
    assert_eq!(&data[..2], &[0x78, 0x9c]);
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&data[..]), &mut json).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
        json!(["tasks.add", null, [1, 2], {}])
    );
    assert_eq!(
        field(&server, key, "ttl").await,
        None,
        "ttl is written only when given"
    );
    let queues: Vec<String> = raw(&server, &["SMEMBERS", "rq:queues"]).await;
    assert_eq!(queues, ["rq:queue:default"]);
    let ids: Vec<String> = raw(&server, &["LRANGE", "rq:queue:default", "0", "-1"]).await;
    assert_eq!(ids, ["job-add-1"]);
}

#[tokio::test]
async fn fetch_reads_back_what_was_enqueued() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "q1");
    let sent = queue
        .enqueue("tasks.echo", ("a", 1))
        .kwargs(json!({"b": [1, 2]}))
        .description("echo")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let job = Job::fetch(&conn, sent.id()).await.unwrap();
    assert_eq!(job.func_name(), "tasks.echo");
    assert_eq!(job.args(), [json!("a"), json!(1)]);
    assert_eq!(job.kwargs().get("b"), Some(&json!([1, 2])));
    assert_eq!(job.status(), JobStatus::Queued);
    assert_eq!(job.origin(), "q1");
    assert_eq!(job.description(), Some("echo"));
    assert_eq!(job.timeout(), Some(rqrs::Timeout::seconds(30)));
    assert_eq!(
        job.enqueued_at(),
        sent.enqueued_at().map(|t| t.trunc_subsecs_micros())
    );
    assert!(job.data_error().is_none());
    assert_eq!(queue.count().await.unwrap(), 1);
    assert_eq!(queue.job_ids().await.unwrap(), [sent.id().clone()]);
}

trait Micros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl Micros for chrono::DateTime<chrono::Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

#[tokio::test]
async fn at_front_puts_the_job_at_the_head() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let first = queue.enqueue("f", ()).send().await.unwrap();
    let front = queue.enqueue("f", ()).at_front(true).send().await.unwrap();
    assert_eq!(
        queue.job_ids().await.unwrap(),
        [front.id().clone(), first.id().clone()]
    );
}

#[tokio::test]
async fn bad_options_and_ids_are_refused() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    assert!(matches!(
        "a:b".parse::<rqrs::JobId>(),
        Err(Error::Invalid { .. })
    ));
    let mut options = rqrs::EnqueueOptions::default();
    options.ttl = Some(Duration::ZERO);
    let zero_ttl = queue.enqueue("f", ()).options(options).send().await;
    assert!(
        matches!(zero_ttl, Err(Error::Invalid { what: "ttl", .. })),
        "{zero_ttl:?}"
    );
    let mut options = rqrs::EnqueueOptions::default();
    options.timeout = Some(rqrs::Timeout::seconds(0));
    let bad_timeout = queue.enqueue("f", ()).options(options).send().await;
    assert!(matches!(
        bad_timeout,
        Err(Error::Invalid {
            what: "timeout",
            ..
        })
    ));
    let bad_kwargs = queue.enqueue("f", ()).kwargs([1, 2]).send().await;
    assert!(matches!(
        bad_kwargs,
        Err(Error::Invalid { what: "kwargs", .. })
    ));
    assert_eq!(queue.count().await.unwrap(), 0, "nothing was enqueued");
}

#[tokio::test]
async fn fetching_a_missing_job_says_so() {
    let (_server, conn) = setup().await;
    let error = Job::fetch(&conn, &"nope".parse().unwrap())
        .await
        .unwrap_err();
    assert!(error.is_no_such_job(), "{error}");
}

#[tokio::test]
async fn ttl_drops_a_job_that_did_not_start_in_time() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue("fixtures.noop", ())
        .ttl(Duration::from_secs(1))
        .send()
        .await
        .unwrap();
    let keep = queue.enqueue("fixtures.add", (1, 1)).send().await.unwrap();
    let ttl: i64 = raw(&server, &["TTL", &format!("rq:job:{}", job.id())]).await;
    assert!((0..=1).contains(&ttl), "{ttl}");
    rqrs_test::wait_for("the job to expire", Duration::from_secs(5), || async {
        Job::fetch(&conn, job.id())
            .await
            .err()
            .filter(rqrs::Error::is_no_such_job)
    })
    .await;
    // The worker skips the expired id and runs the next job.
    work(&conn, &["default"], 1, rqrs::Functions::new()).await;
    assert_eq!(queue.count().await.unwrap(), 0);
    assert_eq!(
        Job::fetch(&conn, keep.id()).await.unwrap().status(),
        JobStatus::Finished
    );
}

#[tokio::test]
async fn empty_removes_and_deletes_waiting_jobs() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("f", ()).send().await.unwrap();
    queue.enqueue("f", ()).send().await.unwrap();
    assert_eq!(queue.empty().await.unwrap(), 2);
    assert_eq!(queue.count().await.unwrap(), 0);
    let exists: i64 = raw(&server, &["EXISTS", &format!("rq:job:{}", job.id())]).await;
    assert_eq!(exists, 0);
    assert_eq!(
        rqrs::Queue::all(&conn).await.unwrap().len(),
        1,
        "the queue stays known"
    );
}

#[tokio::test]
async fn enqueue_many_sends_all_jobs_in_order_or_none() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let jobs = queue
        .enqueue_many((0..5).map(|i| queue.enqueue("fixtures.add", (i, 1))))
        .await
        .unwrap();
    let ids: Vec<_> = jobs.iter().map(|job| job.id().clone()).collect();
    assert_eq!(queue.job_ids().await.unwrap(), ids);
    let other = Queue::new(&conn, "other");
    let mixed = queue
        .enqueue_many([queue.enqueue("f", ()), other.enqueue("f", ())])
        .await;
    assert!(matches!(mixed, Err(Error::Invalid { .. })), "{mixed:?}");
    let mut bad = rqrs::EnqueueOptions::default();
    bad.ttl = Some(Duration::ZERO);
    let invalid = queue
        .enqueue_many([queue.enqueue("f", ()), queue.enqueue("f", ()).options(bad)])
        .await;
    assert!(invalid.is_err());
    assert_eq!(
        queue.count().await.unwrap(),
        5,
        "nothing of a refused batch was enqueued"
    );
    work(&conn, &["default"], 8, rqrs::Functions::new()).await;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            Job::fetch(&conn, id)
                .await
                .unwrap()
                .return_value()
                .await
                .unwrap(),
            Some(json!(i + 1))
        );
    }
}

#[tokio::test]
async fn dependencies_defer_a_job_until_its_parents_are_done() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let parent = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let child = queue
        .enqueue("fixtures.add", (3, 4))
        .depends_on(rqrs::Dependency::new([parent.id().clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(child.status(), JobStatus::Deferred);
    assert_eq!(queue.job_ids().await.unwrap(), [parent.id().clone()]);
    assert_eq!(
        rqrs::DeferredJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [child.id().clone()]
    );
    let dependents: Vec<String> = raw(
        &server,
        &["SMEMBERS", &format!("rq:job:{}:dependents", parent.id())],
    )
    .await;
    assert_eq!(dependents, [child.id().as_str()]);
    let dependencies: Vec<String> = raw(
        &server,
        &["SMEMBERS", &format!("rq:job::{}:dependencies", child.id())],
    )
    .await;
    assert_eq!(dependencies, [parent.id().as_str()]);
    let key = format!("rq:job:{}", child.id());
    assert_eq!(
        field(&server, &key, "dependency_ids").await,
        Some(format!("[\"{}\"]", parent.id()).into_bytes())
    );
    assert_eq!(
        field(&server, &key, "enqueued_at").await,
        None,
        "a deferred job has no enqueued_at (as RQ)"
    );
    // A dependency that is already finished, or gone, does not hold a job back.
    let free = queue
        .enqueue("f", ())
        .depends_on(rqrs::Dependency::new(["gone".parse().unwrap()]))
        .send()
        .await
        .unwrap();
    assert_eq!(free.status(), JobStatus::Queued);
}

#[tokio::test]
async fn scheduled_and_unique_enqueues() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let later = queue
        .enqueue("f", ())
        .delay(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(later.status(), JobStatus::Scheduled);
    assert_eq!(queue.count().await.unwrap(), 0);
    let score: f64 = raw(
        &server,
        &["ZSCORE", "rq:scheduled:default", later.id().as_str()],
    )
    .await;
    let due = chrono::Utc::now().timestamp() as f64 + 60.0;
    assert!((due - 2.0..=due + 1.0).contains(&score), "{score} vs {due}");
    let id: rqrs::JobId = "only-once".parse().unwrap();
    queue
        .enqueue("f", (1,))
        .job_id(id.clone())
        .unique(true)
        .send()
        .await
        .unwrap();
    let again = queue
        .enqueue("f", (2,))
        .job_id(id.clone())
        .unique(true)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::DuplicateJob(ref dup) if *dup == id),
        "{again}"
    );
    assert_eq!(
        Job::fetch(&conn, &id).await.unwrap().args(),
        [json!(1)],
        "not overwritten"
    );
    assert!(
        queue.enqueue("f", ()).unique(true).send().await.is_err(),
        "unique needs a job id"
    );
}

//! Jobs in RQ's layout: the job hash as Python's `Job.to_dict()` writes it, the result stream,
//! the TTLs RQ sets, the dependency sets, the registries' scores, the requeue marker, the keys
//! cancel and delete leave, groups' sets, and the hashes other producers write (pickled,
//! garbage, no data), which fail their jobs with a reason.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rqrs::{
    Dependency, FailedJobRegistry, Functions, Group, Job, JobContext, JobError, JobId, JobStatus,
    Queue, StartedJobRegistry,
};
use rqrs_test::RedisServer;
use serde_json::json;

use super::{field, raw, results, setup};
use crate::work;

/// The names of every key that contains `id`, sorted.
async fn keys_naming(server: &RedisServer, id: &JobId) -> Vec<String> {
    sorted(raw(server, &["KEYS", &format!("*{id}*")]).await)
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

/// The score of `member` in the sorted set `key`.
async fn score_of(server: &RedisServer, key: &str, member: &str) -> Option<f64> {
    raw(server, &["ZSCORE", key, member]).await
}

fn text(bytes: Option<Vec<u8>>) -> String {
    String::from_utf8(bytes.expect("field present")).unwrap()
}

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
    assert_eq!(text(field(&server, key, "enqueued_at").await), created);
    // data: zlib of the JSON array [func_name, null, args, kwargs].
    let data = field(&server, key, "data").await.unwrap();
    // A zlib header (deflate, 32 KiB window; a small payload is one stored block).
    assert_eq!(data[0], 0x78);
    assert_eq!((u32::from(data[0]) * 256 + u32::from(data[1])) % 31, 0);
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
async fn a_jobs_ttl_is_its_hash_expiry() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .ttl(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let key = format!("rq:job:{}", job.id());
    assert_eq!(text(field(&server, &key, "ttl").await), "30");
    let ttl: i64 = raw(&server, &["TTL", &key]).await;
    assert!((29..=30).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn dependencies_are_rqs_sets_and_fields() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let parent = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let child = queue
        .enqueue("fixtures.add", (3, 4))
        .depends_on(Dependency::new([parent.id().clone()]).enqueue_at_front(true))
        .send()
        .await
        .unwrap();
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
        text(field(&server, &key, "dependency_id").await),
        parent.id().as_str()
    );
    assert_eq!(
        text(field(&server, &key, "allow_dependency_failures").await),
        "0"
    );
    assert_eq!(text(field(&server, &key, "enqueue_at_front").await), "1");
    assert_eq!(
        field(&server, &key, "enqueued_at").await,
        None,
        "a deferred job has no enqueued_at (as RQ)"
    );
    assert!(
        score_of(&server, "rq:deferred:default", child.id().as_str())
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_scheduled_job_is_scored_by_its_due_second() {
    let (server, conn) = setup().await;
    let later = Queue::new(&conn, "default")
        .enqueue("f", ())
        .delay(Duration::from_secs(60))
        .at_front(true)
        .send()
        .await
        .unwrap();
    let score = score_of(&server, "rq:scheduled:default", later.id().as_str())
        .await
        .unwrap();
    let due = Utc::now().timestamp() as f64 + 60.0;
    assert!((due - 2.0..=due + 1.0).contains(&score), "{score} vs {due}");
    let key = format!("rq:job:{}", later.id());
    assert_eq!(text(field(&server, &key, "status").await), "scheduled");
    assert_eq!(text(field(&server, &key, "enqueue_at_front").await), "1");
}

#[tokio::test]
async fn a_success_is_recorded_in_rqs_format() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let job = Job::fetch(&conn, job.id()).await.unwrap();

    let key = format!("rq:job:{}", job.id());
    let ttl: i64 = raw(&server, &["TTL", &key]).await;
    assert!(
        (490..=500).contains(&ttl),
        "default result_ttl is 500, got {ttl}"
    );
    let entries = results(&server, job.id()).await;
    let fields: HashMap<_, _> = entries[0].1.iter().cloned().collect();
    assert_eq!(fields["type"], "1");
    assert_eq!(fields["return_value"], "Mw==", "base64 of the JSON 3");
    assert_eq!(fields["worker_name"], job.worker_name().unwrap());
    assert!(fields["execution_started_at"].parse::<f64>().is_ok());
    assert!(fields["execution_ended_at"].parse::<f64>().is_ok());
    let score: f64 = score_of(&server, "rq:finished:default", job.id().as_str())
        .await
        .unwrap();
    let expires = Utc::now().timestamp() as f64 + 500.0;
    assert!((expires - 5.0..=expires).contains(&score), "{score}");
    let executions: i64 = raw(&server, &["EXISTS", &format!("rq:executions:{}", job.id())]).await;
    assert_eq!(executions, 0, "the execution set is emptied");
    let worker = format!("rq:worker:{}", job.worker_name().unwrap());
    assert_eq!(
        field(&server, &worker, "successful_job_count").await,
        Some(b"1".to_vec())
    );
}

#[tokio::test]
async fn result_ttls_forever_and_not_kept_are_rqs_minus_one_and_zero() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let gone = queue
        .enqueue("fixtures.add", (1, 2))
        .result_ttl(rqrs::Ttl::NOT_KEPT)
        .send()
        .await
        .unwrap();
    let kept = queue
        .enqueue("fixtures.add", (1, 2))
        .result_ttl(rqrs::Ttl::FOREVER)
        .send()
        .await
        .unwrap();
    let key = format!("rq:job:{}", kept.id());
    assert_eq!(text(field(&server, &key, "result_ttl").await), "-1");
    assert_eq!(
        text(field(&server, &format!("rq:job:{}", gone.id()), "result_ttl").await),
        "0"
    );
    work(&conn, &["default"], 2, Functions::new()).await;
    assert_eq!(keys_naming(&server, gone.id()).await, Vec::<String>::new());
    let ttl: i64 = raw(&server, &["TTL", &key]).await;
    assert_eq!(ttl, -1);
    let score: String = raw(
        &server,
        &["ZSCORE", "rq:finished:default", kept.id().as_str()],
    )
    .await;
    assert_eq!(score, "inf");
}

#[tokio::test]
async fn a_failure_is_kept_a_year_and_its_results_only_with_an_explicit_failure_ttl() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue("fixtures.fail", ("boom",))
        .send()
        .await
        .unwrap();
    let explicit = queue
        .enqueue("fixtures.fail", ("bang",))
        .failure_ttl(Duration::from_secs(100))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    let ttl: i64 = raw(&server, &["TTL", &format!("rq:job:{}", job.id())]).await;
    assert!(
        ttl > 31_535_000,
        "a failure is kept a year by default, got {ttl}"
    );
    let stream_ttl: i64 = raw(&server, &["TTL", &format!("rq:results:{}", job.id())]).await;
    assert_eq!(
        stream_ttl, -1,
        "RQ: the results of a failure expire only with an explicit failure_ttl"
    );
    let stream_ttl: i64 = raw(&server, &["TTL", &format!("rq:results:{}", explicit.id())]).await;
    assert!((90..=100).contains(&stream_ttl), "{stream_ttl}");
    let entries = results(&server, job.id()).await;
    let fields: HashMap<_, _> = entries[0].1.iter().cloned().collect();
    assert_eq!(fields["type"], "2");
    assert!(fields.contains_key("exc_string"));
    let worker = format!("rq:worker:{}", job.worker_name().unwrap());
    assert_eq!(
        field(&server, &worker, "failed_job_count").await,
        Some(b"2".to_vec())
    );
    let zero = queue
        .enqueue("fixtures.fail", ("x",))
        .failure_ttl(rqrs::Ttl::NOT_KEPT)
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    assert_eq!(keys_naming(&server, zero.id()).await, Vec::<String>::new());
}

#[tokio::test]
async fn hashes_other_producers_wrote_fail_with_a_reason_and_the_worker_goes_on() {
    let (server, conn) = setup().await;
    // Hashes a producer could have written: pickled data, garbage, no data at all.
    let pickled = zlib(b"\x80\x05\x95\x19\x00\x00\x00\x00\x00\x00\x00(\x8c\ttasks.add\x94N");
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (id, data) in [
        ("pickled", Some(pickled)),
        ("garbage", Some(b"\x01\x02{not json".to_vec())),
        ("nodata", None),
    ] {
        let mut command = redis::cmd("HSET");
        command
            .arg(format!("rq:job:{id}"))
            .arg("status")
            .arg("queued")
            .arg("origin")
            .arg("default");
        if let Some(data) = data {
            command.arg("data").arg(data);
        }
        let _: () = command.query_async(&mut redis).await.unwrap();
        let _: () = redis::cmd("RPUSH")
            .arg("rq:queue:default")
            .arg(id)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let good = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (2, 2))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 2, Functions::new()).await;
    let reason = |id: &str| {
        let conn = conn.clone();
        let id = id.to_owned();
        async move {
            let job = Job::fetch(&conn, &id.parse().unwrap()).await.unwrap();
            assert_eq!(job.status(), JobStatus::Failed, "{id}");
            job.exc_info().await.unwrap().unwrap_or_default()
        }
    };
    assert!(
        reason("pickled")
            .await
            .contains("serializer=JSONSerializer")
    );
    assert!(reason("garbage").await.contains("not valid JSON"));
    assert!(reason("nodata").await.contains("no data field"));
    let good = Job::fetch(&conn, good.id()).await.unwrap();
    assert_eq!(good.return_value().await.unwrap(), Some(json!(4)));
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn retries_are_recorded_as_rqs_retried_entries_and_scored_by_their_due_second() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue("fixtures.fail", ("later",))
        .retry(rqrs::Retry::new(2).intervals([30, 60]))
        .send()
        .await
        .unwrap();
    let snoozed = Functions::new().register("tests.snooze", |_ctx: JobContext, (): ()| async {
        Err::<(), _>(JobError::retry_after("busy", Duration::from_secs(120)))
    });
    let snooze = queue
        .enqueue("tests.snooze", ())
        .retry(rqrs::Retry::new(1).interval(5))
        .send()
        .await
        .unwrap();
    let key = format!("rq:job:{}", job.id());
    assert_eq!(text(field(&server, &key, "retries_left").await), "2");
    assert_eq!(
        text(field(&server, &key, "retry_intervals").await),
        "[30,60]"
    );
    work(&conn, &["default"], 1, snoozed).await;
    let now = Utc::now().timestamp() as f64;
    let score = score_of(&server, "rq:scheduled:default", job.id().as_str())
        .await
        .unwrap();
    assert!(
        (now + 28.0..=now + 31.0).contains(&score),
        "the first interval: {score} vs {now}"
    );
    let own = score_of(&server, "rq:scheduled:default", snooze.id().as_str())
        .await
        .unwrap();
    assert!(
        (now + 118.0..=now + 121.0).contains(&own),
        "the job's own delay wins: {own}"
    );
    assert_eq!(text(field(&server, &key, "retries_left").await), "1");
    assert_eq!(text(field(&server, &key, "status").await), "scheduled");
    let entries = results(&server, job.id()).await;
    let types: Vec<&str> = entries
        .iter()
        .map(|(_, fields)| fields[0].1.as_str())
        .collect();
    assert_eq!(types, ["4"], "a retried failure is recorded as RETRIED");
}

#[tokio::test]
async fn a_repeating_job_keeps_no_ttl() {
    let (server, conn) = setup().await;
    let later = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .repeat(rqrs::Repeat::new(2).intervals([0, 50]))
        .send()
        .await
        .unwrap();
    let key = format!("rq:job:{}", later.id());
    assert_eq!(text(field(&server, &key, "repeats_left").await), "2");
    assert_eq!(
        text(field(&server, &key, "repeat_intervals").await),
        "[0,50]"
    );
    work(&conn, &["default"], 1, Functions::new()).await;
    let ttl: i64 = raw(&server, &["TTL", &key]).await;
    assert_eq!(ttl, -1, "a repeating job keeps no TTL (as RQ)");
    assert_eq!(text(field(&server, &key, "repeats_left").await), "1");
}

#[tokio::test]
async fn an_inline_queue_leaves_no_list_behind() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default").inline(rqrs_test::fixtures::functions());
    let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let keys: Vec<String> = raw(&server, &["KEYS", "rq:queue:*"]).await;
    assert!(keys.is_empty(), "nothing is left on any list: {keys:?}");
    let key = format!("rq:job:{}", job.id());
    assert!(field(&server, &key, "enqueued_at").await.is_some());
    assert_eq!(text(field(&server, &key, "worker_name").await), "inline");
}

#[tokio::test]
async fn a_requeued_job_carries_rqs_empty_exc_info_and_goes_to_its_origin() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "origin")
        .enqueue("fixtures.fail", ("no",))
        .send()
        .await
        .unwrap();
    work(&conn, &["origin"], 1, Functions::new()).await;
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
    // RQ marks a requeued job with exc_info = zlib(b"").
    let marker = field(&server, &format!("rq:job:{}", job.id()), "exc_info").await;
    assert_eq!(
        marker,
        Some(vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
    );
}

#[tokio::test]
async fn an_abandoned_runs_result_has_no_execution_fields() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    // As RQ's own workers leave a run: only its started-registry entry, and the status.
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:default", "0", job.id().as_str()],
    )
    .await;
    let _: i64 = raw(
        &server,
        &["HSET", &format!("rq:job:{}", job.id()), "status", "started"],
    )
    .await;
    let _: i64 = raw(
        &server,
        &["ZADD", "rq:wip:default", "1", &format!("{}:gone", job.id())],
    )
    .await;
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .cleanup()
            .await
            .unwrap(),
        1
    );
    let entries = results(&server, job.id()).await;
    let fields: Vec<&str> = entries[0].1.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        fields,
        ["type", "worker_name", "exc_string"],
        "RQ writes no execution fields for abandoned runs"
    );
    let score = score_of(&server, "rq:failed:default", job.id().as_str())
        .await
        .unwrap();
    let year = Utc::now().timestamp() as f64 + 31_536_000.0;
    assert!((year - 5.0..=year).contains(&score), "{score}");
    // A member that names no run is dropped.
    let _: i64 = raw(&server, &["ZADD", "rq:wip:default", "1", "not-a-run"]).await;
    StartedJobRegistry::new(&conn, "default")
        .cleanup()
        .await
        .unwrap();
    let members: Vec<String> = raw(&server, &["ZRANGE", "rq:wip:default", "0", "-1"]).await;
    assert!(members.is_empty(), "{members:?}");
}

#[tokio::test]
async fn cancel_scores_the_canceled_registry_by_the_time() {
    let (server, conn) = setup().await;
    let mut queued = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .send()
        .await
        .unwrap();
    queued.cancel().await.unwrap();
    let score = score_of(&server, "rq:canceled:default", queued.id().as_str())
        .await
        .unwrap();
    let now = Utc::now().timestamp() as f64;
    assert!((now - 5.0..=now).contains(&score), "{score} vs {now}");
    assert_eq!(
        text(field(&server, &format!("rq:job:{}", queued.id()), "status").await),
        "canceled"
    );
}

#[tokio::test]
async fn a_running_job_canceled_or_deleted_loses_its_runs_records() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let deleted = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
    let worker = rqrs::Worker::builder(&conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions())
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let task = tokio::spawn(worker.work());
    rqrs_test::wait_for("the job to start", Duration::from_secs(20), || async {
        let executions: Vec<String> = raw(
            &server,
            &["KEYS", &format!("rq:execution*{}*", deleted.id())],
        )
        .await;
        (executions.len() == 2).then_some(())
    })
    .await;
    deleted.delete(false).await.unwrap();
    assert_eq!(
        keys_naming(&server, deleted.id()).await,
        Vec::<String>::new()
    );
    stop.cold();
    task.await.unwrap().unwrap();
    assert_eq!(
        keys_naming(&server, deleted.id()).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn delete_removes_every_key_of_the_job() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let group = Group::create(&conn, Some("batch".to_owned())).unwrap();
    let jobs = group
        .enqueue_many(&queue, [queue.enqueue("fixtures.fail", ("no",))])
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let job = Job::fetch(&conn, jobs[0].id()).await.unwrap();
    let dependent = queue
        .enqueue("fixtures.noop", ())
        .depends_on(Dependency::new([job.id().clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys_naming(&server, job.id()).await,
        sorted(vec![
            format!("rq:job:{}", job.id()),
            format!("rq:job:{}:dependents", job.id()),
            format!("rq:results:{}", job.id()),
        ])
    );

    job.delete(false).await.unwrap();
    assert_eq!(keys_naming(&server, job.id()).await, Vec::<String>::new());
    assert!(
        score_of(&server, "rq:failed:default", job.id().as_str())
            .await
            .is_none()
    );
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:group:batch"]).await;
    assert!(members.is_empty());
    let groups: Vec<String> = raw(&server, &["SMEMBERS", "rq:groups"]).await;
    assert!(groups.is_empty());
    // Its dependency set still names the parent; only the parent's keys went.
    assert_eq!(
        keys_naming(&server, dependent.id()).await,
        sorted(vec![
            format!("rq:job::{}:dependencies", dependent.id()),
            format!("rq:job:{}", dependent.id()),
        ])
    );
}

#[tokio::test]
async fn delete_with_dependents_leaves_no_key_of_the_chain() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let parent = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    let child = queue
        .enqueue("fixtures.noop", ())
        .depends_on(Dependency::new([parent.id().clone()]))
        .send()
        .await
        .unwrap();
    let grandchild = Queue::new(&conn, "other")
        .enqueue("fixtures.noop", ())
        .depends_on(Dependency::new([child.id().clone()]))
        .send()
        .await
        .unwrap();
    parent.delete(true).await.unwrap();
    for job in [&parent, &child, &grandchild] {
        assert_eq!(keys_naming(&server, job.id()).await, Vec::<String>::new());
    }
}

#[tokio::test]
async fn groups_are_rqs_sets_pruned_by_maintenance() {
    let (server, conn) = setup().await;
    let left = crate::groups_with_expired_jobs(&conn).await;
    assert_eq!(
        text(field(&server, &format!("rq:job:{}", left.id()), "group_id").await),
        "kept"
    );
    let worker = rqrs::Worker::builder(&conn)
        .queues(["elsewhere"])
        .functions(Functions::new())
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let task = tokio::spawn(worker.work());
    rqrs_test::wait_for(
        "the groups to be pruned",
        Duration::from_secs(20),
        || async {
            let groups: Vec<String> = raw(&server, &["SMEMBERS", "rq:groups"]).await;
            let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:group:kept"]).await;
            (groups == ["kept"] && members == [left.id().as_str()]).then_some(())
        },
    )
    .await;
    stop.warm();
    task.await.unwrap().unwrap();
    let exists: i64 = raw(&server, &["EXISTS", "rq:group:emptied"]).await;
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn maintenance_releases_rqs_lock() {
    let (server, conn) = setup().await;
    Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .send()
        .await
        .unwrap();
    let past = Utc::now() - TimeDelta::hours(1);
    let id = rqrs::testing::abandon_next_run(&conn, "default", past)
        .await
        .unwrap();
    let worker = rqrs::Worker::builder(&conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions())
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let task = tokio::spawn(worker.work());
    rqrs_test::wait_for(
        "the run to be recovered",
        Duration::from_secs(20),
        || async {
            (Job::fetch(&conn, &id).await.unwrap().status() == JobStatus::Failed).then_some(())
        },
    )
    .await;
    // Held at most the maintenance interval more (2 s), so that the fleet cleans a queue that
    // often, then free for RQ's workers too.
    let left: i64 = raw(&server, &["PTTL", "rq:clean_registries:default"]).await;
    assert!(left <= 2000, "the maintenance lock is held {left} ms more");
    stop.warm();
    task.await.unwrap().unwrap();
    rqrs_test::wait_for("the lock to be free", Duration::from_secs(5), || async {
        let lock: i64 = raw(&server, &["EXISTS", "rq:clean_registries:default"]).await;
        (lock == 0).then_some(())
    })
    .await;
}

/// RQ 3.0's two new statuses, as its producers and workers write them into the job hash, are
/// read as such (not as a malformed job).
#[tokio::test]
async fn rq_3_statuses_are_read() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("tasks.add", (1, 2))
        .send()
        .await
        .unwrap();
    let key = format!("rq:job:{}", job.id());
    for (text, status) in [
        ("rate_limited", JobStatus::RateLimited),
        ("ready_to_enqueue", JobStatus::ReadyToEnqueue),
    ] {
        let () = raw(&server, &["HSET", &key, "status", text]).await;
        let read = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(read.status(), status);
        assert_eq!(status.as_str(), text);
        assert_eq!(text.parse::<JobStatus>().unwrap(), status);
        assert!(!status.is_terminal());
    }
}

/// Emptying a queue deletes its jobs' result streams too, as RQ 3.0's `Queue.empty()` does.
#[tokio::test]
async fn empty_deletes_the_jobs_results_as_rq_3_does() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("tasks.add", (1, 2)).send().await.unwrap();
    let stream = format!("rq:results:{}", job.id());
    let _: String = raw(&server, &["XADD", &stream, "*", "type", "4"]).await;
    assert_eq!(queue.empty().await.unwrap(), 1);
    assert!(keys_naming(&server, job.id()).await.is_empty());
}

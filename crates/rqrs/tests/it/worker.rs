use std::sync::{Arc, Mutex};
use std::time::Duration;

use rqrs::{
    FailedJobRegistry, FinishedJobRegistry, Functions, Job, JobContext, JobError, JobStatus, Queue,
    ResultType, StartedJobRegistry, Worker, WorkerState,
};
use serde_json::{Value, json};

use crate::{field, raw, setup, work};

const HANG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn success_is_recorded_in_rqs_format() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;

    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(job.return_value().await.unwrap(), Some(json!(3)));
    assert!(job.started_at().is_some() && job.ended_at() >= job.started_at());
    assert!(job.worker_name().is_some());
    assert_eq!(
        FinishedJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [job.id().clone()]
    );
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        0
    );

    let key = format!("rq:job:{}", job.id());
    let ttl: i64 = raw(&server, &["TTL", &key]).await;
    assert!(
        (490..=500).contains(&ttl),
        "default result_ttl is 500, got {ttl}"
    );
    let entries: Vec<(String, Vec<(String, String)>)> = raw(
        &server,
        &["XRANGE", &format!("rq:results:{}", job.id()), "-", "+"],
    )
    .await;
    let fields: std::collections::HashMap<_, _> = entries[0].1.iter().cloned().collect();
    assert_eq!(fields["type"], "1");
    assert_eq!(fields["return_value"], "Mw==", "base64 of the JSON 3");
    assert_eq!(fields["worker_name"], job.worker_name().unwrap());
    assert!(fields["execution_started_at"].parse::<f64>().is_ok());
    let executions: i64 = raw(&server, &["EXISTS", &format!("rq:executions:{}", job.id())]).await;
    assert_eq!(executions, 0, "the execution set is emptied");
    let worker = format!("rq:worker:{}", job.worker_name().unwrap());
    assert_eq!(
        field(&server, &worker, "successful_job_count").await,
        Some(b"1".to_vec())
    );
}

#[tokio::test]
async fn result_ttl_zero_deletes_the_job_and_minus_one_keeps_it() {
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
    work(&conn, &["default"], 2, Functions::new()).await;
    assert!(
        Job::fetch(&conn, gone.id())
            .await
            .unwrap_err()
            .is_no_such_job()
    );
    let ttl: i64 = raw(&server, &["TTL", &format!("rq:job:{}", kept.id())]).await;
    assert_eq!(ttl, -1);
    let score: String = raw(
        &server,
        &["ZSCORE", "rq:finished:default", kept.id().as_str()],
    )
    .await;
    assert_eq!(score, "inf");
    assert_eq!(
        FinishedJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [kept.id().clone()]
    );
}

#[tokio::test]
async fn failure_goes_to_the_failed_registry_with_its_message() {
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
    assert_eq!(job.status(), JobStatus::Failed);
    assert_eq!(job.exc_info().await.unwrap().as_deref(), Some("boom"));
    assert_eq!(
        job.latest_result().await.unwrap().unwrap().result_type(),
        ResultType::Failed
    );
    assert_eq!(job.return_value().await.unwrap(), None);
    let failed = FailedJobRegistry::new(&conn, "default")
        .job_ids()
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);
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
    let worker = format!("rq:worker:{}", job.worker_name().unwrap());
    assert_eq!(
        field(&server, &worker, "failed_job_count").await,
        Some(b"2".to_vec())
    );
}

#[tokio::test]
async fn bad_jobs_fail_with_a_reason_and_the_worker_goes_on() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let unknown = queue.enqueue("fixtures.nothing", ()).send().await.unwrap();
    let wrong = queue
        .enqueue("fixtures.add", ("x", 1))
        .send()
        .await
        .unwrap();
    let missing = queue.enqueue("fixtures.add", (1,)).send().await.unwrap();
    let panics = queue.enqueue("tests.panic", ()).send().await.unwrap();
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
    let good = queue.enqueue("fixtures.add", (2, 2)).send().await.unwrap();
    let panic = Functions::new().register("tests.panic", |_ctx: JobContext, (): ()| async move {
        if true {
            panic!("deliberate");
        }
        Ok::<(), JobError>(())
    });
    work(&conn, &["default"], 2, panic).await;

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
        reason(unknown.id().as_str())
            .await
            .contains("unknown function \"fixtures.nothing\"")
    );
    let wrong = reason(wrong.id().as_str()).await;
    assert!(
        wrong.contains("wrong arguments for fixtures.add")
            && wrong.contains("invalid type: string \"x\""),
        "{wrong}"
    );
    assert!(
        reason(missing.id().as_str())
            .await
            .contains("missing field `y`")
    );
    assert!(
        reason(panics.id().as_str())
            .await
            .contains("panicked: deliberate")
    );
    assert!(
        reason("pickled")
            .await
            .contains("serializer=JSONSerializer")
    );
    assert!(reason("garbage").await.contains("not valid JSON"));
    assert!(reason("nodata").await.contains("no data field"));
    let good = Job::fetch(&conn, good.id()).await.unwrap();
    assert_eq!(good.return_value().await.unwrap(), Some(json!(4)));
    assert_eq!(
        FailedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        7
    );
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn concurrency_runs_jobs_at_the_same_time() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    // Each job waits until all four run at once: with fewer slots the burst would hang.
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let together = Functions::new().register("tests.together", move |_ctx: JobContext, (): ()| {
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            Ok::<_, JobError>(())
        }
    });
    let blocking_barrier = Arc::new(std::sync::Barrier::new(2));
    let blocking = Functions::new().register_blocking(
        "tests.together_blocking",
        move |_ctx: JobContext, (): ()| {
            blocking_barrier.wait();
            Ok::<_, JobError>(())
        },
    );
    for _ in 0..4 {
        queue.enqueue("tests.together", ()).send().await.unwrap();
    }
    for _ in 0..2 {
        queue
            .enqueue("tests.together_blocking", ())
            .send()
            .await
            .unwrap();
    }
    work(&conn, &["default"], 4, together.merge(blocking)).await;
    assert_eq!(
        FinishedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        6
    );
}

#[tokio::test]
async fn queues_are_served_in_priority_order() {
    let (_server, conn) = setup().await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    let record = Functions::new().register("tests.record", move |ctx: JobContext, (): ()| {
        seen.lock().unwrap().push(ctx.origin().to_owned());
        async { Ok::<_, JobError>(()) }
    });
    for queue in ["low", "default", "high"] {
        for _ in 0..2 {
            Queue::new(&conn, queue)
                .enqueue("tests.record", ())
                .send()
                .await
                .unwrap();
        }
    }
    work(&conn, &["high", "default", "low"], 1, record).await;
    assert_eq!(
        *order.lock().unwrap(),
        ["high", "high", "default", "default", "low", "low"]
    );
}

#[tokio::test]
async fn an_async_job_is_cancelled_at_its_timeout() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue("fixtures.sleep", (30,))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Failed);
    assert!(
        job.exc_info()
            .await
            .unwrap()
            .unwrap()
            .contains("exceeded maximum timeout value (1 seconds)")
    );
}

/// Starts a non-burst worker in a task, with heartbeats every second; returns its name, stop
/// handle and task.
fn spawn_worker(
    conn: &rqrs::Connection,
    concurrency: usize,
) -> (
    String,
    rqrs::ShutdownHandle,
    tokio::task::JoinHandle<rqrs::Result<()>>,
) {
    spawn_worker_beating(conn, concurrency, Duration::from_secs(1))
}

/// [`spawn_worker`] with heartbeats every `heartbeat`.
fn spawn_worker_beating(
    conn: &rqrs::Connection,
    concurrency: usize,
    heartbeat: Duration,
) -> (
    String,
    rqrs::ShutdownHandle,
    tokio::task::JoinHandle<rqrs::Result<()>>,
) {
    let worker = Worker::builder(conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions())
        .concurrency(concurrency)
        .heartbeat_interval(heartbeat)
        .build()
        .unwrap();
    let name = worker.name().to_owned();
    let handle = worker.shutdown_handle();
    (name, handle, tokio::spawn(worker.work()))
}

async fn wait_status(conn: &rqrs::Connection, id: &rqrs::JobId, status: JobStatus) -> Job {
    rqrs_test::wait_for(&format!("{id} to be {status}"), HANG, || async {
        Job::fetch(conn, id)
            .await
            .ok()
            .filter(|job| job.status() == status)
    })
    .await
}

#[tokio::test]
async fn a_waiting_worker_takes_new_jobs_and_registers_as_rq_does() {
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
    assert!(
        field(&server, &key, "birth").await.is_some()
            && field(&server, &key, "hostname").await.is_some()
    );
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:workers"]).await;
    assert_eq!(members, std::slice::from_ref(&key));
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:workers:default"]).await;
    assert_eq!(members, std::slice::from_ref(&key));

    let queue = Queue::new(&conn, "default");
    let job = queue.enqueue("fixtures.sleep", (2,)).send().await.unwrap();
    wait_status(&conn, job.id(), JobStatus::Started).await;
    let workers = Worker::all(&conn).await.unwrap();
    assert_eq!(workers[0].state, WorkerState::Busy);
    assert_eq!(workers[0].current_job.as_deref(), Some(job.id().as_str()));
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [job.id().clone()]
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
}

#[tokio::test]
async fn warm_shutdown_finishes_running_jobs_and_cold_puts_them_back() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let (_, stop, task) = spawn_worker(&conn, 1);
    let job = queue.enqueue("fixtures.sleep", (1,)).send().await.unwrap();
    let next = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    wait_status(&conn, job.id(), JobStatus::Started).await;
    stop.warm();
    task.await.unwrap().unwrap();
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Finished
    );
    assert_eq!(
        queue.job_ids().await.unwrap(),
        [next.id().clone()],
        "no new job was taken"
    );

    queue.empty().await.unwrap();
    let (_, stop, task) = spawn_worker(&conn, 1);
    let long = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
    wait_status(&conn, long.id(), JobStatus::Started).await;
    stop.cold();
    task.await.unwrap().unwrap();
    let long = Job::fetch(&conn, long.id()).await.unwrap();
    assert_eq!(long.status(), JobStatus::Queued);
    assert_eq!(queue.job_ids().await.unwrap(), [long.id().clone()]);
    assert_eq!(
        StartedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_second_worker_with_a_live_name_is_refused() {
    let (_server, conn) = setup().await;
    let worker = |name: &str| {
        Worker::builder(&conn)
            .queues(["default"])
            .functions(rqrs_test::fixtures::functions())
            .name(name)
            .build()
            .unwrap()
    };
    let first = worker("same");
    let stop = first.shutdown_handle();
    let task = tokio::spawn(first.work());
    rqrs_test::wait_for("the first worker", HANG, || async {
        (Worker::all(&conn).await.unwrap().len() == 1).then_some(())
    })
    .await;
    let error = worker("same").work().await.unwrap_err();
    assert!(matches!(error, rqrs::Error::WorkerExists(_)), "{error}");
    stop.warm();
    task.await.unwrap().unwrap();
    // Once dead, the name can be used again.
    let again = worker("same");
    let stop = again.shutdown_handle();
    let task = tokio::spawn(again.work());
    rqrs_test::wait_for("the second worker", HANG, || async {
        (Worker::all(&conn).await.unwrap().len() == 1).then_some(())
    })
    .await;
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn echo_returns_args_and_kwargs() {
    let (_server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.echo", (1, "a"))
        .kwargs(json!({"k": [true]}))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 1, Functions::new()).await;
    let value: Option<Value> = Job::fetch(&conn, job.id())
        .await
        .unwrap()
        .return_value()
        .await
        .unwrap();
    assert_eq!(
        value,
        Some(json!({"args": [1, "a"], "kwargs": {"k": [true]}}))
    );
}

#[tokio::test]
async fn an_expired_worker_hash_is_registered_again_in_full() {
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

#[tokio::test]
async fn a_worker_fails_runs_abandoned_by_a_dead_worker() {
    let (server, conn) = setup().await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .send()
        .await
        .unwrap();
    // As a worker killed mid-job leaves it: in the started registry, its deadline passed.
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
    let (_, stop, task) = spawn_worker(&conn, 1);
    let failed = wait_status(&conn, job.id(), JobStatus::Failed).await;
    assert!(
        failed
            .exc_info()
            .await
            .unwrap()
            .unwrap()
            .contains("AbandonedJobError")
    );
    let lock: i64 = raw(&server, &["EXISTS", "rq:clean_registries:default"]).await;
    assert_eq!(lock, 0, "the maintenance lock is released");
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_suspended_worker_takes_no_job_until_resumed() {
    let (server, conn) = setup().await;
    rqrs::suspend(&conn, None).await.unwrap();
    assert!(rqrs::is_suspended(&conn).await.unwrap());
    let (name, stop, task) = spawn_worker(&conn, 1);
    let key = format!("rq:worker:{name}");
    rqrs_test::wait_for("the worker to see the suspension", HANG, || async {
        (field(&server, &key, "state").await == Some(b"suspended".to_vec())).then_some(())
    })
    .await;
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.noop", ())
        .send()
        .await
        .unwrap();
    // A burst worker gives up at once while suspended, leaving the job queued.
    work(&conn, &["default"], 1, Functions::new()).await;
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Queued
    );
    rqrs::resume(&conn).await.unwrap();
    wait_status(&conn, job.id(), JobStatus::Finished).await;
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn control_commands_stop_a_job_kill_running_ones_and_shut_the_worker_down() {
    let (_server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let (name, _stop, task) = spawn_worker(&conn, 2);
    let stopped = queue
        .enqueue("fixtures.sleep", (60,))
        .on_stopped(rqrs::Callback::new("fixtures.on_failure_mark"))
        .send()
        .await
        .unwrap();
    let killed = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
    wait_status(&conn, stopped.id(), JobStatus::Started).await;
    wait_status(&conn, killed.id(), JobStatus::Started).await;
    // The control channel is subscribed once the worker is up; a command before that is lost.
    rqrs_test::wait_for("the stop-job command to be heard", HANG, || async {
        rqrs::send_stop_job_command(&conn, stopped.id())
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let stopped = wait_status(&conn, stopped.id(), JobStatus::Stopped).await;
    assert_eq!(
        stopped.exc_info().await.unwrap().as_deref(),
        Some("Job stopped by user, work-horse terminated.")
    );
    assert_eq!(
        stopped.meta().get("callback"),
        Some(&json!("failure")),
        "on_stopped ran"
    );
    assert_eq!(
        Job::fetch(&conn, killed.id()).await.unwrap().status(),
        JobStatus::Started,
        "the other job runs on"
    );
    assert!(rqrs::send_kill_horse_command(&conn, &name).await.unwrap());
    let killed = wait_status(&conn, killed.id(), JobStatus::Failed).await;
    assert!(
        killed
            .exc_info()
            .await
            .unwrap()
            .unwrap()
            .contains("kill-horse")
    );
    assert_eq!(
        FailedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        2
    );
    assert!(rqrs::send_shutdown_command(&conn, &name).await.unwrap());
    tokio::time::timeout(HANG, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn max_jobs_max_idle_time_and_round_robin() {
    let (_server, conn) = setup().await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    let record = Functions::new().register("tests.record", move |ctx: JobContext, (): ()| {
        seen.lock().unwrap().push(ctx.origin().to_owned());
        async { Ok::<_, JobError>(()) }
    });
    for queue in ["a", "b"] {
        for _ in 0..3 {
            Queue::new(&conn, queue)
                .enqueue("tests.record", ())
                .send()
                .await
                .unwrap();
        }
    }
    let worker = Worker::builder(&conn)
        .queues(["a", "b"])
        .functions(record)
        .dequeue_strategy(rqrs::DequeueStrategy::RoundRobin)
        .max_jobs(4)
        .max_idle_time(Duration::from_millis(200))
        .build()
        .unwrap();
    // Not burst: it stops by itself after 4 jobs.
    tokio::time::timeout(HANG, worker.work())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*order.lock().unwrap(), ["a", "b", "a", "b"]);
    // And after a short idle time once the queues are empty.
    let worker = Worker::builder(&conn)
        .queues(["a", "b"])
        .functions(rqrs_test::fixtures::functions().merge(
            Functions::new().register("tests.record", |_ctx: JobContext, (): ()| async {
                Ok::<_, JobError>(())
            }),
        ))
        .max_idle_time(Duration::from_millis(300))
        .build()
        .unwrap();
    tokio::time::timeout(HANG, worker.work())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Queue::new(&conn, "a").count().await.unwrap()
            + Queue::new(&conn, "b").count().await.unwrap(),
        0
    );
}

#[tokio::test]
async fn heartbeats_go_on_while_an_async_job_never_yields() {
    let (server, conn) = setup().await;
    // An async function that blocks its runtime thread: on a current-thread runtime (as in this
    // test) nothing else of the worker's main loop could run while it does.
    let hog = Functions::new().register(
        "tests.hog",
        |_ctx: JobContext, (millis,): (u64,)| async move {
            std::thread::sleep(Duration::from_millis(millis));
            Ok::<_, JobError>(())
        },
    );
    let worker = Worker::builder(&conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions().merge(hog))
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let name = worker.name().to_owned();
    let stop = worker.shutdown_handle();
    let job = Queue::new(&conn, "default")
        .enqueue("tests.hog", (3500,))
        .send()
        .await
        .unwrap();
    let task = tokio::spawn(worker.work());
    let key = format!("rq:worker:{name}");
    // Read the heartbeat from another thread's runtime: this one is blocked by the job.
    let url = server.url();
    let beats = tokio::task::spawn_blocking(move || {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_connection().unwrap();
        let mut seen = std::collections::HashSet::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline && seen.len() < 3 {
            let beat: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg("last_heartbeat")
                .query(&mut conn)
                .unwrap();
            let state: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg("state")
                .query(&mut conn)
                .unwrap();
            if state.as_deref() == Some("busy") {
                seen.extend(beat);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        seen.len()
    })
    .await
    .unwrap();
    assert!(
        beats >= 3,
        "heartbeats kept coming while the job held the runtime: {beats}"
    );
    wait_status(&conn, job.id(), JobStatus::Finished).await;
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
    let id = job.id().as_str().as_bytes().to_vec();
    rqrs_test::wait_for("the dequeue's reply to be lost", HANG, || async {
        proxy
            .lost_replies()
            .iter()
            .any(|reply| {
                reply.windows(id.len()).any(|window| window == id)
                    && reply.windows(10).any(|window| window == b"created_at")
            })
            .then_some(())
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
    assert_eq!(
        proxy.lost_replies(),
        [b":1\r\n".to_vec()],
        "the finish's reply was lost"
    );
    stop.warm();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_does_not_hold_the_jobs_slot() {
    let (_server, conn) = setup().await;
    // An endpoint that takes the request and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", listener.local_addr().unwrap());
    let (accepted, mut requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = accepted.send(socket);
        }
    });
    let queue = Queue::new(&conn, "default");
    let first = queue
        .enqueue("fixtures.add", (1, 1))
        .webhook(
            rqrs::Webhook::new(hook, rqrs::WebhookStatus::Finished)
                .timeout(Duration::from_secs(600)),
        )
        .send()
        .await
        .unwrap();
    let (_, stop, task) = spawn_worker(&conn, 1);
    let pending = requests.recv().await.expect("the webhook is being sent");
    // One slot, held by nothing now: the next job runs while the webhook waits.
    let second = queue.enqueue("fixtures.add", (2, 2)).send().await.unwrap();
    wait_status(&conn, second.id(), JobStatus::Finished).await;
    assert_eq!(
        Job::fetch(&conn, first.id()).await.unwrap().status(),
        JobStatus::Finished
    );
    // A cold stop does not wait for webhooks.
    stop.cold();
    task.await.unwrap().unwrap();
    drop(pending);
}

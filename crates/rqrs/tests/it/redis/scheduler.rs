//! The scheduler in RQ's layout: the lock `rq:scheduler-lock:<q>` (value, TTL, shared with
//! Python's schedulers), the hash `rq:scheduler:<name>`, and the fields of due jobs that RQ's
//! scheduler reads (`enqueue_at_front_on_retry` once a job has run, `ttl`).

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rqrs::{Job, JobId, JobStatus, Queue, ScheduledJobRegistry, Scheduler};
use rqrs_test::{RedisServer, wait_for};
use tokio::sync::oneshot;

use super::{raw, setup};

/// Bounds a hang; never a delay the tests rely on.
const HANG: Duration = Duration::from_secs(30);

fn lock_key(queue: &str) -> String {
    format!("rq:scheduler-lock:{queue}")
}

async fn lock_holder(server: &RedisServer, queue: &str) -> Option<String> {
    raw(server, &["GET", &lock_key(queue)]).await
}

async fn status(conn: &rqrs::Connection, id: &JobId) -> JobStatus {
    Job::fetch(conn, id).await.unwrap().status()
}

/// Starts `scheduler.run` in a task; send on the returned channel to stop it.
fn spawn(
    scheduler: Scheduler,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<rqrs::Result<()>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async {
        stopped.await.ok();
    }));
    (stop, task)
}

#[tokio::test]
async fn due_jobs_follow_rqs_fields_and_their_ttl_starts_again() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let past = Utc::now() - TimeDelta::seconds(10);
    let id = |id: &str| -> JobId { id.parse().unwrap() };
    let waiting = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    // Equal scores are taken in the order of their ids, hence the letters.
    for (name, at_front) in [("a-front", true), ("c-tail", false)] {
        queue
            .enqueue_at(past, "fixtures.noop", ())
            .job_id(id(name))
            .at_front(at_front)
            .ttl(Duration::from_secs(500))
            .send()
            .await
            .unwrap();
    }
    // Retries ask for the head with enqueue_at_front_on_retry; it counts once the job has run.
    for (name, ended_at) in [
        ("b-retried", "2026-01-01T00:00:00.000000Z"),
        ("d-not-run", ""),
    ] {
        queue
            .enqueue_at(past, "fixtures.noop", ())
            .job_id(id(name))
            .send()
            .await
            .unwrap();
        let key = format!("rq:job:{name}");
        let _: i64 = raw(
            &server,
            &[
                "HSET",
                &key,
                "enqueue_at_front_on_retry",
                "1",
                "ended_at",
                ended_at,
            ],
        )
        .await;
    }
    queue
        .enqueue_at(past, "fixtures.noop", ())
        .job_id(id("e-gone"))
        .send()
        .await
        .unwrap();
    let _: i64 = raw(&server, &["DEL", "rq:job:e-gone"]).await;
    let later = queue
        .enqueue_in(Duration::from_secs(3600), "fixtures.noop", ())
        .send()
        .await
        .unwrap();

    let scheduler = Scheduler::builder(&conn)
        .queues(["default"])
        .build()
        .unwrap();
    assert_eq!(scheduler.run_once().await.unwrap(), 4);

    let ids: Vec<String> = queue
        .job_ids()
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        ids,
        [
            "b-retried",
            "a-front",
            waiting.id().as_str(),
            "c-tail",
            "d-not-run"
        ]
    );
    for name in ["a-front", "b-retried", "c-tail", "d-not-run"] {
        let job = Job::fetch(&conn, &id(name)).await.unwrap();
        assert_eq!(job.status(), JobStatus::Queued, "{name}");
        assert!(job.enqueued_at().is_some(), "{name}");
    }
    let ttl: i64 = raw(&server, &["TTL", "rq:job:c-tail"]).await;
    assert!(
        (490..=500).contains(&ttl),
        "the job's ttl starts again: {ttl}"
    );
    assert_eq!(
        ScheduledJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [later.id().clone()],
        "the gone job's id is dropped, the later job stays"
    );
    let queues: Vec<String> = raw(&server, &["SMEMBERS", "rq:queues"]).await;
    assert_eq!(queues, ["rq:queue:default"]);
}

#[tokio::test]
async fn only_the_lock_holder_enqueues_due_jobs() {
    let (server, conn) = setup().await;
    let holder = Scheduler::builder(&conn)
        .queues(["default"])
        .name("scheduler-a")
        .build()
        .unwrap();
    let other = Scheduler::builder(&conn)
        .queues(["default"])
        .name("scheduler-b")
        .build()
        .unwrap();
    assert_eq!(holder.acquire_locks().await.unwrap(), ["default"]);
    assert!(other.acquire_locks().await.unwrap().is_empty());
    assert_eq!(
        holder.acquire_locks().await.unwrap(),
        ["default"],
        "refreshed"
    );
    assert_eq!(
        lock_holder(&server, "default").await.as_deref(),
        Some("scheduler-a")
    );
    let ttl: i64 = raw(&server, &["TTL", &lock_key("default")]).await;
    assert!((1..=10).contains(&ttl), "{ttl}");

    let queue = Queue::new(&conn, "default");
    let job = queue
        .enqueue_at(Utc::now() - TimeDelta::seconds(1), "fixtures.noop", ())
        .send()
        .await
        .unwrap();
    assert_eq!(other.enqueue_scheduled_jobs().await.unwrap(), 0);
    assert_eq!(other.run_once().await.unwrap(), 0);
    assert_eq!(status(&conn, job.id()).await, JobStatus::Scheduled);
    assert_eq!(queue.count().await.unwrap(), 0);

    assert_eq!(holder.enqueue_scheduled_jobs().await.unwrap(), 1);
    assert_eq!(queue.job_ids().await.unwrap(), [job.id().clone()]);

    other.release_locks().await.unwrap();
    assert_eq!(
        lock_holder(&server, "default").await.as_deref(),
        Some("scheduler-a"),
        "a scheduler releases only its own locks"
    );
    holder.release_locks().await.unwrap();
    assert_eq!(lock_holder(&server, "default").await, None);
}

#[tokio::test]
async fn a_lock_left_by_a_dead_scheduler_is_taken_over_once_it_expires() {
    let (server, conn) = setup().await;
    // A holder that died without releasing: its lock runs out by itself.
    let _: String = raw(&server, &["SET", &lock_key("default"), "dead", "EX", "1"]).await;
    let job = Queue::new(&conn, "default")
        .enqueue_at(Utc::now() - TimeDelta::seconds(1), "fixtures.noop", ())
        .send()
        .await
        .unwrap();

    let scheduler = Scheduler::builder(&conn)
        .queues(["default"])
        .build()
        .unwrap();
    let name = scheduler.name().to_owned();
    let (stop, task) = spawn(scheduler);
    wait_for("the lock to be taken over", HANG, || async {
        (lock_holder(&server, "default").await.as_deref() == Some(name.as_str())).then_some(())
    })
    .await;
    wait_for("the due job to be enqueued", HANG, || async {
        (status(&conn, job.id()).await == JobStatus::Queued).then_some(())
    })
    .await;

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(lock_holder(&server, "default").await, None);
}

#[tokio::test]
async fn a_running_scheduler_has_its_hash_and_releases_its_locks_on_stop() {
    let (server, conn) = setup().await;
    let _: String = raw(&server, &["SET", &lock_key("other"), "someone-else"]).await;
    let scheduler = Scheduler::builder(&conn)
        .queues(["high", "default", "other"])
        .name("s1")
        .build()
        .unwrap();
    let (stop, task) = spawn(scheduler);
    wait_for("the locks", HANG, || async {
        let high = lock_holder(&server, "high").await;
        let default = lock_holder(&server, "default").await;
        (high.as_deref() == Some("s1") && default.as_deref() == Some("s1")).then_some(())
    })
    .await;
    let hash: std::collections::HashMap<String, String> =
        raw(&server, &["HGETALL", "rq:scheduler:s1"]).await;
    assert_eq!(hash["name"], "s1");
    assert_eq!(hash["queues"], "high,default,other");
    assert_eq!(hash["pid"], std::process::id().to_string());
    assert!(!hash["hostname"].is_empty());
    for field in ["created_at", "last_heartbeat"] {
        assert!(
            chrono::NaiveDateTime::parse_from_str(&hash[field], "%Y-%m-%dT%H:%M:%S%.6fZ").is_ok(),
            "{field}: {}",
            hash[field]
        );
    }
    let ttl: i64 = raw(&server, &["TTL", "rq:scheduler:s1"]).await;
    assert!((1..=10).contains(&ttl), "{ttl}");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(lock_holder(&server, "high").await, None);
    assert_eq!(lock_holder(&server, "default").await, None);
    assert_eq!(
        lock_holder(&server, "other").await.as_deref(),
        Some("someone-else")
    );
    let exists: i64 = raw(&server, &["EXISTS", "rq:scheduler:s1"]).await;
    assert_eq!(exists, 0);
}

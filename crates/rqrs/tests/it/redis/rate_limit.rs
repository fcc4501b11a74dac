//! Rate limits in RQ 3.0's layout (`rq:rl-keys`, `rq:rl:<key>`, `:allowed`, `:rate_limited`,
//! the job's `rate_limit_key` and `rate_limit_concurrency`), and the maintenance that gives back
//! the slots another process leaked. What a limit does is in the behaviour suite
//! (`behaviour/rate_limit.rs`), on every backend.

use rqrs::{Functions, Job, JobStatus, Queue, RateLimit};
use rqrs_test::RedisServer;

use super::{field, raw, setup};
use crate::work;

/// How many of the limit's jobs are queued or running, and how many wait.
async fn slots(server: &RedisServer, key: &str) -> (usize, usize) {
    (
        raw(server, &["ZCARD", &format!("rq:rl:{key}:allowed")]).await,
        raw(server, &["ZCARD", &format!("rq:rl:{key}:rate_limited")]).await,
    )
}

async fn status(conn: &rqrs::Connection, id: &rqrs::JobId) -> JobStatus {
    Job::fetch(conn, id).await.unwrap().status()
}

#[tokio::test]
async fn a_limit_is_kept_in_rq_3s_keys_and_fields() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let job = queue
            .enqueue("fixtures.noop", ())
            .rate_limit(RateLimit::new("api", 3))
            .send()
            .await
            .unwrap();
        ids.push(job.id().clone());
    }
    // As RQ 3.0 writes it: three hold a slot and are queued, the others wait.
    assert_eq!(slots(&server, "api").await, (3, 2));
    let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:rl-keys"]).await;
    assert_eq!(members, ["api"]);
    assert_eq!(
        field(&server, "rq:rl:api", "concurrency").await,
        Some(b"3".to_vec())
    );
    let key = format!("rq:job:{}", ids[4]);
    assert_eq!(
        field(&server, &key, "rate_limit_key").await,
        Some(b"api".to_vec())
    );
    assert_eq!(
        field(&server, &key, "rate_limit_concurrency").await,
        Some(b"3".to_vec())
    );
    assert_eq!(
        field(&server, &key, "status").await,
        Some(b"rate_limited".to_vec())
    );
    work(&conn, &["default"], 16, Functions::new()).await;
    assert_eq!(slots(&server, "api").await, (0, 0));
}

#[tokio::test]
async fn maintenance_gives_back_a_leaked_slot_and_drops_an_idle_limit() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let holder = queue
        .enqueue("fixtures.noop", ())
        .rate_limit(RateLimit::new("leak", 1))
        .send()
        .await
        .unwrap();
    let waiting = queue
        .enqueue("fixtures.noop", ())
        .rate_limit(RateLimit::new("leak", 1))
        .send()
        .await
        .unwrap();
    // A Python worker died between its outcome and its release: the slot is held by a job
    // that has ended.
    let _: i64 = raw(
        &server,
        &["LREM", "rq:queue:default", "0", holder.id().as_str()],
    )
    .await;
    let _: i64 = raw(
        &server,
        &[
            "HSET",
            &format!("rq:job:{}", holder.id()),
            "status",
            "finished",
        ],
    )
    .await;
    assert_eq!(status(&conn, waiting.id()).await, JobStatus::RateLimited);
    // A worker's maintenance (every 2 s) gives the slot back; the waiting job then runs, and a
    // later maintenance finds nothing held or waiting and drops the limit.
    let (_name, stop, task) = crate::spawn_worker(&conn, 2);
    crate::wait_status(&conn, waiting.id(), JobStatus::Finished).await;
    rqrs_test::wait_for("the idle limit to go", crate::HANG, || async {
        let left: i64 = raw(&server, &["EXISTS", "rq:rl:leak"]).await;
        let members: Vec<String> = raw(&server, &["SMEMBERS", "rq:rl-keys"]).await;
        (left == 0 && members.is_empty()).then_some(())
    })
    .await;
    stop.warm();
    task.await.unwrap().unwrap();
}

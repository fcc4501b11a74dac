//! The key prefix (`ConnectOptions::key_prefix`, RQ 3.0's `RQ_KEY_PREFIX`): every key a
//! producer, a worker, the scheduler and the registries write starts with it, Lua scripts
//! included, and connections on another prefix see none of the data.

use std::time::Duration;

use chrono::Utc;
use rqrs::{
    CanceledJobRegistry, Dependency, FailedJobRegistry, Group, Job, JobStatus, Queue, Retry,
    Scheduler, Worker,
};
use rqrs_test::RedisServer;
use serde_json::json;

use super::raw;
use crate::work;

async fn connect(server: &RedisServer, prefix: &str) -> rqrs::Connection {
    rqrs::ConnectOptions::new(server.url())
        .key_prefix(prefix)
        .connect()
        .await
        .expect("connects")
}

#[tokio::test]
async fn every_key_starts_with_the_key_prefix() {
    let server = RedisServer::start();
    let conn = connect(&server, "{app}").await;
    let queue = Queue::new(&conn, "default");

    // Plain, dependent, grouped, retried, failed, scheduled, canceled and deleted jobs.
    let parent = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let child = queue
        .enqueue("fixtures.add", (3, 4))
        .depends_on(Dependency::new([parent.id().clone()]))
        .send()
        .await
        .unwrap();
    let group = Group::create(&conn, Some("g1".to_owned())).unwrap();
    group
        .enqueue_many(
            &queue,
            [queue.enqueue("fixtures.echo", (json!("in a group"),))],
        )
        .await
        .unwrap();
    let failing = queue
        .enqueue("fixtures.fail", ("boom",))
        .retry(Retry::new(1))
        .send()
        .await
        .unwrap();
    let mut canceled = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    canceled.cancel().await.unwrap();
    let deleted = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    deleted.delete(false).await.unwrap();
    let due = queue
        .enqueue_at(
            Utc::now() - chrono::TimeDelta::seconds(1),
            "fixtures.add",
            (5, 6),
        )
        .send()
        .await
        .unwrap();
    let scheduler = Scheduler::builder(&conn)
        .queues(["default"])
        .build()
        .unwrap();
    assert_eq!(scheduler.run_once().await.unwrap(), 1);
    rqrs::suspend(&conn, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    rqrs::resume(&conn).await.unwrap();

    work(&conn, &["default"], 4, rqrs::Functions::new()).await;

    for id in [parent.id(), child.id(), due.id()] {
        let job = Job::fetch(&conn, id).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished, "{id}");
    }
    assert_eq!(
        Job::fetch(&conn, failing.id()).await.unwrap().status(),
        JobStatus::Failed
    );
    let failed = FailedJobRegistry::new(&conn, "default");
    assert_eq!(failed.count().await.unwrap(), 1);
    failed.requeue(failing.id()).await.unwrap();
    assert_eq!(
        CanceledJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        1
    );
    assert_eq!(queue.empty().await.unwrap(), 1);

    // A live worker's registration and channel are under the prefix too.
    let worker = Worker::builder(&conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions())
        .build()
        .unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(worker.work());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys: Vec<String> = raw(&server, &["KEYS", "*"]).await;
    let channels: Vec<String> = raw(&server, &["PUBSUB", "CHANNELS"]).await;
    stop.warm();
    running.await.unwrap().unwrap();

    assert!(
        keys.iter().any(|key| key.starts_with("{app}:worker:")),
        "{keys:?}"
    );
    assert!(keys.len() > 10, "{keys:?}");
    let stray: Vec<&String> = keys
        .iter()
        .filter(|key| !key.starts_with("{app}:"))
        .collect();
    assert!(stray.is_empty(), "keys outside the prefix: {stray:?}");
    assert!(
        !channels.is_empty() && channels.iter().all(|c| c.starts_with("{app}:pubsub:")),
        "{channels:?}"
    );

    // Another prefix is another namespace.
    let other = rqrs::connect(&server.url()).await.unwrap();
    assert!(Queue::all(&other).await.unwrap().is_empty());
    assert!(Job::fetch(&other, parent.id()).await.is_err());
    assert_eq!(Queue::all(&conn).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_key_prefix_rq_does_not_allow_is_refused() {
    let server = RedisServer::start();
    let error = rqrs::ConnectOptions::new(server.url())
        .key_prefix("my app")
        .connect()
        .await
        .expect_err("a space is not allowed");
    assert!(error.to_string().contains("key prefix"), "{error}");
}

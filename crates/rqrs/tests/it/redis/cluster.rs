//! Redis Cluster (three masters started by the harness) with a hash-tagged key prefix: every
//! key is in one slot, served by one master, and every script runs there. Producers, workers,
//! the scheduler, registries, groups, rate limits and control commands work as on one server;
//! a prefix without a hash tag is refused.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rqrs::{
    Dependency, FailedJobRegistry, Group, Job, JobStatus, Queue, RateLimit, Retry, Scheduler,
    Worker, WorkerState,
};
use rqrs_test::{CLUSTER_PREFIX, RedisCluster};

use crate::{HANG, work};

async fn connect(cluster: &RedisCluster) -> rqrs::Connection {
    rqrs::ConnectOptions::new(cluster.url())
        .key_prefix(CLUSTER_PREFIX)
        .connect()
        .await
        .expect("connects to the cluster")
}

/// Every key on every node, by node.
fn keys_by_node(cluster: &RedisCluster) -> Vec<Vec<String>> {
    cluster
        .nodes()
        .iter()
        .map(|node| {
            let mut conn = node.client().get_connection().unwrap();
            redis::cmd("KEYS").arg("*").query(&mut conn).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_on_a_redis_cluster_in_one_slot() {
    let cluster = RedisCluster::start();
    let conn = connect(&cluster).await;
    let queue = Queue::new(&conn, "default");

    let parent = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let child = queue
        .enqueue("fixtures.add", (3, 4))
        .depends_on(Dependency::new([parent.id().clone()]))
        .send()
        .await
        .unwrap();
    let group = Group::create(&conn, Some("g".to_owned())).unwrap();
    group
        .enqueue_many(&queue, [queue.enqueue("fixtures.add", (5, 6))])
        .await
        .unwrap();
    let limited: Vec<Job> = futures_util::future::try_join_all((0..4).map(|_| {
        queue
            .enqueue("fixtures.noop", ())
            .rate_limit(RateLimit::new("api", 1))
            .send()
    }))
    .await
    .unwrap();
    let failing = queue
        .enqueue("fixtures.fail", ("boom",))
        .retry(Retry::new(1))
        .send()
        .await
        .unwrap();
    let due = queue
        .enqueue_at(Utc::now() - TimeDelta::seconds(1), "fixtures.add", (7, 8))
        .send()
        .await
        .unwrap();
    let mut canceled = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
    canceled.cancel().await.unwrap();
    let scheduler = Scheduler::builder(&conn)
        .queues(["default"])
        .build()
        .unwrap();
    assert_eq!(scheduler.run_once().await.unwrap(), 1);

    work(&conn, &["default"], 4, rqrs::Functions::new()).await;
    for job in [&parent, &child, &due] {
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Finished
        );
    }
    for job in &limited {
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Finished
        );
    }
    assert_eq!(
        Job::fetch(&conn, child.id())
            .await
            .unwrap()
            .return_value()
            .await
            .unwrap(),
        Some(serde_json::json!(7))
    );
    let failed = FailedJobRegistry::new(&conn, "default");
    assert_eq!(failed.job_ids().await.unwrap(), [failing.id().clone()]);
    failed.requeue(failing.id()).await.unwrap();
    assert_eq!(queue.count().await.unwrap(), 1);
    Job::fetch(&conn, failing.id())
        .await
        .unwrap()
        .delete(false)
        .await
        .unwrap();

    // A live worker, its registration, and a stop command over the cluster's pub/sub.
    let slow = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
    let worker = Worker::builder(&conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions())
        .build()
        .unwrap();
    let name = worker.name().to_owned();
    let stop = worker.shutdown_handle();
    let task = tokio::spawn(worker.work());
    rqrs_test::wait_for("the worker to be busy", HANG, || async {
        Worker::all(&conn)
            .await
            .ok()?
            .into_iter()
            .find(|info| info.name == name && info.state == WorkerState::Busy)
    })
    .await;
    assert!(rqrs::send_stop_job_command(&conn, slow.id()).await.unwrap());
    crate::wait_status(&conn, slow.id(), JobStatus::Stopped).await;
    rqrs::suspend(&conn, None).await.unwrap();
    assert!(rqrs::is_suspended(&conn).await.unwrap());
    rqrs::resume(&conn).await.unwrap();
    stop.warm();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // Everything is in one slot: on one node, under the prefix.
    let by_node = keys_by_node(&cluster);
    let holding: Vec<&Vec<String>> = by_node.iter().filter(|keys| !keys.is_empty()).collect();
    assert_eq!(holding.len(), 1, "keys on several nodes: {by_node:?}");
    assert!(
        holding[0].iter().all(|key| key.starts_with("{rq}:")),
        "{holding:?}"
    );
}

#[tokio::test]
async fn a_cluster_needs_a_hash_tagged_prefix() {
    let cluster = RedisCluster::start();
    let error = rqrs::connect(&cluster.url())
        .await
        .expect_err("the default prefix rq has no hash tag");
    let text = error.to_string();
    assert!(text.contains("hash tag") && text.contains("{rq}"), "{text}");
}

//! Integration tests of the library: the behaviour suite (`behaviour/`: the public API only,
//! each test written once and run on every backend) and the Redis suite (`redis/`: RQ's layout
//! and format as Python RQ reads it, and what only Redis has: ACL users, TLS, Sentinel,
//! replicas, lost replies).
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod behaviour;
mod redis;

use std::time::Duration;

use rqrs::{Connection, Functions, Group, Job, JobStatus, Queue, Worker};

/// Bounds a wait for an event; never a delay the tests rely on.
const HANG: Duration = Duration::from_secs(20);

/// Runs a burst worker with the fixture functions (plus `extra`) until the queues are empty.
async fn work(conn: &Connection, queues: &[&str], concurrency: usize, extra: Functions) {
    let worker = Worker::builder(conn)
        .queues(queues.iter().copied())
        .functions(rqrs_test::fixtures::functions().merge(extra))
        .concurrency(concurrency)
        .burst(true)
        .build()
        .expect("builds");
    tokio::time::timeout(Duration::from_secs(30), worker.work())
        .await
        .expect("the burst ends")
        .expect("the worker works");
}

/// Starts a non-burst worker in a task, with heartbeats every second; returns its name, stop
/// handle and task.
pub(crate) fn spawn_worker(
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
pub(crate) fn spawn_worker_beating(
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

pub(crate) async fn wait_status(
    conn: &rqrs::Connection,
    id: &rqrs::JobId,
    status: JobStatus,
) -> Job {
    rqrs_test::wait_for(&format!("{id} to be {status}"), HANG, || async {
        Job::fetch(conn, id)
            .await
            .ok()
            .filter(|job| job.status() == status)
    })
    .await
}

/// Enqueues a group "emptied" of one job and a group "kept" of two, then expires (as their TTL
/// would) the job of "emptied" and the first of "kept"; returns the job left in "kept".
async fn groups_with_expired_jobs(conn: &Connection) -> Job {
    let queue = Queue::new(conn, "default");
    let emptied = Group::create(conn, Some("emptied".to_owned())).unwrap();
    let kept = Group::create(conn, Some("kept".to_owned())).unwrap();
    let gone = emptied
        .enqueue_many(&queue, [queue.enqueue("fixtures.noop", ())])
        .await
        .unwrap();
    let mut both = kept
        .enqueue_many(
            &queue,
            [
                queue.enqueue("fixtures.noop", ()),
                queue.enqueue("fixtures.noop", ()),
            ],
        )
        .await
        .unwrap();
    for job in [&gone[0], &both[0]] {
        rqrs::testing::expire_job(conn, job.id()).await.unwrap();
    }
    both.remove(1)
}

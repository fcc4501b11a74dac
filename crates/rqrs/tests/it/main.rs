//! Behaviour tests of the library against a private redis-server per test.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod connection;
mod context;
mod enqueue;
mod isolation;
mod job_ops;
mod lifecycle;
mod registry;
mod scheduler;
mod worker;

use std::time::Duration;

use rqrs::{Connection, Functions, Worker};
use rqrs_test::RedisServer;

/// A fresh server and a connection to it.
async fn setup() -> (RedisServer, Connection) {
    let server = RedisServer::start();
    let conn = rqrs::connect(&server.url()).await.expect("connects");
    (server, conn)
}

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

/// Raw bytes of a job-hash field, as Python would read it.
async fn field(server: &RedisServer, key: &str, field: &str) -> Option<Vec<u8>> {
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut conn)
        .await
        .expect("HGET")
}

/// Runs a raw command against the server.
async fn raw<T: redis::FromRedisValue>(server: &RedisServer, args: &[&str]) -> T {
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command
        .query_async(&mut conn)
        .await
        .expect("the command runs")
}

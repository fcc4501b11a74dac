//! The Redis suite: RQ's layout and format as Python RQ reads them (raw keys, fields, scores and
//! TTLs, producer-written hashes), and what only the Redis backend has (ACL users, TLS,
//! Sentinel, replicas, replies lost with a connection). Each test runs a private
//! `redis-server`.

mod cluster;
mod connection;
mod jobs;
mod prefix;
mod python_runs;
mod rate_limit;
mod scheduler;
mod workers;

use rqrs::Connection;
use rqrs_test::RedisServer;

/// A fresh server and a connection to it.
async fn setup() -> (RedisServer, Connection) {
    let server = RedisServer::start();
    let conn = rqrs::connect(&server.url()).await.expect("connects");
    (server, conn)
}

/// Raw bytes of a hash field, as Python would read it.
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

/// The entries of a job's result stream, oldest first, as (id, fields).
async fn results(server: &RedisServer, id: &rqrs::JobId) -> Vec<(String, Vec<(String, String)>)> {
    raw(server, &["XRANGE", &format!("rq:results:{id}"), "-", "+"]).await
}

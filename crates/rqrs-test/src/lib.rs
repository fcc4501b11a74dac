//! The test harness of rqrs (not published): a private store per test of each backend
//! ([`Store`]; for Redis a private `redis-server`, or a Sentinel-managed group of them), the
//! fixture job functions that the `worker` example registers, and a virtualenv with Python RQ
//! for the interop tests.

mod cluster;
pub mod fixtures;
mod proxy;
pub mod python;
mod redis_server;
mod sentinel;
mod store;
mod tls;

pub use cluster::{CLUSTER_PREFIX, RedisCluster};
pub use proxy::Proxy;
pub use redis_server::RedisServer;
pub use sentinel::{MASTER_NAME, SentinelGroup};
pub use store::Store;
pub use tls::TlsRedisServer;

use std::time::Duration;

/// Polls `check` until it returns `Some`, or panics after `timeout`: for waiting on an event in
/// tests, never for timing. The timeout only bounds a hang.
///
/// # Panics
/// When `timeout` passes first, naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Accepts `count` HTTP requests on a loopback port, answers each 200, and returns their texts:
/// the webhooks tests' endpoint. Returns the base URL and the task that collects them.
///
/// # Panics
/// When the port cannot be bound or a connection fails.
pub async fn http_sink(count: usize) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the sink works");
    let url = format!("http://{}", listener.local_addr().expect("the sink works"));
    let task = tokio::spawn(async move {
        let mut requests = Vec::new();
        for _ in 0..count {
            let (mut socket, _) = listener.accept().await.expect("the sink works");
            let mut text = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read the head, then as many body bytes as Content-Length says.
            loop {
                let read = socket.read(&mut buffer).await.expect("the sink works");
                text.extend_from_slice(&buffer[..read]);
                let seen = String::from_utf8_lossy(&text).to_string();
                if let Some((head, body)) = seen.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("Content-Length: "))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                if read == 0 {
                    break;
                }
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("the sink works");
            requests.push(String::from_utf8_lossy(&text).to_string());
        }
        requests
    });
    (url, task)
}

/// The most jobs of `ids` whose runs overlapped, from their `started_at` and `ended_at` (the
/// last run of each; a job without both is left out): how many ran at once, whichever workers
/// ran them.
///
/// # Panics
/// When the jobs cannot be read.
pub async fn most_at_once(conn: &rqrs::Connection, ids: &[rqrs::JobId]) -> usize {
    let mut edges = Vec::new();
    for chunk in ids.chunks(500) {
        let jobs = rqrs::Job::fetch_many(conn, chunk)
            .await
            .expect("the jobs are read");
        for job in jobs.into_iter().flatten() {
            if let (Some(start), Some(end)) = (job.started_at(), job.ended_at()) {
                edges.push((start, 1_i32));
                edges.push((end, -1));
            }
        }
    }
    // An end before a start at the same instant: runs that touch do not overlap.
    edges.sort();
    let (mut now, mut most) = (0_i32, 0_i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or_default()
}

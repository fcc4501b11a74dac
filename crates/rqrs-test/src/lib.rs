//! The test harness of rqrs (not published): a private `redis-server` per test, the fixture
//! job functions that the `worker` example registers, and a virtualenv with Python RQ for the
//! interop tests.

pub mod fixtures;
pub mod python;
mod redis_server;
mod tls;

pub use redis_server::RedisServer;
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

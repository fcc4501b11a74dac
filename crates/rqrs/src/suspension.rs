//! Suspending all workers, with RQ's flag (`rq:suspended`), so that `rq suspend`/`rq resume`
//! and `rqrs suspend`/`rqrs resume` are interchangeable. A suspended worker finishes the jobs it
//! runs and takes no new one until workers are resumed.

use std::time::Duration;

use crate::Connection;
use crate::backend::WorkerStore;
use crate::error::Result;

/// Suspends every worker of the deployment (Python's and rqrs's), for `duration` or until
/// [`resume`].
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use std::time::Duration;
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// rqrs::suspend(&conn, Some(Duration::from_secs(300))).await?;
/// assert!(rqrs::is_suspended(&conn).await?);
/// rqrs::resume(&conn).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// A backend error.
pub async fn suspend(conn: &Connection, duration: Option<Duration>) -> Result<()> {
    conn.backend().suspend(duration).await
}

/// Lets workers take jobs again.
///
/// # Errors
/// A backend error.
pub async fn resume(conn: &Connection) -> Result<()> {
    conn.backend().resume().await
}

/// Whether workers are suspended.
///
/// # Errors
/// A backend error.
pub async fn is_suspended(conn: &Connection) -> Result<bool> {
    conn.backend().is_suspended().await
}

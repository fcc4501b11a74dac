//! Rate limits (RQ 3.0's `RateLimit(key, concurrency)`): at most `concurrency` jobs of a key
//! are queued or running at once, across every worker and producer on the store, Python RQ
//! 3.0's included. A job that finds every slot taken waits, status
//! [`RateLimited`](crate::JobStatus::RateLimited), holding no worker, and goes onto its queue
//! when a job of its key ends for good (finished, failed, stopped, canceled, deleted, or
//! recovered as abandoned and failed).

use crate::error::{Error, Result};

/// A concurrency limit shared by the jobs of one key.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// use rqrs::{Queue, RateLimit};
///
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let queue = Queue::new(&conn, "default");
/// // At most two calls to the billing API at a time, whatever the number of workers.
/// for invoice in 0..100 {
///     queue
///         .enqueue("billing.send_invoice", (invoice,))
///         .rate_limit(RateLimit::new("billing-api", 2))
///         .send()
///         .await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    key: String,
    concurrency: u32,
}

impl RateLimit {
    /// At most `concurrency` jobs of `key` queued or running at once. Checked at enqueue: the
    /// key is not empty and the concurrency at least 1.
    pub fn new(key: impl Into<String>, concurrency: u32) -> Self {
        RateLimit {
            key: key.into(),
            concurrency,
        }
    }

    /// The key the jobs share.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How many of its jobs may be queued or running at once.
    pub fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// Refuses what RQ 3.0 refuses: an empty key, a concurrency under 1.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.key.is_empty() {
            return Err(Error::invalid(
                "rate_limit",
                "an empty key: give the name the limited jobs share",
            ));
        }
        if self.concurrency < 1 {
            return Err(Error::invalid(
                "rate_limit",
                format!(
                    "concurrency 0 for key {:?}: at least one job must be able to run",
                    self.key
                ),
            ));
        }
        Ok(())
    }
}

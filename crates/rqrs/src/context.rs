//! The running job, reachable from anywhere inside a job function: [`current_job`] returns its
//! [`JobContext`] (task-local in async functions, thread-local in blocking ones), as RQ's
//! `get_current_job()` does. Through it a job reads its id and arguments, and changes and saves
//! its `meta` while it runs, so that anyone who fetches the job sees the change at once.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};

use crate::Connection;
use crate::backend::JobStore;
use crate::error::Result;
use crate::job::JobId;

tokio::task_local! {
    static CURRENT: JobContext;
}

thread_local! {
    static CURRENT_BLOCKING: RefCell<Option<JobContext>> = const { RefCell::new(None) };
}

/// The job a function is running for.
///
/// # Examples
/// ```
/// use rqrs::{JobContext, JobError};
///
/// async fn resize(ctx: JobContext, (path,): (String,)) -> Result<String, JobError> {
///     ctx.set_meta("progress", 50);
///     ctx.save_meta().await?; // fetchers see {"progress": 50} now
///     Ok(path)
/// }
/// ```
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connection,
    id: JobId,
    origin: String,
    worker_name: String,
    execution_id: String,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    meta: Mutex<Map<String, Value>>,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.inner.id)
            .field("origin", &self.inner.origin)
            .field("execution_id", &self.inner.execution_id)
            .finish_non_exhaustive()
    }
}

/// What a context is made of.
#[derive(Debug)]
pub(crate) struct ContextParts {
    pub(crate) conn: Connection,
    pub(crate) id: JobId,
    pub(crate) origin: String,
    pub(crate) worker_name: String,
    pub(crate) execution_id: String,
    pub(crate) args: Vec<Value>,
    pub(crate) kwargs: Map<String, Value>,
    pub(crate) meta: Map<String, Value>,
}

impl JobContext {
    pub(crate) fn new(parts: ContextParts) -> Self {
        let ContextParts {
            conn,
            id,
            origin,
            worker_name,
            execution_id,
            args,
            kwargs,
            meta,
        } = parts;
        JobContext {
            inner: Arc::new(Inner {
                conn,
                id,
                origin,
                worker_name,
                execution_id,
                args,
                kwargs,
                meta: Mutex::new(meta),
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// Runs `future` with this context as [`current_job`].
    pub(crate) async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// Runs `f` on this thread with this context as [`current_job`].
    pub(crate) fn scope_blocking<T>(self, f: impl FnOnce() -> T) -> T {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT_BLOCKING.with(|current| current.borrow_mut().take());
            }
        }
        CURRENT_BLOCKING.with(|current| *current.borrow_mut() = Some(self));
        let _reset = Reset;
        f()
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.inner.id
    }

    /// The queue the job came from.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The worker running the job.
    pub fn worker_name(&self) -> &str {
        &self.inner.worker_name
    }

    /// The id of this run of the job.
    pub fn execution_id(&self) -> &str {
        &self.inner.execution_id
    }

    /// The positional arguments as JSON.
    pub fn args(&self) -> &[Value] {
        &self.inner.args
    }

    /// The keyword arguments as JSON.
    pub fn kwargs(&self) -> &Map<String, Value> {
        &self.inner.kwargs
    }

    /// The connection the job came from, to enqueue more work or read other jobs.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    fn lock_meta(&self) -> MutexGuard<'_, Map<String, Value>> {
        // A panic while the lock was held cannot leave a map half-written: take it anyway.
        self.inner
            .meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the job's metadata as this run knows it.
    pub fn meta(&self) -> Map<String, Value> {
        self.lock_meta().clone()
    }

    /// Sets one metadata key (saved by [`save_meta`](Self::save_meta)).
    pub fn set_meta(&self, key: impl Into<String>, value: impl Into<Value>) {
        self.lock_meta().insert(key.into(), value.into());
    }

    /// Changes the metadata in place (saved by [`save_meta`](Self::save_meta)).
    pub fn update_meta<T>(&self, change: impl FnOnce(&mut Map<String, Value>) -> T) -> T {
        change(&mut self.lock_meta())
    }

    /// Writes the metadata to the backend now.
    ///
    /// # Errors
    /// [`Error::NoSuchJob`](crate::Error::NoSuchJob) if the job was deleted meanwhile; a
    /// backend error.
    pub async fn save_meta(&self) -> Result<()> {
        let meta = self.meta();
        self.inner
            .conn
            .backend()
            .save_meta(&self.inner.id, &meta)
            .await
    }

    /// Reports progress and saves it at once, in `meta["progress"]` as
    /// `{"done": done, "total": total, "percent": p}` (the way RQ users keep progress in meta),
    /// where `rqrs info` and anyone fetching the job read it.
    ///
    /// # Errors
    /// As [`save_meta`](Self::save_meta).
    pub async fn set_progress(&self, done: u64, total: u64) -> Result<()> {
        self.set_meta("progress", progress(done, total));
        self.save_meta().await
    }

    /// [`set_progress`](Self::set_progress) for blocking job functions.
    ///
    /// # Errors
    /// As [`save_meta`](Self::save_meta).
    pub fn set_progress_blocking(&self, done: u64, total: u64) -> Result<()> {
        self.set_meta("progress", progress(done, total));
        self.save_meta_blocking()
    }

    /// [`save_meta`](Self::save_meta) for blocking job functions, which run outside the async
    /// runtime. Do not call it from async code: it blocks the thread until the write is done.
    ///
    /// # Errors
    /// As [`save_meta`](Self::save_meta).
    pub fn save_meta_blocking(&self) -> Result<()> {
        self.inner.runtime.block_on(self.save_meta())
    }
}

/// The progress value kept in meta.
fn progress(done: u64, total: u64) -> Value {
    #[expect(clippy::cast_precision_loss, reason = "a percentage to one decimal")]
    let percent = if total == 0 {
        100.0
    } else {
        (done.min(total) as f64 * 1000.0 / total as f64).round() / 10.0
    };
    serde_json::json!({"done": done, "total": total, "percent": percent})
}

/// The job being run, when called from inside a job function (async or blocking); `None`
/// elsewhere.
///
/// # Examples
/// ```
/// fn log_progress(step: u32) {
///     if let Some(job) = rqrs::current_job() {
///         job.set_meta("step", step);
///     }
/// }
/// log_progress(1); // outside a job: nothing happens
/// ```
pub fn current_job() -> Option<JobContext> {
    CURRENT
        .try_with(Clone::clone)
        .ok()
        .or_else(|| CURRENT_BLOCKING.with(|current| current.borrow().clone()))
}

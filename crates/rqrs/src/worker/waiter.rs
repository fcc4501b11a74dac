//! Waiting for work without taking it. While the worker is idle, the backend's watch tasks
//! look at its queues (on Redis, one blocking same-list `BLMOVE` per queue, which leaves the
//! list as it was) and wake the worker when one may hold a job; the worker then dequeues
//! atomically. Nothing is ever held only by a waiting task, so a worker that dies while waiting
//! loses nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::Connection;
use crate::backend::RunStore;
use crate::backend::types::Watch;

/// The longest a wait lasts: a safety net for a wake-up lost to a dropped connection.
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// The waiting tasks of a worker; they stop when it is dropped.
#[derive(Debug)]
pub(super) struct Waiter {
    /// Whether the worker waits (the tasks watch only then).
    waiting: watch::Sender<bool>,
    ready: Arc<Notify>,
    _tasks: JoinSet<()>,
}

impl Waiter {
    pub(super) fn start(conn: &Connection, queues: &[String]) -> Self {
        let (waiting, _) = watch::channel(false);
        let ready = Arc::new(Notify::new());
        let tasks = conn.backend().watch_queues(
            queues,
            Watch {
                waiting: waiting.subscribe(),
                ready: Arc::clone(&ready),
            },
        );
        Waiter {
            waiting,
            ready,
            _tasks: tasks,
        }
    }

    /// Returns when a queue may hold a job, or after [`LONGEST_WAIT`] in any case.
    pub(super) async fn wait(&self) {
        struct Waiting<'a>(&'a watch::Sender<bool>);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.send_replace(false);
            }
        }
        let ready = self.ready.notified();
        self.waiting.send_replace(true);
        let _waiting = Waiting(&self.waiting);
        let _ = tokio::time::timeout(LONGEST_WAIT, ready).await;
    }
}

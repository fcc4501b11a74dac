//! Waiting for work without taking it. While the worker is idle, one task per queue blocks on
//! its own connection in a same-list `BLMOVE q q LEFT LEFT`, which returns as soon as the queue
//! holds an id and leaves the list as it was; the worker then dequeues atomically. Nothing is
//! ever held only by a blocked connection, so a worker that dies while waiting loses nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::Connection;
use crate::backend::redis::RedisBackend;

/// How long one blocking wait lasts before it is issued again.
const BLOCK: Duration = Duration::from_secs(5);

/// The waiting tasks of a worker; they stop when it is dropped.
#[derive(Debug)]
pub(super) struct Waiter {
    /// Whether the worker waits (the tasks block only then).
    waiting: watch::Sender<bool>,
    ready: Arc<Notify>,
    _tasks: JoinSet<()>,
}

impl Waiter {
    pub(super) fn start(conn: &Connection, queues: &[String]) -> Self {
        let (waiting, _) = watch::channel(false);
        let ready = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        for queue in queues {
            tasks.spawn(watch_queue(
                conn.clone(),
                queue.clone(),
                waiting.subscribe(),
                Arc::clone(&ready),
            ));
        }
        Waiter {
            waiting,
            ready,
            _tasks: tasks,
        }
    }

    /// Returns when a queue may hold a job, or after a while in any case (a safety net for a
    /// wake-up lost to a dropped connection).
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
        let _ = tokio::time::timeout(BLOCK, ready).await;
    }
}

async fn watch_queue(
    conn: Connection,
    queue: String,
    mut waiting: watch::Receiver<bool>,
    ready: Arc<Notify>,
) {
    let mut connection = None;
    loop {
        if waiting.wait_for(|waiting| *waiting).await.is_err() {
            return;
        }
        let blocking = match &mut connection {
            Some(blocking) => blocking,
            None => match conn.backend().blocking_connection().await {
                Ok(blocking) => connection.insert(blocking),
                Err(error) => {
                    tracing::warn!(%queue, %error, "cannot open a connection to wait on the queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        match RedisBackend::wait_for_job(blocking, &queue, BLOCK).await {
            Ok(true) => {
                ready.notify_one();
                // Let the worker take the job before blocking again.
                let _ = waiting.wait_for(|waiting| !*waiting).await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%queue, %error, "waiting on the queue failed; reconnecting");
                connection = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

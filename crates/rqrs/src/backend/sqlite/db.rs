//! The database's thread: one connection, owned by one thread, which runs every operation the
//! backend sends it, so that async callers never block on SQLite.
//!
//! Writes are grouped: the writes that wait while a transaction runs go into the next one
//! (`BEGIN IMMEDIATE`, which takes the database's write lock at once, waiting up to the busy
//! timeout for other processes), each in a savepoint of its own, so that a batch of completions
//! costs one commit instead of one each, and one failing operation undoes only itself. A write's
//! caller hears its outcome only once its transaction has committed. Reads run on their own,
//! outside write transactions, so they never take the write lock.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::error::sqlite_error;
use crate::error::{BackendError, BackendErrorKind, Error, Result};

/// How many writes one transaction takes at most.
const MAX_BATCH: usize = 256;

/// What a write tells its caller once its transaction ended: `None` when it committed, else
/// why it did not.
type Reply = Box<dyn FnOnce(Option<&Failure>) + Send>;
/// A write: runs in its batch's transaction (`None`: no transaction could be had, and the write
/// does not run) and returns whether it succeeded and what to tell its caller.
type Write = Box<dyn FnOnce(Option<&Tx<'_>>) -> (bool, Reply) + Send>;
/// A read: runs on its own and answers its caller itself.
type Read = Box<dyn FnOnce(&Connection) + Send>;

enum Request {
    Write(Write),
    Read(Read),
}

/// Why a transaction did not start or commit, told to each of its writes.
#[derive(Debug, Clone)]
struct Failure {
    kind: BackendErrorKind,
    message: String,
}

impl Failure {
    fn of(error: &rusqlite::Error) -> Self {
        let Error::Backend(error) = sqlite_error(error) else {
            return Failure {
                kind: BackendErrorKind::Refused,
                message: error.to_string(),
            };
        };
        Failure {
            kind: error.kind(),
            message: std::error::Error::source(&error)
                .map_or_else(|| error.to_string(), ToString::to_string),
        }
    }

    fn to_error(&self) -> Error {
        Error::Backend(BackendError::new("sqlite", self.kind, self.message.clone()))
    }
}

/// The transaction a write runs in: the connection, and a mark that the write put a job on a
/// queue, so that this process's waiting workers are woken once it commits.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    ready: Cell<bool>,
}

impl Tx<'_> {
    /// Marks that this write puts a job on a queue.
    pub(super) fn made_work_ready(&self) {
        self.ready.set(true);
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The handle of a database thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub(super) struct Db {
    requests: mpsc::Sender<Request>,
    /// Bumped after every commit that put a job on a queue, for this process's waiting workers.
    ready: watch::Sender<u64>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Write(_) => "Write",
            Request::Read(_) => "Read",
        })
    }
}

impl Db {
    /// Starts the thread that owns `conn`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub(super) fn start(conn: Connection) -> Result<Db> {
        let (requests, received) = mpsc::channel();
        let (ready, _) = watch::channel(0);
        let bump = ready.clone();
        std::thread::Builder::new()
            .name("rqrs-sqlite".to_owned())
            .spawn(move || serve(&conn, &received, &bump))
            .map_err(|error| {
                Error::Backend(BackendError::new(
                    "sqlite",
                    BackendErrorKind::Refused,
                    format!("cannot start the database's thread: {error}"),
                ))
            })?;
        Ok(Db { requests, ready })
    }

    /// Runs `op` in a write transaction (grouped with other writes) and returns its value once
    /// that transaction has committed.
    ///
    /// # Errors
    /// The op's own error (its writes are undone), or why the transaction did not commit.
    pub(super) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let write: Write = Box::new(move |tx: Option<&Tx<'_>>| {
            let outcome = tx.map(|tx| {
                catch_unwind(AssertUnwindSafe(|| op(tx))).unwrap_or_else(|_| Err(panicked()))
            });
            let ok = matches!(outcome, Some(Ok(_)));
            let reply: Reply = Box::new(move |failure: Option<&Failure>| {
                let result = match (outcome, failure) {
                    (None, failure) => Err(failure.map_or_else(stopped, Failure::to_error)),
                    (Some(Err(error)), _) => Err(error),
                    (Some(Ok(_)), Some(failure)) => Err(failure.to_error()),
                    (Some(Ok(value)), None) => Ok(value),
                };
                let _ = answer.send(result);
            });
            (ok, reply)
        });
        self.send(Request::Write(write))?;
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Runs `op` on its own, outside write transactions.
    ///
    /// # Errors
    /// The op's own error.
    pub(super) async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let read: Read = Box::new(move |conn| {
            let outcome =
                catch_unwind(AssertUnwindSafe(|| op(conn))).unwrap_or_else(|_| Err(panicked()));
            let _ = answer.send(outcome);
        });
        self.send(Request::Read(read))?;
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Changes after each commit of this process that put a job on a queue.
    pub(super) fn work_ready(&self) -> watch::Receiver<u64> {
        self.ready.subscribe()
    }

    fn send(&self, request: Request) -> Result<()> {
        self.requests.send(request).map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Backend(BackendError::new(
        "sqlite",
        BackendErrorKind::Connection,
        "the database's thread has stopped",
    ))
}

fn panicked() -> Error {
    Error::Backend(BackendError::new(
        "sqlite",
        BackendErrorKind::Refused,
        "an operation on the database panicked; its writes were undone",
    ))
}

/// The thread's loop: a read at once; a write with every other write already waiting, in one
/// transaction.
fn serve(conn: &Connection, requests: &mpsc::Receiver<Request>, ready: &watch::Sender<u64>) {
    let mut next: Option<Request> = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match requests.recv() {
                Ok(request) => request,
                Err(_) => return,
            },
        };
        match request {
            Request::Read(read) => read(conn),
            Request::Write(write) => {
                let mut batch = vec![write];
                while batch.len() < MAX_BATCH {
                    match requests.try_recv() {
                        Ok(Request::Write(write)) => batch.push(write),
                        Ok(read) => {
                            next = Some(read);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if run_batch(conn, batch) {
                    ready.send_modify(|count| *count = count.wrapping_add(1));
                }
            }
        }
    }
}

/// Runs a batch of writes in one transaction and answers them; returns whether it committed
/// and one of them put a job on a queue.
fn run_batch(conn: &Connection, batch: Vec<Write>) -> bool {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let failure = Failure::of(&error);
        for write in batch {
            let (_, reply) = write(None);
            reply(Some(&failure));
        }
        return false;
    }
    let tx = Tx {
        conn,
        ready: Cell::new(false),
    };
    let mut replies = Vec::with_capacity(batch.len());
    let commit = if batch.len() == 1 {
        // Alone in its transaction: the transaction is its savepoint.
        batch.into_iter().all(|write| {
            let (ok, reply) = write(Some(&tx));
            replies.push(reply);
            ok
        })
    } else {
        for write in batch {
            if let Err(error) = conn.execute_batch("SAVEPOINT op") {
                let failure = Failure::of(&error);
                let (_, reply) = write(None);
                replies.push(Box::new(move |_: Option<&Failure>| reply(Some(&failure))));
                continue;
            }
            let (ok, reply) = write(Some(&tx));
            let end = if ok {
                "RELEASE op"
            } else {
                "ROLLBACK TO op; RELEASE op"
            };
            if let Err(error) = conn.execute_batch(end) {
                tracing::error!(%error, "cannot end a savepoint of the database");
            }
            replies.push(reply);
        }
        true
    };
    let failure = if commit {
        conn.execute_batch("COMMIT").err().map(|error| {
            // A COMMIT that fails can leave the transaction open.
            let _ = conn.execute_batch("ROLLBACK");
            Failure::of(&error)
        })
    } else {
        let _ = conn.execute_batch("ROLLBACK");
        None
    };
    for reply in replies {
        reply(failure.as_ref());
    }
    commit && failure.is_none() && tx.ready.get()
}

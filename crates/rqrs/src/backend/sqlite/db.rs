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
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::changes::Changes;
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

/// The transaction a write runs in: the connection, and a mark that the write gives waiting
/// workers something to do, so that they are woken once it commits (`changes.rs`).
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    wakes: Cell<bool>,
}

impl Tx<'_> {
    /// Marks that this write gives waiting workers something to do: a job on a queue, a
    /// command.
    pub(super) fn wake_waiters(&self) {
        self.wakes.set(true);
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The handle of a database thread; the thread ends when the handle is dropped, and the drop
/// waits for it to close the connection, so that once a `Connection` is gone none of the
/// database's files is open in this process (SQLite's last close deletes the WAL file by its
/// name: closing late could delete the file of a database made anew at the same path).
#[derive(Debug)]
pub(super) struct Db {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Db {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
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
    /// Starts the thread that owns `conn`; its commits that wake waiters tell `changes`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub(super) fn start(conn: Connection, changes: Arc<Changes>) -> Result<Db> {
        let (requests, received) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rqrs-sqlite".to_owned())
            .spawn(move || serve(&conn, &received, &changes))
            .map_err(|error| {
                Error::Backend(BackendError::new(
                    "sqlite",
                    BackendErrorKind::Refused,
                    format!("cannot start the database's thread: {error}"),
                ))
            })?;
        Ok(Db {
            requests: Some(requests),
            thread: Some(thread),
        })
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

    fn send(&self, request: Request) -> Result<()> {
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())
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
fn serve(conn: &Connection, requests: &mpsc::Receiver<Request>, changes: &Changes) {
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
                    changes.wake();
                }
            }
        }
    }
}

/// Runs a batch of writes in one transaction and answers them; returns whether it committed
/// and one of them wakes waiters.
fn run_batch(conn: &Connection, batch: Vec<Write>) -> bool {
    if let Err(error) = run(conn, "BEGIN IMMEDIATE") {
        let failure = Failure::of(&error);
        for write in batch {
            let (_, reply) = write(None);
            reply(Some(&failure));
        }
        return false;
    }
    let tx = Tx {
        conn,
        wakes: Cell::new(false),
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
            if let Err(error) = run(conn, "SAVEPOINT op") {
                let failure = Failure::of(&error);
                let (_, reply) = write(None);
                replies.push(Box::new(move |_: Option<&Failure>| reply(Some(&failure))));
                continue;
            }
            let (ok, reply) = write(Some(&tx));
            let end = if ok {
                run(conn, "RELEASE op")
            } else {
                run(conn, "ROLLBACK TO op").and_then(|()| run(conn, "RELEASE op"))
            };
            if let Err(error) = end {
                tracing::error!(%error, "cannot end a savepoint of the database");
            }
            replies.push(reply);
        }
        true
    };
    if commit {
        match conn
            .prepare_cached(super::schema::TAKE_WAKES)
            .and_then(|mut statement| statement.execute([]))
        {
            Ok(0) => {}
            Ok(_) => tx.wake_waiters(),
            Err(error) => tracing::warn!(%error, "cannot read the limiter's wake-ups"),
        }
    }
    let failure = if commit {
        run(conn, "COMMIT").err().map(|error| {
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
    commit && failure.is_none() && tx.wakes.get()
}

/// Runs one statement of transaction control, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

//! Workers ([`WorkerStore`]): their rows in `workers` (live while `expires_at` is ahead and
//! `death` unset; a dead worker's row is kept a minute, as RQ keeps its hash), the suspension
//! (the flag `suspended`), and control commands: rows of `commands` that the worker they name
//! reads and deletes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::SqliteBackend;
use super::changes::Waiter;
use super::codec::{self, WORKER_COLUMNS, micros, seconds};
use super::db::Db;
use crate::backend::WorkerStore;
use crate::backend::types::{Commands, Liveness};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::worker::{WorkerInfo, WorkerState};

/// The name of the suspension's row of `flags`.
const SUSPENDED: &str = "suspended";

/// How long a dead worker's row is kept (RQ keeps the hash 60 s).
const DEAD_KEPT: i64 = 60_000_000;

/// How often a worker looks for commands sent to it when the database's changes cannot be
/// watched.
const COMMAND_POLL: Duration = Duration::from_millis(50);

/// How long a worker waits at least between two looks for commands, while the database changes
/// all the time.
const COMMAND_GAP: Duration = Duration::from_millis(20);

/// Whether workers are suspended now.
pub(super) fn suspended(conn: &Connection, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM flags WHERE name = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .exists(params![SUSPENDED, now])?)
}

/// Writes a worker's row whole, live for `ttl` from now.
fn write_worker(conn: &Connection, info: &WorkerInfo, ttl: i64, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO workers (name, queues, pid, hostname, version, state, birth, \
         last_heartbeat, current_job, successful_job_count, failed_job_count, \
         total_working_time, death, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, ?13)",
    )?
    .execute(params![
        info.name,
        info.queues.join(","),
        info.pid,
        info.hostname,
        info.version,
        info.state.as_str(),
        info.birth.map_or(now, micros),
        now,
        info.current_job,
        i64::try_from(info.successful_job_count).unwrap_or(i64::MAX),
        i64::try_from(info.failed_job_count).unwrap_or(i64::MAX),
        info.total_working_time,
        now + ttl,
    ])?;
    Ok(())
}

impl WorkerStore for SqliteBackend {
    async fn register_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()> {
        let info = info.clone();
        let ttl = seconds(liveness.worker_ttl.as_secs());
        self.db()
            .write(move |tx| {
                let now = codec::now();
                let live = tx
                    .prepare_cached(
                        "SELECT 1 FROM workers WHERE name = ?1 AND death IS NULL \
                         AND expires_at > ?2",
                    )?
                    .exists(params![info.name, now])?;
                if live {
                    return Err(Error::WorkerExists(info.name));
                }
                // The rows of workers long gone go with a new one.
                tx.prepare_cached("DELETE FROM workers WHERE expires_at <= ?1")?
                    .execute(params![now])?;
                write_worker(tx, &info, ttl, now)
            })
            .await
    }

    async fn reregister_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()> {
        let info = info.clone();
        let ttl = seconds(liveness.worker_ttl.as_secs());
        self.db()
            .write(move |tx| write_worker(tx, &info, ttl, codec::now()))
            .await
    }

    async fn set_worker_state(&self, worker: &str, state: WorkerState) -> Result<()> {
        let worker = worker.to_owned();
        self.db()
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE workers SET state = ?2, \
                     current_job = CASE WHEN ?2 = 'busy' THEN current_job END \
                     WHERE name = ?1 AND expires_at > ?3",
                )?
                .execute(params![worker, state.as_str(), codec::now()])?;
                Ok(())
            })
            .await
    }

    async fn register_death(&self, worker: &str, _queues: &[String]) -> Result<()> {
        let worker = worker.to_owned();
        self.db()
            .write(move |tx| {
                let now = codec::now();
                tx.prepare_cached(
                    "UPDATE workers SET death = ?2, current_job = NULL, expires_at = ?3 \
                     WHERE name = ?1",
                )?
                .execute(params![worker, now, now + DEAD_KEPT])?;
                tx.prepare_cached("DELETE FROM commands WHERE worker = ?1")?
                    .execute(params![worker])?;
                Ok(())
            })
            .await
    }

    async fn workers(&self, queue: Option<&str>) -> Result<Vec<WorkerInfo>> {
        let queue = queue.map(str::to_owned);
        self.db()
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {WORKER_COLUMNS} FROM workers WHERE death IS NULL AND expires_at > ?1 \
                     ORDER BY name"
                ))?;
                let mut rows = statement.query(params![codec::now()])?;
                let mut workers = Vec::new();
                while let Some(row) = rows.next()? {
                    let worker = codec::worker(row)?;
                    if queue
                        .as_ref()
                        .is_none_or(|queue| worker.queues.contains(queue))
                    {
                        workers.push(worker);
                    }
                }
                Ok(workers)
            })
            .await
    }

    async fn suspend(&self, duration: Option<Duration>) -> Result<()> {
        self.db()
            .write(move |tx| {
                let until =
                    duration.map(|duration| codec::now() + seconds(duration.as_secs().max(1)));
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO flags (name, holder, expires_at) VALUES (?1, '', ?2)",
                )?
                .execute(params![SUSPENDED, until])?;
                Ok(())
            })
            .await
    }

    async fn resume(&self) -> Result<()> {
        self.db()
            .write(|tx| {
                tx.prepare_cached("DELETE FROM flags WHERE name = ?1")?
                    .execute(params![SUSPENDED])?;
                Ok(())
            })
            .await
    }

    async fn is_suspended(&self) -> Result<bool> {
        self.db().read(|conn| suspended(conn, codec::now())).await
    }

    /// Stored for the worker when it is live (its reader is then running): 1, else 0.
    async fn publish(&self, worker: &str, command: &Command) -> Result<usize> {
        let worker = worker.to_owned();
        let body = command.encode();
        self.db()
            .write(move |tx| {
                let live = tx
                    .prepare_cached(
                        "SELECT 1 FROM workers WHERE name = ?1 AND death IS NULL \
                         AND expires_at > ?2",
                    )?
                    .exists(params![worker, codec::now()])?;
                if !live {
                    return Ok(0);
                }
                tx.prepare_cached("INSERT INTO commands (worker, body) VALUES (?1, ?2)")?
                    .execute(params![worker, body])?;
                tx.wake_waiters();
                Ok(1)
            })
            .await
    }

    /// Commands stored before this call are dropped: they were for an earlier worker of the
    /// name. The stream looks for new ones when the database changes (at most every
    /// [`COMMAND_GAP`]), and never ends.
    async fn commands(&self, worker: &str) -> Result<Commands> {
        let name = worker.to_owned();
        self.db()
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM commands WHERE worker = ?1")?
                    .execute(params![name])?;
                Ok(())
            })
            .await?;
        let reader = CommandReader {
            db: Arc::clone(&self.db),
            worker: worker.to_owned(),
            pending: VecDeque::new(),
            changes: self.changes.waiter(COMMAND_POLL),
        };
        Ok(Box::pin(futures_util::stream::unfold(
            reader,
            |mut reader| async move {
                let command = reader.next().await;
                Some((command, reader))
            },
        )))
    }
}

/// Reads the commands sent to one worker, in the order they were sent.
struct CommandReader {
    db: Arc<Db>,
    worker: String,
    pending: VecDeque<(i64, String)>,
    changes: Waiter,
}

impl CommandReader {
    /// The next command, once one arrives; a command that cannot be read is an `Err` with its
    /// text, and a database error is logged and tried again.
    async fn next(&mut self) -> std::result::Result<Command, String> {
        loop {
            if let Some((_, body)) = self.pending.pop_front() {
                return Command::decode(&body);
            }
            let gap = tokio::time::Instant::now() + COMMAND_GAP;
            self.changes.changed().await;
            tokio::time::sleep_until(gap).await;
            // Seen before the look: a command sent after it wakes the next wait.
            self.changes.seen();
            let worker = self.worker.clone();
            let read = self
                .db
                .read(move |conn| {
                    let rows = conn
                        .prepare_cached(
                            "SELECT id, body FROM commands WHERE worker = ?1 ORDER BY id",
                        )?
                        .query_map(params![worker], |row| Ok((row.get(0)?, row.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
                    Ok(rows)
                })
                .await;
            let arrived = match read {
                Ok(arrived) => arrived,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the worker's commands");
                    continue;
                }
            };
            let Some(&(last, _)) = arrived.last() else {
                continue;
            };
            let worker = self.worker.clone();
            let deleted = self
                .db
                .write(move |tx| {
                    tx.prepare_cached("DELETE FROM commands WHERE worker = ?1 AND id <= ?2")?
                        .execute(params![worker, last])?;
                    Ok(())
                })
                .await;
            // Not deleted: read again next time rather than run twice.
            match deleted {
                Ok(()) => self.pending.extend(arrived),
                Err(error) => tracing::warn!(%error, "cannot take the worker's commands"),
            }
        }
    }
}

//! The Redis backend, in Python RQ 2.12's layout (`RQ-FORMAT.md`, `docs/redis-layout.md`).
//!
//! One shared auto-reconnecting connection carries ordinary commands (concurrent requests are
//! pipelined on it); each blocking wait gets a dedicated connection, since a blocking command
//! would stall the shared one. Multi-key state changes are the Lua scripts in `scripts/`,
//! loaded once and called by SHA; single-purpose writes are MULTI pipelines.

pub(crate) mod codec;
mod endpoint;
mod groups;
mod job_ops;
mod jobs;
pub(crate) mod keys;
mod queues;
mod registries;
mod runs;

pub(crate) use runs::{MAX_TTL, Recorded, execution_ids};
mod scheduler;
mod workers;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use chrono::{DateTime, Utc};
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, MultiplexedConnection};

use crate::error::Result;
use crate::job::{Call, EnqueueOptions, Job, JobId};
use endpoint::Endpoint;

pub(crate) use scheduler::{Lock, SchedulerRecord};

/// RQ's default job timeout, written into every job that has none (as Python's Queue does).
pub(crate) const DEFAULT_TIMEOUT: i64 = 180;
/// The `exc_info` RQ's requeue writes: zlib of the empty string.
const EMPTY_EXC_INFO: &[u8] = &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];

/// A job to enqueue.
#[derive(Debug)]
pub(crate) struct NewJob {
    pub(crate) id: JobId,
    pub(crate) call: Call,
    pub(crate) options: EnqueueOptions,
}

/// One run of a job: what the worker needs to heartbeat it and to record its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub(crate) job_id: JobId,
    pub(crate) execution_id: String,
    pub(crate) queue: String,
    pub(crate) started_at: DateTime<Utc>,
}

/// A job the worker has taken, with its execution.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) job: Job,
    pub(crate) execution: Execution,
}

/// What a dequeue got.
#[derive(Debug)]
pub(crate) enum Dequeued {
    /// The jobs taken (none when the queues are empty).
    Jobs(Vec<Started>),
    /// Nothing: workers are suspended.
    Suspended,
}

/// The timings a worker keeps its runs and itself alive with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    /// Seconds after the last heartbeat at which a run counts as abandoned.
    pub(crate) execution_ttl: u64,
    /// Seconds after the last heartbeat at which the worker hash expires.
    pub(crate) worker_ttl: u64,
}

/// What a heartbeat learned.
#[derive(Debug)]
pub(crate) struct HeartbeatReply {
    /// The worker hash had expired and must be written again.
    pub(crate) worker_missing: bool,
    /// Executions that are no longer in the started registry (recovered elsewhere).
    pub(crate) lost: Vec<String>,
}

/// The Redis backend.
pub(crate) struct RedisBackend {
    endpoint: Endpoint,
    /// The server in use and the shared connection to it; a Sentinel failover replaces both.
    current: Arc<RwLock<Current>>,
    /// The connection of enqueues that wait for replicas (opened when first needed).
    replicated: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The URL as given and the trusted roots, to connect again from another process (a work
    /// horse).
    full_url: String,
    root_ca: Option<Vec<u8>>,
}

/// The server in use and the shared connection to it.
struct Current {
    client: redis::Client,
    conn: ConnectionManager,
}

/// Reads the server in use. The lock is never held across an await, and a writer that
/// panicked left a whole value behind, so a poisoned lock is read as it is.
fn read(current: &RwLock<Current>) -> RwLockReadGuard<'_, Current> {
    current.read().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The URL with its passwords replaced by `***` (a Sentinel URL's `sentinel_password` too).
pub(crate) fn redact(url: &str) -> String {
    let url = match url.split_once("sentinel_password=") {
        Some((before, after)) => {
            let rest = after.find('&').map_or("", |end| &after[end..]);
            format!("{before}sentinel_password=***{rest}")
        }
        None => url.to_owned(),
    };
    let url = url.as_str();
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}

impl RedisBackend {
    /// Connects; `root_ca` (PEM) replaces the system's trusted roots for `rediss://` URLs.
    pub(crate) async fn connect(url: &str, root_ca: Option<Vec<u8>>) -> Result<Self> {
        if Endpoint::is_tls(url) {
            super::install_crypto_provider();
        }
        let endpoint = Endpoint::parse(url, root_ca.as_deref())?;
        Self::open(endpoint, url.to_owned(), root_ca).await
    }

    /// Connects to the server the endpoint names now, and follows its failovers.
    async fn open(endpoint: Endpoint, full_url: String, root_ca: Option<Vec<u8>>) -> Result<Self> {
        let client = endpoint.resolve().await?;
        let conn = endpoint.shared_connection(&client).await?;
        let current = Arc::new(RwLock::new(Current { client, conn }));
        endpoint.follow(&current);
        Ok(RedisBackend {
            endpoint,
            current,
            replicated: tokio::sync::Mutex::new(None),
            full_url,
            root_ca,
        })
    }

    /// A backend on the same server with a connection of its own, bound to the current async
    /// runtime (a worker's liveness thread runs its own).
    pub(crate) async fn detached(&self) -> Result<Self> {
        Self::open(
            self.endpoint.clone(),
            self.full_url.clone(),
            self.root_ca.clone(),
        )
        .await
    }

    pub(crate) fn url(&self) -> String {
        redact(&self.full_url)
    }

    /// The URL as given (password included) and the trusted roots given, if any.
    pub(crate) fn connect_info(&self) -> (&str, Option<&[u8]>) {
        (&self.full_url, self.root_ca.as_deref())
    }

    fn conn(&self) -> ConnectionManager {
        read(&self.current).conn.clone()
    }

    /// A client of the server in use.
    fn client(&self) -> redis::Client {
        read(&self.current).client.clone()
    }

    /// A connection of its own for blocking commands, with no response timeout.
    pub(crate) async fn blocking_connection(&self) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(endpoint::CONNECT_TIMEOUT));
        Ok(self
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis+sentinel://:pw@a,b/m?sentinel_password=s&sentinel_username=u"),
            "redis+sentinel://:***@a,b/m?sentinel_password=***&sentinel_username=u"
        );
    }
}

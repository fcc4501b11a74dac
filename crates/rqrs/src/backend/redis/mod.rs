//! The Redis backend, in Python RQ 2.12's layout (`RQ-FORMAT.md`, `docs/redis-layout.md`):
//! every trait of the seam, one file per trait, every key in `keys.rs`, every encoding in
//! `codec/`.
//!
//! One shared auto-reconnecting connection carries ordinary commands (concurrent requests are
//! pipelined on it); each blocking wait gets a dedicated connection, since a blocking command
//! would stall the shared one. Multi-key state changes are the Lua scripts in `scripts/`,
//! loaded once and called by SHA; single-purpose writes are MULTI pipelines.

mod cluster;
mod codec;
mod endpoint;
mod error;
mod groups;
mod jobs;
pub(crate) mod keys;
mod queues;
mod registries;
mod runs;
mod scheduler;
#[cfg(feature = "testing")]
mod testing;
mod workers;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use chrono::{DateTime, Utc};
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, MultiplexedConnection};

use super::Backend;
use super::types::Liveness;
use crate::backend::{ConnectOptions, KEY_PREFIX_ENV, redact_url};
use crate::defaults::WORKER_TTL_GRACE;
use crate::error::Result;
use endpoint::Endpoint;
use keys::Keys;

/// The `exc_info` RQ's requeue writes: zlib of the empty string.
const EMPTY_EXC_INFO: &[u8] = &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];

/// The Redis backend.
pub(crate) struct RedisBackend {
    endpoint: Endpoint,
    /// The server in use and the shared connection to it; a Sentinel failover replaces both.
    current: Arc<RwLock<Current>>,
    /// The connection of enqueues that wait for replicas (opened when first needed).
    replicated: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The URL as given, the trusted roots and the key prefix, to connect again from another
    /// process (a work horse).
    options: ConnectOptions,
    keys: Keys,
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

/// How long, in seconds, a job's set of executions lives after a heartbeat: its run's deadline
/// and RQ's grace.
fn executions_ttl(liveness: Liveness) -> u64 {
    (liveness.execution_ttl + WORKER_TTL_GRACE).as_secs()
}

impl RedisBackend {
    /// Connects; the options' `root_ca` (PEM) replaces the system's trusted roots for
    /// `rediss://` URLs.
    pub(crate) async fn connect(mut options: ConnectOptions) -> Result<Self> {
        // The prefix set, else RQ 3.0's variable, else RQ's own.
        let prefix = (options.key_prefix.clone())
            .or_else(|| std::env::var(KEY_PREFIX_ENV).ok())
            .unwrap_or_else(|| keys::DEFAULT_PREFIX.to_owned());
        let keys = Keys::new(&prefix)?;
        options.key_prefix = Some(prefix);
        if Endpoint::is_tls(&options.url) {
            install_crypto_provider();
        }
        let endpoint = Endpoint::parse(&options.url, options.root_ca.as_deref(), keys.prefix())?;
        Self::open(endpoint, options, keys).await
    }

    /// Connects to the server the endpoint names now, and follows its failovers.
    async fn open(endpoint: Endpoint, options: ConnectOptions, keys: Keys) -> Result<Self> {
        let client = endpoint.resolve().await?;
        let conn = endpoint.shared_connection(&client).await?;
        let current = Arc::new(RwLock::new(Current { client, conn }));
        endpoint.follow(&current);
        Ok(RedisBackend {
            endpoint,
            current,
            replicated: tokio::sync::Mutex::new(None),
            options,
            keys,
        })
    }

    fn conn(&self) -> ConnectionManager {
        read(&self.current).conn.clone()
    }

    /// A client of the server in use.
    fn client(&self) -> redis::Client {
        read(&self.current).client.clone()
    }

    /// A connection of its own for blocking commands, with no response timeout.
    async fn blocking_connection(&self) -> Result<MultiplexedConnection> {
        blocking_connection(&self.current).await
    }
}

/// A connection of its own to the server in use, for blocking commands: no response timeout.
async fn blocking_connection(current: &RwLock<Current>) -> Result<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(endpoint::CONNECT_TIMEOUT));
    let client = read(current).client.clone();
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Backend for RedisBackend {
    fn url(&self) -> String {
        redact_url(&self.options.url)
    }

    fn connect_options(&self) -> ConnectOptions {
        self.options.clone()
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn detached(&self) -> Result<Self> {
        Self::open(
            self.endpoint.clone(),
            self.options.clone(),
            self.keys.clone(),
        )
        .await
    }
}

/// Installs rustls's process-wide crypto provider, which TLS connections need; another part of
/// the program may have installed one already, which is fine.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

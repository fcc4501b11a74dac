//! Storage. Every job state change is one atomic call on the backend; everything above it
//! (queue, registries, worker, CLI) speaks in lifecycle steps, never in store commands.
//!
//! Today the one backend is Redis in Python RQ's layout ([`redis`]).

pub(crate) mod redis;

use std::fmt;
use std::sync::Arc;

use crate::error::Result;

/// A connection to a backend: cheap to clone, shared by queues, jobs and workers.
///
/// # Examples
/// ```no_run
/// # async fn example() -> rqrs::Result<()> {
/// let conn = rqrs::connect("redis://127.0.0.1:6379").await?;
/// let queue = rqrs::Queue::new(&conn, "default");
/// println!("{} jobs waiting", queue.count().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    backend: Arc<redis::RedisBackend>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.backend.url())
            .finish()
    }
}

impl Connection {
    pub(crate) fn backend(&self) -> &redis::RedisBackend {
        &self.backend
    }

    /// The URL the connection was made with, password hidden.
    pub fn url(&self) -> String {
        self.backend.url()
    }
}

/// Installs rustls's process-wide crypto provider, which TLS connections need; another part of
/// the program may have installed one already, which is fine.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The URL with its passwords replaced by `***`, for messages and logs.
///
/// # Examples
/// ```
/// assert_eq!(
///     rqrs::redact_url("redis://app:s3cret@cache:6379/0"),
///     "redis://app:***@cache:6379/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    redis::redact(url)
}

/// Connects to a backend by URL: `redis://[user:password@]host:port[/db]` or `rediss://...`
/// (TLS), `unix:///path/to/redis.sock`, or the master that Sentinels name:
/// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]`
/// (`rediss+sentinel://` for TLS to the Sentinels and the servers;
/// `?sentinel_username=...&sentinel_password=...` for Sentinels that ask for a login). A
/// Sentinel connection follows the master through failovers.
///
/// The connection reconnects by itself after the server goes away.
///
/// # Errors
/// [`Error::Invalid`](crate::Error::Invalid) for a URL that cannot be used; a backend error if
/// the server cannot be reached.
pub async fn connect(url: &str) -> Result<Connection> {
    let backend = redis::RedisBackend::connect(url, None).await?;
    Ok(Connection {
        backend: Arc::new(backend),
    })
}

/// Connects over TLS (`rediss://...`) trusting the certificate authority `root_ca_pem` (PEM),
/// for servers whose certificate is not signed by a root the system trusts. [`connect`] with a
/// `rediss://` URL trusts the system's roots.
///
/// # Errors
/// As [`connect`]; a certificate that cannot be read is an invalid URL setting.
pub async fn connect_tls(url: &str, root_ca_pem: &[u8]) -> Result<Connection> {
    let backend = redis::RedisBackend::connect(url, Some(root_ca_pem.to_vec())).await?;
    Ok(Connection {
        backend: Arc::new(backend),
    })
}

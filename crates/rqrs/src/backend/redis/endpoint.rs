//! Where the Redis server is: the fixed address of a `redis://`, `rediss://` or `unix://` URL,
//! or the master that a group of Sentinels names, followed across failovers.
//!
//! A Sentinel URL lists the Sentinels and names the master they watch:
//!
//! ```text
//! redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]
//!     [?sentinel_username=...&sentinel_password=...]
//! ```
//!
//! The user and password are the Redis servers' (as in a `redis://` URL); the Sentinels' own
//! login, when they ask for one, goes in the query. The port defaults to 26379.
//! `rediss+sentinel://` speaks TLS to the Sentinels and to the servers (trusting the system's
//! roots, or the certificate authority given to `connect_tls`). Reserved characters in the
//! user, password or master name are percent-encoded.
//!
//! A backend on a Sentinel URL asks the Sentinels once a second which server is the master
//! (one `SENTINEL get-master-addr-by-name` on a kept connection); when the answer changes, it
//! checks the new master with `ROLE` and moves its shared connection there. Blocking waits and
//! pub/sub take the current master whenever they connect again.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, TlsCertificates, TlsMode};

use super::Current;
use super::cluster::ClusterConfig;
use crate::backend::redact_url as redact;
use crate::error::{Error, Result};

/// The Sentinels' default port.
const SENTINEL_PORT: u16 = 26379;
/// How often the Sentinels are asked which server is the master.
const POLL: Duration = Duration::from_secs(1);
/// Bounds one round of questions to the Sentinels and one connection to a server.
pub(super) const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply may take on the shared connection: scripts over many jobs (enqueue_many,
/// empty) can outlast the client's default of 500 ms.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection may take to open.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is.
#[derive(Clone)]
pub(super) enum Endpoint {
    /// A fixed address.
    Fixed(redis::Client),
    /// The master that Sentinels name.
    Sentinel(SentinelConfig),
    /// The master of a Redis Cluster that serves the slot of every key.
    Cluster(ClusterConfig),
}

/// What a Sentinel URL says.
#[derive(Clone)]
pub(super) struct SentinelConfig {
    sentinels: Vec<(String, u16)>,
    master_name: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
    tls: bool,
    /// Trusted roots (PEM) for TLS, instead of the system's.
    root_ca: Option<Vec<u8>>,
}

impl Endpoint {
    /// Reads a URL; `root_ca` (PEM) replaces the system's trusted roots for TLS. `prefix` is
    /// the key prefix, whose slot a Cluster URL routes to.
    pub(super) fn parse(url: &str, root_ca: Option<&[u8]>, prefix: &str) -> Result<Self> {
        if let Some(config) = SentinelConfig::parse(url, root_ca)? {
            return Ok(Endpoint::Sentinel(config));
        }
        if let Some(config) = ClusterConfig::parse(url, root_ca, prefix)? {
            return Ok(Endpoint::Cluster(config));
        }
        let invalid = |e: redis::RedisError| Error::invalid("url", format!("{}: {e}", redact(url)));
        let client = match root_ca {
            None => redis::Client::open(url).map_err(invalid)?,
            Some(root_cert) => {
                let certificates = TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert.to_vec()),
                };
                redis::Client::build_with_tls(url, certificates).map_err(invalid)?
            }
        };
        Ok(Endpoint::Fixed(client))
    }

    /// Whether the URL is TLS (the process needs a crypto provider).
    pub(super) fn is_tls(url: &str) -> bool {
        ["rediss://", "rediss+sentinel://", "rediss+cluster://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
    }

    /// A client for the server to use now: the fixed one, or the master the Sentinels name
    /// (checked with `ROLE`).
    pub(super) async fn resolve(&self) -> Result<redis::Client> {
        match self {
            Endpoint::Fixed(client) => Ok(client.clone()),
            Endpoint::Sentinel(config) => {
                let mut sentinels = config.client()?;
                config.master(&mut sentinels).await
            }
            Endpoint::Cluster(config) => config.master().await,
        }
    }

    /// The shared connection to `client`'s server, which reconnects by itself.
    pub(super) async fn shared_connection(
        &self,
        client: &redis::Client,
    ) -> Result<ConnectionManager> {
        shared_connection(client, !matches!(self, Endpoint::Fixed(_))).await
    }

    /// Follows failovers for the shared connection in `current` while it exists (a task that
    /// ends after the backend is dropped); nothing to do for a fixed address.
    pub(super) fn follow(&self, current: &Arc<RwLock<Current>>) {
        match self {
            Endpoint::Fixed(_) => {}
            Endpoint::Sentinel(config) => match config.client() {
                Ok(client) => {
                    let sentinels = Sentinels {
                        config: config.clone(),
                        client,
                        watch: None,
                    };
                    tokio::spawn(follow_failovers(sentinels, Arc::downgrade(current)));
                }
                Err(error) => tracing::error!(%error, "cannot follow Sentinel failovers"),
            },
            Endpoint::Cluster(config) => {
                tokio::spawn(follow_failovers(
                    config.discovery(),
                    Arc::downgrade(current),
                ));
            }
        }
    }
}

impl SentinelConfig {
    /// `None` when the URL is not a Sentinel URL.
    fn parse(url: &str, root_ca: Option<&[u8]>) -> Result<Option<Self>> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            (true, rest)
        } else {
            return Ok(None);
        };
        let invalid = |reason: String| Error::invalid("url", format!("{}: {reason}", redact(url)));
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut segments = path.split('/').filter(|segment| !segment.is_empty());
        let master_name = segments.next().map(decode).transpose()?.ok_or_else(|| {
            invalid(
                "a Sentinel URL names the master after the Sentinels: \
                 redis+sentinel://host:26379,host:26379/mymaster"
                    .to_owned(),
            )
        })?;
        let db = match segments.next() {
            Some(db) => db
                .parse()
                .map_err(|_| invalid(format!("database {db:?} is not a number")))?,
            None => 0,
        };
        if let Some(extra) = segments.next() {
            return Err(invalid(format!(
                "unexpected {extra:?} after the master name and database"
            )));
        }
        let sentinels = hosts
            .split(',')
            .map(|host| {
                parse_host(host, SENTINEL_PORT)
                    .ok_or_else(|| invalid(format!("bad Sentinel {host:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(decode(password)?)),
                    None => (userinfo, None),
                };
                (
                    Some(decode(user)?).filter(|user| !user.is_empty()),
                    password,
                )
            }
        };
        let mut config = SentinelConfig {
            sentinels,
            master_name,
            db,
            username,
            password,
            sentinel_username: None,
            sentinel_password: None,
            tls,
            root_ca: root_ca.map(<[u8]>::to_vec),
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = Some(decode(value)?);
            match key {
                "sentinel_username" => config.sentinel_username = value,
                "sentinel_password" => config.sentinel_password = value,
                _ => {
                    return Err(invalid(format!(
                        "unknown parameter {key:?} (sentinel_username and sentinel_password \
                         are known)"
                    )));
                }
            }
        }
        Ok(Some(config))
    }

    /// A client of the Sentinels, which keeps its connections to them.
    fn client(&self) -> Result<SentinelClient> {
        let addresses = self.sentinels.iter().map(|(host, port)| {
            if self.tls {
                ConnectionAddr::TcpTls {
                    host: host.clone(),
                    port: *port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(host.clone(), *port)
            }
        });
        let mut builder =
            SentinelClientBuilder::new(addresses, &self.master_name, SentinelServerType::Master)?
                .set_client_to_redis_db(self.db);
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(username) = &self.sentinel_username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if self.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(root_ca) = &self.root_ca {
                let certificates = || TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_ca.clone()),
                };
                builder = builder
                    .set_client_to_redis_certificates(certificates())
                    .set_client_to_sentinel_certificates(certificates());
            }
        }
        Ok(builder.build()?)
    }

    /// The master the Sentinels name, checked with `ROLE`.
    async fn master(&self, sentinels: &mut SentinelClient) -> Result<redis::Client> {
        match tokio::time::timeout(ASK_TIMEOUT, sentinels.async_get_client()).await {
            Ok(Ok(client)) => Ok(client),
            // Unreachable Sentinels or master: a connection error, which a retry may cure.
            Ok(Err(error))
                if error.is_io_error() || error.is_connection_refusal() || error.is_timeout() =>
            {
                Err(error.into())
            }
            Ok(Err(error)) => Err(Error::invalid(
                "url",
                format!(
                    "no master {:?} from the Sentinels {}: {error}",
                    self.master_name,
                    self.hosts()
                ),
            )),
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the Sentinels {} did not name master {:?} within {} s",
                    self.hosts(),
                    self.master_name,
                    ASK_TIMEOUT.as_secs()
                ),
            ))
            .into()),
        }
    }

    fn hosts(&self) -> String {
        self.sentinels
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The shared connection to `client`'s server. A master that is `followed` (Sentinels or a
/// Cluster name it) is replaced rather than restarted when it goes away, so calls fail after one
/// quick reconnection attempt (instead of retrying for seconds), and the caller's next try goes
/// to the master named then.
async fn shared_connection(client: &redis::Client, followed: bool) -> Result<ConnectionManager> {
    let mut config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECT_TIMEOUT));
    if followed {
        config = config.set_number_of_retries(1);
    }
    Ok(client.get_connection_manager_with_config(config).await?)
}

/// `host`, `host:port` or `[v6]:port`, with `default_port` when none is given.
pub(super) fn parse_host(text: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            port => (host, Some(port.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

pub(super) fn decode(text: &str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| Error::invalid("url", format!("{text:?} is not UTF-8 once decoded")))
}

/// The host and port a client connects to.
fn host_port(client: &redis::Client) -> Option<(String, u16)> {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Some((host.clone(), *port))
        }
        _ => None,
    }
}

/// Who names the master: the Sentinels, or a Cluster's slot map.
pub(super) trait Discovery: Send + 'static {
    /// The master's address as named now (`None`: none is named).
    fn named(&mut self) -> impl Future<Output = Result<Option<(String, u16)>>> + Send;
    /// A client of the master named now, checked.
    fn master(&mut self) -> impl Future<Output = Result<redis::Client>> + Send;
    /// What is followed, for logs.
    fn describe(&self) -> String;
}

/// Asks `discovery` once a second which server is the master and moves the shared connection
/// when it changed; ends when `current` is gone.
pub(super) async fn follow_failovers(
    mut discovery: impl Discovery,
    current: Weak<RwLock<Current>>,
) {
    loop {
        tokio::time::sleep(POLL).await;
        let Some(shared) = current.upgrade() else {
            return;
        };
        let in_use = host_port(&super::read(&shared).client);
        drop(shared);
        let named = match discovery.named().await {
            Ok(named) => named,
            Err(error) => {
                tracing::debug!(%error, "asking which server is the master failed");
                continue;
            }
        };
        if named.is_none() || named == in_use {
            continue;
        }
        let switched = async {
            let client = discovery.master().await?;
            let conn = tokio::time::timeout(ASK_TIMEOUT, shared_connection(&client, true))
                .await
                .map_err(|_| Error::invalid("url", "the new master did not answer in time"))??;
            Ok::<_, Error>(Current { client, conn })
        }
        .await;
        match switched {
            Ok(next) => {
                let Some(shared) = current.upgrade() else {
                    return;
                };
                let address = next.client.get_connection_info().addr().to_string();
                *shared
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                tracing::warn!(
                    followed = %discovery.describe(),
                    %address,
                    "a new master was named; connected to it"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "a new master was named that cannot be used yet");
            }
        }
    }
}

/// The Sentinels of a [`SentinelConfig`], with a kept connection to the first that answers.
struct Sentinels {
    config: SentinelConfig,
    client: SentinelClient,
    watch: Option<MultiplexedConnection>,
}

impl Discovery for Sentinels {
    async fn named(&mut self) -> Result<Option<(String, u16)>> {
        let named =
            master_address(&mut self.client, &mut self.watch, &self.config.master_name).await;
        if named.is_err() {
            self.watch = None;
        }
        named
    }

    async fn master(&mut self) -> Result<redis::Client> {
        self.config.master(&mut self.client).await
    }

    fn describe(&self) -> String {
        format!("the Sentinels' master {:?}", self.config.master_name)
    }
}

/// The master's address as a Sentinel sees it, over a kept connection to the first Sentinel
/// that answers.
async fn master_address(
    sentinels: &mut SentinelClient,
    watch: &mut Option<MultiplexedConnection>,
    master_name: &str,
) -> Result<Option<(String, u16)>> {
    let connection = match watch {
        Some(connection) => connection,
        None => {
            let client = tokio::time::timeout(ASK_TIMEOUT, sentinels.async_get_sentinel_client())
                .await
                .map_err(|_| Error::invalid("url", "no Sentinel answered in time"))??;
            watch.insert(
                client
                    .get_multiplexed_async_connection_with_config(&ask_config())
                    .await?,
            )
        }
    };
    let reply: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(master_name)
        .query_async(connection)
        .await?;
    Ok(reply.and_then(|(host, port)| Some((host, port.parse().ok()?))))
}

/// A connection's settings for a question to a Sentinel or a Cluster node.
pub(super) fn ask_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(ASK_TIMEOUT))
        .set_response_timeout(Some(ASK_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> SentinelConfig {
        match SentinelConfig::parse(url, None) {
            Ok(Some(config)) => config,
            Ok(None) => panic!("{url} is not a Sentinel URL"),
            Err(error) => panic!("{url}: {error}"),
        }
    }

    #[test]
    fn sentinel_urls_list_sentinels_and_name_the_master() {
        let config = parse(
            "redis+sentinel://app:p%40ss@10.0.0.1,10.0.0.2:26380,[::1]:5000/my%20master/3\
             ?sentinel_password=s3cret",
        );
        assert_eq!(
            config.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26379),
                ("10.0.0.2".to_owned(), 26380),
                ("::1".to_owned(), 5000)
            ]
        );
        assert_eq!(config.master_name, "my master");
        assert_eq!(config.db, 3);
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert_eq!(config.sentinel_username, None);
        assert_eq!(config.sentinel_password.as_deref(), Some("s3cret"));
        assert!(!config.tls);

        let config = parse("rediss+sentinel://:pw@sentinel/mymaster");
        assert!(config.tls);
        assert_eq!(config.username, None);
        assert_eq!(config.password.as_deref(), Some("pw"));
        assert_eq!(config.db, 0);
    }

    #[test]
    fn bad_sentinel_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            ("redis+sentinel://host:26379", "names the master"),
            ("redis+sentinel://host:26379/", "names the master"),
            ("redis+sentinel://host:port/m", "bad Sentinel"),
            ("redis+sentinel://a,,b/m", "bad Sentinel"),
            ("redis+sentinel://host/m/x", "not a number"),
            ("redis+sentinel://host/m/0/more", "unexpected"),
            ("redis+sentinel://host/m?timeout=1", "unknown parameter"),
        ] {
            let error = SentinelConfig::parse(url, None)
                .err()
                .unwrap_or_else(|| panic!("{url} was accepted"));
            assert!(error.to_string().contains(reason), "{url}: {error}");
        }
        assert!(
            SentinelConfig::parse("redis://host/0", None)
                .ok()
                .flatten()
                .is_none()
        );
    }
}

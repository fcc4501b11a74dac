//! Redis Cluster, in one slot: with a key prefix that is a hash tag (`{rq}`), every key rqrs
//! and RQ write hashes to the same slot, so one master holds them all and every script's keys,
//! declared or built inside it from the prefix, are on that master. A Cluster URL lists seed
//! nodes:
//!
//! ```text
//! redis+cluster://[[user]:password@]host[:port][,host[:port]...]   (rediss+cluster:// for TLS)
//! ```
//!
//! The backend asks a seed which master serves the prefix's slot (`CLUSTER KEYSLOT`, `CLUSTER
//! SLOTS`) and talks to that master as to a single server; once a second it asks again, and
//! after a failover (a replica promoted) it moves its connections to the new master, as it does
//! for Sentinel. What this gives is the Cluster's high availability, not sharding: one master
//! carries all the work. Sharding by queue would need a prefix per group of queues (a
//! connection per prefix), since a job's keys and its queue's registries must stay in one slot
//! for the scripts to stay atomic.

use percent_encoding::percent_decode_str;
use redis::Value;
use redis::aio::MultiplexedConnection;

use super::endpoint::{ASK_TIMEOUT, Discovery, ask_config, parse_host};
use crate::backend::redact_url as redact;
use crate::error::{Error, Result};

/// The port of a seed that gives none.
const DEFAULT_PORT: u16 = 6379;

/// What a Cluster URL says, and the key whose slot it routes to.
#[derive(Clone)]
pub(super) struct ClusterConfig {
    seeds: Vec<(String, u16)>,
    /// `user:password` as written in the URL (percent-encoded), for every node's URL.
    userinfo: Option<String>,
    tls: bool,
    /// Trusted roots (PEM) for TLS, instead of the system's.
    root_ca: Option<Vec<u8>>,
    /// A key under the prefix: its slot is every key's.
    slot_key: String,
}

impl ClusterConfig {
    /// `None` when the URL is not a Cluster URL. The key prefix must be a hash tag.
    pub(super) fn parse(url: &str, root_ca: Option<&[u8]>, prefix: &str) -> Result<Option<Self>> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
            (true, rest)
        } else {
            return Ok(None);
        };
        let invalid = |reason: String| Error::invalid("url", format!("{}: {reason}", redact(url)));
        if !has_hash_tag(prefix) {
            return Err(Error::invalid(
                "key_prefix",
                format!(
                    "{prefix:?} on Redis Cluster: the key prefix must be a hash tag, such as \
                     {{rq}}, so that every key is in one slot; set --key-prefix or \
                     RQ_KEY_PREFIX (the same for Python RQ 3.0)"
                ),
            ));
        }
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo.to_owned()), hosts),
            None => (None, rest),
        };
        let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
        if hosts.contains(['/', '?']) {
            return Err(invalid(
                "a Cluster URL lists its seed nodes only (a Cluster has one database, 0)".into(),
            ));
        }
        if let Some(userinfo) = &userinfo {
            percent_decode_str(userinfo)
                .decode_utf8()
                .map_err(|_| invalid("the login is not UTF-8 once decoded".into()))?;
        }
        let seeds = hosts
            .split(',')
            .map(|host| {
                parse_host(host, DEFAULT_PORT)
                    .ok_or_else(|| invalid(format!("bad seed node {host:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(ClusterConfig {
            seeds,
            userinfo,
            tls,
            root_ca: root_ca.map(<[u8]>::to_vec),
            slot_key: format!("{prefix}:slot"),
        }))
    }

    /// A client of the node at `host:port`, with the URL's login and TLS.
    fn node(&self, host: &str, port: u16) -> Result<redis::Client> {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let login = self
            .userinfo
            .as_ref()
            .map(|userinfo| format!("{userinfo}@"))
            .unwrap_or_default();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let url = format!("{scheme}://{login}{host}:{port}");
        let invalid =
            |e: redis::RedisError| Error::invalid("url", format!("{}: {e}", redact(&url)));
        match &self.root_ca {
            Some(root_ca) if self.tls => redis::Client::build_with_tls(
                url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_ca.clone()),
                },
            )
            .map_err(invalid),
            _ => redis::Client::open(url.as_str()).map_err(invalid),
        }
    }

    /// A client of the master that serves the prefix's slot now, as the first seed that
    /// answers says.
    pub(super) async fn master(&self) -> Result<redis::Client> {
        let (host, port) = self.discovery().named().await?.ok_or_else(|| {
            Error::invalid(
                "url",
                "no Cluster node serves the key prefix's slot: is the Cluster's state ok?",
            )
        })?;
        self.node(&host, port)
    }

    /// The follower of the slot's master.
    pub(super) fn discovery(&self) -> SlotMaster {
        SlotMaster {
            config: self.clone(),
            watch: None,
        }
    }
}

/// Whether `prefix` holds a hash tag Redis Cluster hashes alone: a `{` followed later by a `}`
/// with something in between.
fn has_hash_tag(prefix: &str) -> bool {
    prefix
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty())
}

/// Asks the seeds which master serves the slot, over a kept connection to the first that
/// answers.
pub(super) struct SlotMaster {
    config: ClusterConfig,
    watch: Option<MultiplexedConnection>,
}

impl SlotMaster {
    async fn ask(&mut self) -> Result<Option<(String, u16)>> {
        let connection = match &mut self.watch {
            Some(connection) => connection,
            None => {
                let mut last = None;
                for (host, port) in &self.config.seeds {
                    let client = self.config.node(host, *port)?;
                    let connected = tokio::time::timeout(
                        ASK_TIMEOUT,
                        client.get_multiplexed_async_connection_with_config(&ask_config()),
                    )
                    .await;
                    match connected {
                        Ok(Ok(connection)) => {
                            last = Some(connection);
                            break;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, host, port, "a seed node is out"),
                        Err(_) => tracing::debug!(host, port, "a seed node did not answer"),
                    }
                }
                let Some(connection) = last else {
                    return Err(redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "no seed node of the Cluster answered",
                    ))
                    .into());
                };
                self.watch.insert(connection)
            }
        };
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&self.config.slot_key)
            .query_async(connection)
            .await?;
        let slots: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(connection)
            .await?;
        Ok(master_of(&slots, slot))
    }
}

impl Discovery for SlotMaster {
    async fn named(&mut self) -> Result<Option<(String, u16)>> {
        let named = self.ask().await;
        if named.is_err() {
            self.watch = None;
        }
        named
    }

    async fn master(&mut self) -> Result<redis::Client> {
        let (host, port) = self
            .named()
            .await?
            .ok_or_else(|| Error::invalid("url", "no Cluster node serves the slot"))?;
        self.config.node(&host, port)
    }

    fn describe(&self) -> String {
        format!("the Cluster master of {}'s slot", self.config.slot_key)
    }
}

/// The master's address in a `CLUSTER SLOTS` reply for `slot`: each entry is `[start, end,
/// [host, port, id, ...], replicas...]`.
fn master_of(slots: &Value, slot: i64) -> Option<(String, u16)> {
    let Value::Array(ranges) = slots else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(parts) = range else {
            return None;
        };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            return None;
        };
        if !(*start..=*end).contains(&slot) {
            return None;
        }
        let host = match master.first()? {
            Value::BulkString(host) => String::from_utf8(host.clone()).ok()?,
            Value::SimpleString(host) => host.clone(),
            _ => return None,
        };
        let Value::Int(port) = master.get(1)? else {
            return None;
        };
        Some((host, u16::try_from(*port).ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_list_seeds_and_need_a_hash_tag() {
        let config = ClusterConfig::parse("redis+cluster://:pw@a:7000,b,[::1]:7002/", None, "{rq}")
            .unwrap()
            .unwrap();
        assert_eq!(
            config.seeds,
            [
                ("a".to_owned(), 7000),
                ("b".to_owned(), 6379),
                ("::1".to_owned(), 7002)
            ]
        );
        assert_eq!(config.userinfo.as_deref(), Some(":pw"));
        assert!(!config.tls);
        assert!(
            ClusterConfig::parse("redis://a:1", None, "rq")
                .unwrap()
                .is_none()
        );
        for (url, prefix, reason) in [
            ("redis+cluster://a:1", "rq", "hash tag"),
            ("redis+cluster://a:1", "{}x", "hash tag"),
            ("redis+cluster://a:1/2", "{rq}", "database"),
            ("redis+cluster://a:x", "{rq}", "bad seed"),
        ] {
            let error = ClusterConfig::parse(url, None, prefix)
                .err()
                .unwrap_or_else(|| panic!("{url} with {prefix} was accepted"));
            assert!(error.to_string().contains(reason), "{url}: {error}");
        }
        assert!(has_hash_tag("app{rq}"));
    }

    #[test]
    fn the_master_of_a_slot_is_read_from_cluster_slots() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let slots = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
                node("10.0.0.3", 7002),
            ]),
        ]);
        assert_eq!(master_of(&slots, 12), Some(("10.0.0.1".to_owned(), 7000)));
        assert_eq!(master_of(&slots, 9000), Some(("10.0.0.2".to_owned(), 7001)));
        assert_eq!(master_of(&Value::Nil, 1), None);
    }
}

//! A Sentinel-managed group on loopback for failover tests: a master, its replicas and a few
//! Sentinels watching it, each a private process on a free port, all killed on drop.
//!
//! The Sentinels judge a master down after one second without an answer, so a killed master
//! is replaced within a few seconds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::RedisServer;
use crate::redis_server::{free_port, wait_until_listening, wait_until_up};
use crate::tls::make_certificates;

/// The name the Sentinels know the master by.
pub const MASTER_NAME: &str = "rqrs-master";

/// A master, its replicas and the Sentinels that watch them.
#[derive(Debug)]
pub struct SentinelGroup {
    /// The data servers; which of them is the master changes with failovers.
    servers: Vec<RedisServer>,
    sentinels: Vec<Sentinel>,
    /// How the harness reaches them.
    access: Access,
    /// The certificates, when they speak TLS.
    _certificates: Option<tempfile::TempDir>,
}

/// How the harness reaches the group's processes: the password of every server and Sentinel,
/// and the directory of the certificates when they speak TLS only.
#[derive(Debug, Clone, Default)]
struct Access {
    password: Option<String>,
    tls: Option<PathBuf>,
}

#[derive(Debug)]
struct Sentinel {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SentinelGroup {
    /// Starts a master with `replicas` replicas and `sentinels` Sentinels (a majority of them
    /// is the quorum), and returns once every Sentinel knows every replica and the other
    /// Sentinels, so that a failover can happen.
    ///
    /// # Panics
    /// When a server does not start, or the group does not form within 30 s.
    pub fn start(replicas: usize, sentinels: usize) -> Self {
        Self::start_inner(replicas, sentinels, None, false)
    }

    /// As [`start`](Self::start), with every server and Sentinel asking for `password`
    /// (`requirepass`; the replicas and Sentinels log in to the master with it).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with_password(replicas: usize, sentinels: usize, password: &str) -> Self {
        Self::start_inner(replicas, sentinels, Some(password), false)
    }

    /// As [`start`](Self::start), with every server and Sentinel speaking TLS only (a
    /// certificate authority of its own, [`ca_pem`](Self::ca_pem)), replication and the
    /// Sentinels' connections included.
    ///
    /// # Panics
    /// As [`start`](Self::start); also when `openssl` is missing.
    pub fn start_tls(replicas: usize, sentinels: usize) -> Self {
        Self::start_inner(replicas, sentinels, None, true)
    }

    fn start_inner(replicas: usize, sentinels: usize, password: Option<&str>, tls: bool) -> Self {
        let certificates = tls.then(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            make_certificates(dir.path());
            dir
        });
        let access = Access {
            password: password.map(str::to_owned),
            tls: certificates.as_ref().map(|dir| dir.path().to_owned()),
        };
        let auth: Vec<&str> = match password {
            Some(password) => vec!["--requirepass", password, "--masterauth", password],
            None => Vec::new(),
        };
        let start = |args: &[&str]| match &access.tls {
            None => RedisServer::start_with(args),
            Some(certificates) => RedisServer::start_tls_with(certificates, args),
        };
        let master = start(&auth);
        let master_port = master.port().to_string();
        let mut servers = vec![master];
        for _ in 0..replicas {
            let mut args = vec!["--replicaof", "127.0.0.1", &master_port];
            args.extend(&auth);
            servers.push(start(&args));
        }
        // A Sentinel learns of replicas from the master's INFO, which it reads at once and
        // then every 10 s: replicas still syncing would be missed for that long.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !servers[1..]
            .iter()
            .all(|replica| link_is_up(replica.port(), &access))
        {
            assert!(
                Instant::now() < deadline,
                "the replicas did not sync within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let quorum = sentinels / 2 + 1;
        let sentinels = (0..sentinels)
            .map(|_| start_sentinel(&master_port, quorum, &access))
            .collect();
        let group = SentinelGroup {
            servers,
            sentinels,
            access,
            _certificates: certificates,
        };
        group.wait_until_formed(replicas);
        group
    }

    /// `redis+sentinel://127.0.0.1:<port>,.../rqrs-master` (`rediss+sentinel://` with TLS).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        let scheme = match self.access.tls {
            None => "redis+sentinel",
            Some(_) => "rediss+sentinel",
        };
        format!("{scheme}://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The certificate authority (PEM) of a group started with [`start_tls`](Self::start_tls).
    ///
    /// # Panics
    /// For a group without TLS.
    pub fn ca_pem(&self) -> Vec<u8> {
        let certificates = self.access.tls.as_ref().expect("a group started with TLS");
        std::fs::read(certificates.join("ca.crt")).expect("the CA certificate")
    }

    /// The port of the server the Sentinels name as master now.
    ///
    /// # Panics
    /// When no Sentinel answers.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|sentinel| named_master(sentinel.port, &self.access))
            .expect("a Sentinel names the master")
    }

    /// The data server on `port`.
    ///
    /// # Panics
    /// When no server of the group listens there.
    pub fn server(&mut self, port: u16) -> &mut RedisServer {
        self.servers
            .iter_mut()
            .find(|server| server.port() == port)
            .expect("a server of the group")
    }

    /// Waits until every replica holds every write the master acknowledged so far (`WAIT`),
    /// so that killing the master loses none of them.
    ///
    /// # Panics
    /// When the replicas do not catch up within 30 s.
    pub fn replicate(&self) {
        let replicas = self.servers.len() - 1;
        let acknowledged: Option<usize> =
            connection(self.master_port(), &self.access).and_then(|mut master| {
                redis::cmd("WAIT")
                    .arg(replicas)
                    .arg(30_000)
                    .query(&mut master)
                    .ok()
            });
        assert_eq!(
            acknowledged,
            Some(replicas),
            "the replicas did not catch up with the master"
        );
    }

    /// Kills the master (SIGKILL) and returns its port; [`wait_for_failover`] waits for the
    /// Sentinels to promote a replica.
    ///
    /// [`wait_for_failover`]: Self::wait_for_failover
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        self.server(port).kill();
        port
    }

    /// Waits until every Sentinel names a master other than `old_port` and that server answers
    /// as a master; returns its port.
    ///
    /// # Panics
    /// After 60 s.
    pub fn wait_for_failover(&self, old_port: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let named: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(|sentinel| named_master(sentinel.port, &self.access))
                .collect();
            if let Some(Some(port)) = named.first()
                && *port != old_port
                && named.iter().all(|other| *other == Some(*port))
                && role(*port, &self.access).as_deref() == Some("master")
            {
                return *port;
            }
            assert!(
                Instant::now() < deadline,
                "no failover from port {old_port} within 60 s (Sentinels name {named:?})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server on `port` again after [`kill_master`](Self::kill_master) and waits
    /// until the Sentinels have made it a replica of the current master and it is in sync, so
    /// that the group can fail over again.
    ///
    /// # Panics
    /// When it does not start, or is not a synced replica within 60 s.
    pub fn rejoin(&mut self, port: u16) {
        self.server(port).start_again();
        let deadline = Instant::now() + Duration::from_secs(60);
        let access = &self.access;
        while !(role(port, access).as_deref() == Some("slave") && link_is_up(port, access)) {
            assert!(
                Instant::now() < deadline,
                "the server on port {port} did not rejoin as a replica within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_formed(&self, replicas: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let others = self.sentinels.len().saturating_sub(1);
        loop {
            let formed = self.sentinels.iter().all(|sentinel| {
                master_state(sentinel.port, &self.access).is_some_and(|state| {
                    state.get("num-slaves") == Some(&replicas.to_string())
                        && state.get("num-other-sentinels") == Some(&others.to_string())
                })
            });
            if formed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinel group did not form within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn start_sentinel(master_port: &str, quorum: usize, access: &Access) -> Sentinel {
    for _ in 0..10 {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let config = dir.path().join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 2000\n",
            dir = dir.path().display()
        );
        let text = match &access.tls {
            Some(certificates) => {
                let path = |name: &str| certificates.join(name).display().to_string();
                format!(
                    "{}port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
                     tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
                    text.replacen(&format!("port {port}\n"), "", 1),
                    path("server.crt"),
                    path("server.key"),
                    path("ca.crt"),
                )
            }
            None => text,
        };
        let text = match &access.password {
            Some(password) => format!(
                "{text}requirepass {password}\nsentinel auth-pass {MASTER_NAME} {password}\n\
                 sentinel sentinel-pass {password}\n"
            ),
            None => text,
        };
        std::fs::write(&config, text).expect("the Sentinel's config is written");
        let child = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run redis-server --sentinel ({error}); install it: apt-get install \
                     -y redis-server"
                )
            });
        let up = match access.tls {
            None => wait_until_up(child, port),
            Some(_) => wait_until_listening(child, port),
        };
        if let Some(child) = up {
            return Sentinel {
                child,
                port,
                _dir: dir,
            };
        }
    }
    panic!("redis-server --sentinel did not start on any of 10 free ports");
}

fn connection(port: u16, access: &Access) -> Option<redis::Connection> {
    let login = access
        .password
        .as_ref()
        .map(|password| format!(":{password}@"))
        .unwrap_or_default();
    let client = match &access.tls {
        None => redis::Client::open(format!("redis://{login}127.0.0.1:{port}")).ok()?,
        Some(certificates) => redis::Client::build_with_tls(
            format!("rediss://{login}127.0.0.1:{port}"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(certificates.join("ca.crt")).ok()?),
            },
        )
        .ok()?,
    };
    client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()
}

/// The master's port as the Sentinel on `port` names it.
fn named_master(port: u16, access: &Access) -> Option<u16> {
    let reply: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(MASTER_NAME)
        .query(&mut connection(port, access)?)
        .ok()?;
    reply?.1.parse().ok()
}

/// What the Sentinel on `port` knows of the master.
fn master_state(port: u16, access: &Access) -> Option<std::collections::HashMap<String, String>> {
    redis::cmd("SENTINEL")
        .arg("master")
        .arg(MASTER_NAME)
        .query(&mut connection(port, access)?)
        .ok()
}

/// The first word of `ROLE` on `port`: master, slave or sentinel.
fn role(port: u16, access: &Access) -> Option<String> {
    let reply: Vec<redis::Value> = redis::cmd("ROLE")
        .query(&mut connection(port, access)?)
        .ok()?;
    match reply.first()? {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// Whether the replica on `port` is in sync with its master.
fn link_is_up(port: u16, access: &Access) -> bool {
    let Some(mut conn) = connection(port, access) else {
        return false;
    };
    redis::cmd("INFO")
        .arg("replication")
        .query::<String>(&mut conn)
        .is_ok_and(|info| info.contains("master_link_status:up"))
}

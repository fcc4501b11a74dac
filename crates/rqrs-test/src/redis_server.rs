//! A private `redis-server` on a free loopback port in a temporary directory, killed on drop;
//! it can be killed and started again on the same port and directory, to test outages.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server that lives as long as this value.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// The extra arguments it was started with, for a restart.
    extra: Vec<String>,
    /// The directory of the certificates (`ca.crt`, `server.crt`, `server.key`) when it speaks
    /// TLS only.
    tls: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a server with `--save "" --appendonly no`.
    ///
    /// # Panics
    /// When `redis-server` is not installed (with the command that installs it), or does not
    /// start after several ports were tried.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_in_mode(extra, None)
    }

    /// Starts a server that speaks TLS only (replication too), with the certificates in
    /// `certificates` (see [`TlsRedisServer`](crate::TlsRedisServer), which makes them), and
    /// extra arguments. Clients need no certificate of their own.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn start_tls_with(certificates: &Path, extra: &[&str]) -> Self {
        Self::start_in_mode(extra, Some(certificates.to_owned()))
    }

    fn start_in_mode(extra: &[&str], tls: Option<PathBuf>) -> Self {
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let port = free_port();
            if let Some(child) = spawn(dir.path(), port, extra, tls.as_deref()) {
                let extra = extra.iter().map(|arg| (*arg).to_owned()).collect();
                return RedisServer {
                    child,
                    port,
                    dir,
                    extra,
                    tls,
                };
            }
        }
        panic!("redis-server did not start on any of 10 free ports");
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no shutdown save) and waits for it to exit;
    /// [`start_again`](Self::start_again) brings it back. Clients see connection errors in
    /// between. What it holds afterwards is whatever it persisted: nothing with the default
    /// arguments, everything acknowledged with `--appendonly yes --appendfsync always`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after [`kill`](Self::kill), on the same port and directory.
    ///
    /// # Panics
    /// When the server does not start again within a few seconds (the port was taken by
    /// another process in the meantime, say).
    pub fn start_again(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        // The port was just freed; a few tries cover a slow release of the socket.
        for _ in 0..20 {
            if let Some(child) = spawn(self.dir.path(), self.port, &extra, self.tls.as_deref()) {
                self.child = child;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start again on port {}", self.port);
    }

    /// A plain client to look at the data directly.
    ///
    /// # Panics
    /// When the URL is refused (it cannot be).
    pub fn client(&self) -> redis::Client {
        match &self.tls {
            None => redis::Client::open(self.url()).expect("a valid url"),
            Some(certificates) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(
                        std::fs::read(certificates.join("ca.crt")).expect("the CA certificate"),
                    ),
                },
            )
            .expect("a valid url"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Spawns the server and waits for it to answer; `None` if it exited (a lost race for the
/// port).
fn spawn(dir: &Path, port: u16, extra: &[&str], tls: Option<&Path>) -> Option<Child> {
    let port_arguments: Vec<String> = match tls {
        None => vec!["--port".into(), port.to_string()],
        Some(certificates) => {
            let path = |name: &str| certificates.join(name).to_string_lossy().into_owned();
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                path("server.crt"),
                "--tls-key-file".into(),
                path("server.key"),
                "--tls-ca-cert-file".into(),
                path("ca.crt"),
                "--tls-auth-clients".into(),
                "no".into(),
                "--tls-replication".into(),
                "yes".into(),
            ]
        }
    };
    let child = Command::new("redis-server")
        .args(&port_arguments)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run redis-server ({error}); install it: apt-get install -y redis-server")
        });
    match tls {
        None => wait_until_up(child, port),
        Some(_) => wait_until_listening(child, port),
    }
}

/// Waits until the server spawned as `child` accepts connections on `port` (a TLS port, which
/// a plain PING cannot reach); `None` (and the child reaped) if it exited first or did not
/// listen within 10 s.
pub(crate) fn wait_until_listening(mut child: Child, port: u16) -> Option<Child> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Waits until the server spawned as `child` answers on `port`; `None` (and the child reaped)
/// if it exited first or did not answer within 10 s.
pub(crate) fn wait_until_up(mut child: Child, port: u16) -> Option<Child> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a valid url");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        // Any answer means it is up, a refusal too (NOAUTH when the default user is off).
        let answered = match client.get_connection_with_timeout(Duration::from_millis(200)) {
            Ok(mut conn) => match redis::cmd("PING").query::<String>(&mut conn) {
                Ok(_) => true,
                Err(error) => !error.is_io_error() && !error.is_connection_refusal(),
            },
            Err(error) => {
                !error.is_io_error() && !error.is_connection_refusal() && !error.is_timeout()
            }
        };
        if answered {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

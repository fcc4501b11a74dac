//! A private `redis-server` that speaks TLS only, with a certificate authority made for it by
//! `openssl`, for the tests of `rediss://` connections.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TLS-only redis-server that lives as long as this value.
#[derive(Debug)]
pub struct TlsRedisServer {
    child: Child,
    port: u16,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl TlsRedisServer {
    /// Makes a CA and a server certificate for 127.0.0.1, and starts the server on a free port
    /// (no plain port; clients need no certificate of their own).
    ///
    /// # Panics
    /// When `openssl` or `redis-server` is missing, or the server does not start.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        make_certificates(dir.path());
        let ca_pem = std::fs::read(dir.path().join("ca.crt")).expect("the CA certificate");
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|addr| addr.port())
                .expect("a free loopback port");
            let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                ])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--tls-auth-clients",
                    "no",
                ])
                .args([
                    "--tls-cert-file",
                    &path("server.crt"),
                    "--tls-key-file",
                    &path("server.key"),
                ])
                .args(["--tls-ca-cert-file", &path("ca.crt"), "--dir", &path("")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs; install it: apt-get install -y redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TlsRedisServer {
                        child,
                        port,
                        ca_pem,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the TLS redis-server did not start on any of 10 free ports");
    }

    /// `rediss://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The certificate authority that signed the server's certificate, in PEM.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
}

impl Drop for TlsRedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn make_certificates(dir: &Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("a temporary file");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=rqrs test CA",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs; install it: apt-get install -y openssl");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

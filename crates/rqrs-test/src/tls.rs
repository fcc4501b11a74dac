//! A private `redis-server` that speaks TLS only, with a certificate authority made for it by
//! `openssl`, for the tests of `rediss://` connections; the certificates also serve TLS
//! Sentinel groups.

use std::path::Path;
use std::process::Command;

use crate::RedisServer;

/// A TLS-only redis-server that lives as long as this value.
#[derive(Debug)]
pub struct TlsRedisServer {
    server: RedisServer,
    ca_pem: Vec<u8>,
    _certificates: tempfile::TempDir,
}

impl TlsRedisServer {
    /// Makes a CA and a server certificate for 127.0.0.1, and starts the server on a free port
    /// (no plain port; clients need no certificate of their own).
    ///
    /// # Panics
    /// When `openssl` or `redis-server` is missing, or the server does not start.
    pub fn start() -> Self {
        let certificates = tempfile::tempdir().expect("a temporary directory");
        make_certificates(certificates.path());
        let ca_pem = std::fs::read(certificates.path().join("ca.crt")).expect("the CA certificate");
        TlsRedisServer {
            server: RedisServer::start_tls_with(certificates.path(), &[]),
            ca_pem,
            _certificates: certificates,
        }
    }

    /// `rediss://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The certificate authority (PEM) that signed the server's certificate.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
}

/// Makes `ca.crt`, and `server.crt`/`server.key` for 127.0.0.1 signed by it, in `dir`.
pub(crate) fn make_certificates(dir: &Path) {
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

//! Sending a job's webhooks (RQ 2.10's `Webhook`) once its final state is recorded: a plain
//! HTTP/1.1 request over TCP, or over TLS with the system's trusted roots for `https://`. They
//! are sent in the background, so that a slow endpoint does not hold the job's slot; a stop
//! waits for them. Failures are logged, never raised.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use tokio_util::task::TaskTracker;

use crate::job::{Job, Webhook, WebhookStatus};

/// Sends the job's webhooks for `status` in a task of `tracker`, if it has any.
pub(super) fn spawn_all(
    tracker: &TaskTracker,
    job: &Job,
    status: WebhookStatus,
    exc_info: Option<&str>,
) {
    if job
        .lifecycle
        .webhooks
        .iter()
        .any(|webhook| webhook.status() == status)
    {
        let (job, exc_info) = (job.clone(), exc_info.map(str::to_owned));
        tracker.spawn(async move { send_all(&job, status, exc_info.as_deref()).await });
    }
}

/// Sends the job's webhooks for `status`, one after the other.
async fn send_all(job: &Job, status: WebhookStatus, exc_info: Option<&str>) {
    for webhook in job
        .lifecycle
        .webhooks
        .iter()
        .filter(|webhook| webhook.status() == status)
    {
        let seconds = webhook.timeout_secs();
        match tokio::time::timeout(Duration::from_secs(seconds), send(webhook, job, exc_info)).await
        {
            Ok(Ok(code)) if (200..400).contains(&code) => {}
            Ok(Ok(code)) => {
                tracing::warn!(job = %job.id(), url = webhook.url(), code, "webhook answered with an error")
            }
            Ok(Err(error)) => {
                tracing::warn!(job = %job.id(), url = webhook.url(), %error, "webhook failed")
            }
            Err(_) => {
                tracing::warn!(job = %job.id(), url = webhook.url(), seconds, "webhook timed out")
            }
        }
    }
}

/// RQ's payload: the job, the status, and the error of a failure.
fn payload(job: &Job, status: WebhookStatus, exc_info: Option<&str>) -> Value {
    let time = |time: Option<chrono::DateTime<chrono::Utc>>| time.map(|time| time.to_rfc3339());
    let mut payload = json!({
        "job_id": job.id().as_str(),
        "func_name": job.func_name(),
        "status": status,
        "enqueued_at": time(job.enqueued_at()),
        "ended_at": time(Some(chrono::Utc::now())),
    });
    if status == WebhookStatus::Failed {
        payload["exc_info"] = json!(exc_info);
    }
    payload
}

/// Sends one request; returns the response's status code.
async fn send(webhook: &Webhook, job: &Job, exc_info: Option<&str>) -> Result<u16, String> {
    let (tls, rest) = match webhook.url().split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some(("https", rest)) => (true, rest),
        _ => return Err(format!("{} is not an http(s) URL", webhook.url())),
    };
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |slash| (&rest[..slash], &rest[slash..]));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => (
            name,
            port.parse()
                .map_err(|_| format!("bad port in {}", webhook.url()))?,
        ),
        _ => (host, if tls { 443 } else { 80 }),
    };
    let mut request = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: rqrs/{}\r\n",
        if webhook.is_post() { "POST" } else { "GET" },
        env!("CARGO_PKG_VERSION")
    );
    let body = if webhook.is_post() {
        let body = payload(job, webhook.status(), exc_info).to_string();
        if !webhook
            .headers()
            .any(|(header, _)| header.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        body
    } else {
        String::new()
    };
    for (header, value) in webhook.headers() {
        if header.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            return Err("a header holds a line break".to_owned());
        }
        request.push_str(&format!("{header}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let stream = TcpStream::connect((name.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| e.to_string())?;
    if tls {
        let connector = TLS.clone();
        let server =
            rustls::pki_types::ServerName::try_from(name.trim_matches(['[', ']']).to_owned())
                .map_err(|e| e.to_string())?;
        let stream = connector
            .connect(server, stream)
            .await
            .map_err(|e| e.to_string())?;
        exchange(stream, request.as_bytes()).await
    } else {
        exchange(stream, request.as_bytes()).await
    }
}

/// Writes the request and reads the status code from the response's first line.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<u16, String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.windows(2).any(|pair| pair == b"\r\n") {
        let read = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP response: {:?}",
                line.lines().next().unwrap_or_default()
            )
        })
}

/// The TLS client of `https://` webhooks, trusting the system's roots: read from disk once.
static TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    crate::backend::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(certificate);
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
});

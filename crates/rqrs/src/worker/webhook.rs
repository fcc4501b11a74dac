//! Sending a job's webhooks (RQ 2.10's `Webhook`) once its final state is recorded, over
//! reqwest (HTTP/1.1 or HTTP/2, TLS with the system's trusted roots for `https://`). They are
//! sent in the background, so that a slow endpoint does not hold the job's slot; a stop waits
//! for them. Failures are logged, never raised.

use std::sync::LazyLock;

use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

use crate::backend::types::JobRecord;
use crate::job::{Webhook, WebhookStatus};

/// The client of every webhook, made once (it reads the system's certificates). Connections
/// are not kept between webhooks: they are few, and an endpoint may close one at any time.
static CLIENT: LazyLock<Result<reqwest::Client, String>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .user_agent(concat!("rqrs/", env!("CARGO_PKG_VERSION")))
        .http1_title_case_headers()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|error| error.to_string())
});

/// Sends the job's webhooks for `status` in a task of `tracker`, if it has any.
pub(super) fn spawn_all(
    tracker: &TaskTracker,
    job: &JobRecord,
    status: WebhookStatus,
    exc_info: Option<&str>,
) {
    let webhooks: Vec<Webhook> = job
        .lifecycle
        .webhooks
        .iter()
        .filter(|webhook| webhook.status() == status)
        .cloned()
        .collect();
    if webhooks.is_empty() {
        return;
    }
    let body = payload(job, status, exc_info);
    let job = job.id.clone();
    tracker.spawn(async move {
        let client = match &*CLIENT {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%job, %error, "cannot make an HTTP client; webhooks not sent");
                return;
            }
        };
        for webhook in &webhooks {
            match send(client, webhook, &body).await {
                Ok(code) if code.is_success() || code.is_redirection() => {}
                Ok(code) => {
                    tracing::warn!(%job, url = webhook.url(), code = code.as_u16(), "webhook answered with an error");
                }
                Err(error) if error.is_timeout() => {
                    tracing::warn!(%job, url = webhook.url(), timeout = ?webhook.time_limit(), "webhook timed out");
                }
                Err(error) => {
                    tracing::warn!(%job, url = webhook.url(), error = %ErrorChain(&error), "webhook failed");
                }
            }
        }
    });
}

/// RQ's payload: the job, the status, and the error of a failure.
fn payload(job: &JobRecord, status: WebhookStatus, exc_info: Option<&str>) -> Value {
    let time = |time: Option<chrono::DateTime<chrono::Utc>>| time.map(|time| time.to_rfc3339());
    let mut payload = json!({
        "job_id": job.id.as_str(),
        "func_name": job.call.as_ref().map_or("", |call| call.func_name.as_str()),
        "status": status,
        "enqueued_at": time(job.enqueued_at),
        "ended_at": time(Some(chrono::Utc::now())),
    });
    if status == WebhookStatus::Failed {
        payload["exc_info"] = json!(exc_info);
    }
    payload
}

/// Sends one request: a GET, or a POST of `body` as JSON; returns the response's status.
async fn send(
    client: &reqwest::Client,
    webhook: &Webhook,
    body: &Value,
) -> reqwest::Result<reqwest::StatusCode> {
    let mut request = if webhook.is_post() {
        client.post(webhook.url())
    } else {
        client.get(webhook.url())
    };
    for (name, value) in webhook.headers() {
        request = request.header(name, value);
    }
    if webhook.is_post() {
        request = request.json(body);
    }
    let response = request.timeout(webhook.time_limit()).send().await?;
    Ok(response.status())
}

/// An error with its causes, for the log (reqwest's own text leaves them out).
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

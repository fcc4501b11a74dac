//! Webhooks (RQ 2.10's `Webhook`): HTTP requests a worker sends when a job reaches a final state.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::defaults::WEBHOOK_TIMEOUT;
use crate::error::{Error, Result};

/// An HTTP request a worker sends when a job reaches a final state (RQ 2.10's `Webhook`): a
/// GET, or a POST of `{"job_id", "func_name", "status", "enqueued_at", "ended_at"}` (and
/// `"exc_info"` for a failure). Errors are logged, never raised: an endpoint that is down cannot
/// fail the job.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use rqrs::{Webhook, WebhookStatus};
///
/// let hook = Webhook::new("https://example.com/jobs", WebhookStatus::Failed)
///     .post()
///     .header("Authorization", "Bearer token")
///     .timeout(Duration::from_secs(5));
/// assert_eq!(hook.url(), "https://example.com/jobs");
/// assert_eq!(hook.time_limit(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    url: String,
    job_status: WebhookStatus,
    #[serde(default = "Webhook::default_method")]
    method: String,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// Seconds, as Python's `Webhook.to_dict()` writes them.
    #[serde(default = "Webhook::default_timeout")]
    timeout: u64,
}

/// When a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// After a success.
    Finished,
    /// After a failure (a stopped job included, as in RQ).
    Failed,
}

impl Webhook {
    /// A GET of `url` (http:// or https://) when the job reaches `status`, with RQ's 10 s
    /// timeout.
    pub fn new(url: impl Into<String>, status: WebhookStatus) -> Self {
        Webhook {
            url: url.into(),
            job_status: status,
            method: Self::default_method(),
            headers: None,
            timeout: Self::default_timeout(),
        }
    }

    fn default_method() -> String {
        "GET".to_owned()
    }

    fn default_timeout() -> u64 {
        WEBHOOK_TIMEOUT.as_secs()
    }

    /// POST the job's summary as JSON instead of a bare GET.
    pub fn post(mut self) -> Self {
        self.method = "POST".to_owned();
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .insert(name.into(), value.into());
        self
    }

    /// How long the request may take (whole seconds, rounded up).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = crate::ttl::whole_seconds(timeout);
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// When it is sent.
    pub fn status(&self) -> WebhookStatus {
        self.job_status
    }

    /// Whether it is a POST (else a GET).
    pub fn is_post(&self) -> bool {
        self.method.eq_ignore_ascii_case("POST")
    }

    /// The extra request headers.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .flatten()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How long the request may take.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::invalid(
                "webhook",
                format!("{:?} is not an http:// or https:// URL", self.url),
            ));
        }
        if !(self.method.eq_ignore_ascii_case("GET") || self.is_post()) || self.timeout == 0 {
            return Err(Error::invalid(
                "webhook",
                "the method is GET or POST and the timeout positive",
            ));
        }
        Ok(())
    }
}

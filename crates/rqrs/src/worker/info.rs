//! What a worker publishes about itself (on Redis, RQ's `rq:worker:<name>`), readable for any
//! worker, Python's or rqrs's.

use chrono::{DateTime, Utc};

/// A worker's state, with RQ's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkerState {
    /// Registered, not yet looking for jobs.
    Started,
    /// Waiting for jobs.
    Idle,
    /// Running at least one job.
    Busy,
    /// Not taking jobs while workers are suspended.
    Suspended,
}

impl WorkerState {
    /// RQ's string for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Started => "started",
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Suspended => "suspended",
        }
    }
}

/// A live worker as its hash describes it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker's name.
    pub name: String,
    /// The queues it listens on, highest priority first.
    pub queues: Vec<String>,
    /// Its state (`started`, `idle`, `busy`, `suspended`, or another worker's word).
    pub state: WorkerState,
    /// The job it runs (the latest started, when it runs several).
    pub current_job: Option<String>,
    /// The host it runs on.
    pub hostname: String,
    /// Its process id.
    pub pid: u32,
    /// Its address as the server sees it.
    pub ip_address: Option<String>,
    /// When it started.
    pub birth: Option<DateTime<Utc>>,
    /// Its last heartbeat.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Jobs it finished.
    pub successful_job_count: u64,
    /// Jobs that failed on it.
    pub failed_job_count: u64,
    /// Seconds spent running jobs.
    pub total_working_time: f64,
    /// The software and version it runs (`rqrs-0.1.0`, or an RQ version).
    pub version: String,
}

impl WorkerInfo {
    pub(crate) fn of_this_process(name: &str, queues: &[String]) -> Self {
        WorkerInfo {
            name: name.to_owned(),
            queues: queues.to_vec(),
            state: WorkerState::Started,
            current_job: None,
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            ip_address: None,
            birth: Some(Utc::now()),
            last_heartbeat: Some(Utc::now()),
            successful_job_count: 0,
            failed_job_count: 0,
            total_working_time: 0.0,
            version: concat!("rqrs-", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

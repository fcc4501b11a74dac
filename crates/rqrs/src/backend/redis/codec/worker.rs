//! The worker hash `rq:worker:<name>` as RQ's `Worker` writes and reads it: any worker's,
//! Python's or rqrs's.

use std::collections::HashMap;

use super::{format_time, parse_time};
use crate::worker::{WorkerInfo, WorkerState};

/// The fields a worker registers with (RQ's `register_birth`), `now` being its first
/// heartbeat and `ip_address` its address as the server sees it.
pub(crate) fn fields(
    info: &WorkerInfo,
    now: &str,
    ip_address: &str,
) -> Vec<(&'static str, String)> {
    let birth = info.birth.map_or_else(|| now.to_owned(), format_time);
    vec![
        ("birth", birth),
        ("last_heartbeat", now.to_owned()),
        ("queues", info.queues.join(",")),
        ("pid", info.pid.to_string()),
        ("hostname", info.hostname.clone()),
        ("ip_address", ip_address.to_owned()),
        ("version", info.version.clone()),
        ("state", info.state.as_str().to_owned()),
    ]
}

/// A worker from its hash; unreadable fields are left unset (another worker wrote them).
pub(crate) fn decode(name: &str, hash: &HashMap<String, String>) -> WorkerInfo {
    let text = |field: &str| hash.get(field).filter(|value| !value.is_empty()).cloned();
    let count = |field: &str| text(field).and_then(|n| n.parse().ok()).unwrap_or(0);
    let state = match text("state").as_deref() {
        Some("busy") => WorkerState::Busy,
        Some("suspended") => WorkerState::Suspended,
        Some("started") => WorkerState::Started,
        _ => WorkerState::Idle,
    };
    WorkerInfo {
        name: name.to_owned(),
        queues: text("queues")
            .map(|queues| queues.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        state,
        current_job: text("current_job"),
        hostname: text("hostname").unwrap_or_default(),
        pid: text("pid").and_then(|pid| pid.parse().ok()).unwrap_or(0),
        ip_address: text("ip_address"),
        birth: text("birth").and_then(|time| parse_time(&time)),
        last_heartbeat: text("last_heartbeat").and_then(|time| parse_time(&time)),
        successful_job_count: count("successful_job_count"),
        failed_job_count: count("failed_job_count"),
        total_working_time: text("total_working_time")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0),
        version: text("version").unwrap_or_default(),
    }
}

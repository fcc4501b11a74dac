//! `rqrs info`: queues with their counts and workers with their state, as text or JSON.

use clap::Args;
use rqrs::{
    Connection, FailedJobRegistry, FinishedJobRegistry, Queue, StartedJobRegistry, Worker,
    WorkerInfo,
};
use serde_json::json;

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Show these queues only (default: all).
    queues: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

struct QueueCounts {
    name: String,
    queued: usize,
    started: usize,
    finished: usize,
    failed: usize,
}

pub(crate) async fn run(conn: &Connection, args: &InfoArgs) -> anyhow::Result<()> {
    let names: Vec<String> = if args.queues.is_empty() {
        Queue::all(conn)
            .await?
            .iter()
            .map(|queue| queue.name().to_owned())
            .collect()
    } else {
        args.queues.clone()
    };
    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        queues.push(QueueCounts {
            queued: Queue::new(conn, &name).count().await?,
            started: StartedJobRegistry::new(conn, &name).count().await?,
            finished: FinishedJobRegistry::new(conn, &name).count().await?,
            failed: FailedJobRegistry::new(conn, &name).count().await?,
            name,
        });
    }
    let mut workers = Worker::all(conn).await?;
    if !args.queues.is_empty() {
        workers.retain(|worker| {
            worker
                .queues
                .iter()
                .any(|queue| args.queues.contains(queue))
        });
    }
    // The progress a running job reports in its meta (JobContext::set_progress).
    let ids: Vec<rqrs::JobId> = workers
        .iter()
        .filter_map(|worker| worker.current_job.as_deref()?.parse().ok())
        .collect();
    let progress: Progress = rqrs::Job::fetch_many(conn, &ids)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|job| Some((job.id().to_string(), job.meta().get("progress")?.clone())))
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&queues, &workers, &progress))?
        );
    } else {
        print_text(&queues, &workers, &progress);
    }
    Ok(())
}

type Progress = std::collections::HashMap<String, serde_json::Value>;

fn to_json(
    queues: &[QueueCounts],
    workers: &[WorkerInfo],
    progress: &Progress,
) -> serde_json::Value {
    json!({
        "queues": queues.iter().map(|q| json!({
            "name": q.name, "queued": q.queued, "started": q.started,
            "finished": q.finished, "failed": q.failed,
        })).collect::<Vec<_>>(),
        "workers": workers.iter().map(|w| json!({
            "name": w.name, "state": w.state.as_str(), "queues": w.queues,
            "current_job": w.current_job,
            "progress": w.current_job.as_ref().and_then(|id| progress.get(id)), "hostname": w.hostname, "pid": w.pid,
            "successful_job_count": w.successful_job_count, "failed_job_count": w.failed_job_count,
            "total_working_time": w.total_working_time, "version": w.version,
            "last_heartbeat": w.last_heartbeat.map(|t| t.to_rfc3339()),
        })).collect::<Vec<_>>(),
    })
}

fn print_text(queues: &[QueueCounts], workers: &[WorkerInfo], progress: &Progress) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["queue", "queued", "started", "finished", "failed"]);
    for q in queues {
        table.add_row([
            q.name.clone(),
            q.queued.to_string(),
            q.started.to_string(),
            q.finished.to_string(),
            q.failed.to_string(),
        ]);
    }
    println!("{table}");
    let total: usize = queues.iter().map(|q| q.queued).sum();
    println!("{} queues, {total} jobs queued\n", queues.len());
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "worker",
        "state",
        "queues",
        "current job",
        "progress",
        "host",
        "pid",
        "finished",
        "failed",
    ]);
    for w in workers {
        table.add_row([
            w.name.clone(),
            w.state.as_str().to_owned(),
            w.queues.join(","),
            w.current_job.clone().unwrap_or_default(),
            w.current_job
                .as_ref()
                .and_then(|id| progress.get(id)?.get("percent")?.as_f64())
                .map(|percent| format!("{percent}%"))
                .unwrap_or_default(),
            w.hostname.clone(),
            w.pid.to_string(),
            w.successful_job_count.to_string(),
            w.failed_job_count.to_string(),
        ]);
    }
    println!("{table}");
    println!("{} workers", workers.len());
}

//! `rqrs worker`: runs a worker for the binary's functions.

use clap::{Args, ValueEnum};
use std::time::Duration;

use rqrs::{Functions, Isolation, Timeout, Ttl, Worker};

use crate::Backend;

/// The flags of `rqrs worker` (and of a binary made with `run_worker`).
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The queues to listen on, highest priority first.
    #[arg(default_value = "default")]
    queues: Vec<String>,
    /// Return once the queues are empty.
    #[arg(long, short = 'b')]
    burst: bool,
    /// Also run the scheduler, which enqueues scheduled jobs when they are due (in burst mode:
    /// those due at start).
    #[arg(long, short = 's')]
    with_scheduler: bool,
    /// How many jobs to run at once.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// The worker's name (default: random).
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Seconds a success is kept when the job does not say.
    #[arg(long, allow_hyphen_values = true, default_value_t = rqrs::DEFAULT_RESULT_TTL.to_seconds())]
    results_ttl: i64,
    /// Seconds the worker's registration outlives its last heartbeat, less 60.
    #[arg(long, default_value_t = rqrs::DEFAULT_WORKER_TTL.as_secs())]
    worker_ttl: u64,
    /// Stop after this many jobs.
    #[arg(long)]
    max_jobs: Option<u64>,
    /// Stop after this many seconds without a job.
    #[arg(long)]
    max_idle_time: Option<u64>,
    /// The order queues are looked at: default (priority), round_robin or random.
    #[arg(long, alias = "ds", default_value = "default")]
    dequeue_strategy: rqrs::DequeueStrategy,
    /// Seconds a job may run when it does not say (-1: no limit).
    #[arg(long, allow_hyphen_values = true, default_value_t = rqrs::DEFAULT_JOB_TIMEOUT.to_seconds())]
    job_timeout: i64,
    /// Where jobs run: in the worker's process (cheapest), or each in a work horse process that
    /// is killed at the job's timeout and whose crash fails only its job.
    #[arg(long, value_enum, default_value_t = IsolationArg::InProcess)]
    isolation: IsolationArg,
    /// Kill a work horse whose resident memory passes this many bytes while it runs a job,
    /// failing the job (needs --isolation process).
    #[arg(long, value_name = "BYTES")]
    max_memory_per_job: Option<u64>,
    /// Seconds between heartbeats (default 2); a run counts as abandoned five intervals after
    /// its last one (10 s by default), so a short interval recovers the jobs of a dead worker
    /// sooner.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_interval: Option<u64>,
    /// Log level: ERROR, WARN, INFO, DEBUG or TRACE (RUST_LOG overrides it).
    #[arg(long, short = 'l', default_value = "INFO")]
    pub(crate) logging_level: String,
}

/// The values of `--isolation`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum IsolationArg {
    /// In the worker's process.
    InProcess,
    /// In work horse processes.
    Process,
}

pub(crate) async fn run(
    backend: &Backend,
    args: WorkerArgs,
    functions: Functions,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !functions.names().is_empty(),
        "this binary registers no job functions, so its worker could only fail every job; \
         build your own binary with rqrs_cli::run(functions) and run its worker"
    );
    let conn = backend.connect().await?;
    let mut builder = Worker::builder(&conn)
        .queues(args.queues)
        .functions(functions)
        .concurrency(args.concurrency)
        .burst(args.burst)
        .with_scheduler(args.with_scheduler)
        .default_result_ttl(Ttl::from_seconds(args.results_ttl))
        .worker_ttl(Duration::from_secs(args.worker_ttl))
        .dequeue_strategy(args.dequeue_strategy)
        .default_job_timeout(Timeout::from_seconds(args.job_timeout))
        .handle_signals(true)
        .isolation(match args.isolation {
            IsolationArg::InProcess => Isolation::InProcess,
            IsolationArg::Process => Isolation::Process,
        });
    if let Some(jobs) = args.max_jobs {
        builder = builder.max_jobs(jobs);
    }
    if let Some(seconds) = args.max_idle_time {
        builder = builder.max_idle_time(Duration::from_secs(seconds));
    }
    if let Some(seconds) = args.heartbeat_interval {
        builder = builder.heartbeat_interval(Duration::from_secs(seconds));
    }
    if let Some(name) = args.name {
        builder = builder.name(name);
    }
    if let Some(bytes) = args.max_memory_per_job {
        builder = builder.max_memory_per_job(bytes);
    }
    builder.build()?.work().await?;
    Ok(())
}

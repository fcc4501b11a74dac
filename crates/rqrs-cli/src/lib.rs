//! The `rqrs` command line, as a library: [`run`] gives a user's own binary the same CLI
//! around its own functions, and [`run_worker`] a binary that is only a worker. Both serve as
//! the binary's work horse too when a worker with `--isolation process` starts it (see
//! [`rqrs::run_work_horse_if_child`]), so call them first in `main`.
//!
//! ```no_run
//! use rqrs::{Functions, JobContext, JobError};
//!
//! async fn add(_ctx: JobContext, (x, y): (i64, i64)) -> Result<i64, JobError> {
//!     Ok(x + y)
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     rqrs_cli::run(Functions::new().register("tasks.add", add))
//! }
//! ```

mod enqueue;
mod info;
mod pool;
mod worker;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use rqrs::{Connection, FailedJobRegistry, Functions, Queue};

/// Where the backend is: `--url`, or `RQRS_URL`.
#[derive(Debug, Args)]
struct Backend {
    /// Backend URL: redis://[user:password@]host:port[/db], rediss:// for TLS,
    /// redis+sentinel://host:26379[,host:26379...]/master-name[/db] for Sentinels,
    /// redis+cluster://host:port[,host:port...] for a Redis Cluster (with --key-prefix {rq}), or a SQLite
    /// database file: sqlite:///absolute/path.db or sqlite://relative/path.db (made if missing;
    /// ?synchronous=full to survive a power loss, ?busy_timeout=<ms>).
    #[arg(
        long,
        short = 'u',
        env = "RQRS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    url: String,
    /// A certificate authority (PEM file) to trust for `rediss://` instead of the system's.
    #[arg(long, env = "RQRS_TLS_CA_CERT", global = true)]
    tls_ca_cert: Option<std::path::PathBuf>,
    /// The prefix of every Redis key, as Python RQ 3.0's RQ_KEY_PREFIX (default rq; RQ 2.12
    /// knows only rq). A hash tag such as {rq} puts every key in one Redis Cluster slot.
    #[arg(long, env = rqrs::KEY_PREFIX_ENV, global = true)]
    key_prefix: Option<String>,
}

impl Backend {
    async fn connect(&self) -> anyhow::Result<Connection> {
        let mut options = rqrs::ConnectOptions::new(&self.url);
        if let Some(path) = &self.tls_ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            options = options.root_ca_pem(&pem);
        }
        if let Some(prefix) = &self.key_prefix {
            options = options.key_prefix(prefix);
        }
        options
            .connect()
            .await
            .with_context(|| format!("connecting to {}", rqrs::redact_url(&self.url)))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "rqrs",
    version,
    about = "Background jobs in Python RQ's Redis format, or in a SQLite file"
)]
struct Cli {
    #[command(flatten)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a worker for this binary's functions.
    Worker(worker::WorkerArgs),
    /// Run N worker processes and keep them running.
    WorkerPool(pool::PoolArgs),
    /// Show queues and workers.
    Info(info::InfoArgs),
    /// Enqueue a job: `rqrs enqueue tasks.add 1 :2 key=text key:=JSON`; prints its id.
    Enqueue(enqueue::EnqueueArgs),
    /// Move failed jobs back to their queue.
    Requeue(RequeueArgs),
    /// Remove every waiting job of queues, deleting the jobs.
    Empty(EmptyArgs),
    /// Suspend every worker (Python's too): running jobs finish, no new job starts.
    Suspend(SuspendArgs),
    /// Let suspended workers take jobs again.
    Resume,
    /// Inspect or control one job.
    #[command(subcommand)]
    Job(JobCommand),
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Print a job: status, call, timestamps, meta, latest result, as JSON.
    Show {
        /// The job's id.
        id: String,
    },
    /// Stop a running job (it ends as `stopped`), on whichever worker runs it.
    Stop {
        /// The job's id.
        id: String,
    },
    /// Cancel a job: it leaves its queue or registry for the canceled registry and will not run
    /// (a running job is not stopped, as in RQ: use `job stop`).
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Delete a job and its results.
    Delete {
        /// The job's id.
        id: String,
        /// Delete the jobs that depend on it too.
        #[arg(long)]
        dependents: bool,
    },
}

#[derive(Debug, Args)]
struct SuspendArgs {
    /// Resume by itself after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
}

#[derive(Debug, Args)]
struct RequeueArgs {
    /// The queue whose failed jobs to requeue.
    #[arg(long, short = 'q', default_value = "default")]
    queue: String,
    /// Requeue every failed job of the queue.
    #[arg(long, short = 'a', conflicts_with = "ids")]
    all: bool,
    /// The ids of the jobs to requeue.
    #[arg(required_unless_present = "all")]
    ids: Vec<String>,
}

#[derive(Debug, Args)]
struct EmptyArgs {
    /// Empty every queue.
    #[arg(long, short = 'a', conflicts_with = "queues")]
    all: bool,
    /// The queues to empty.
    #[arg(required_unless_present = "all")]
    queues: Vec<String>,
}

/// Runs the `rqrs` command line with `functions` as the worker's function table; returns the
/// process's exit code.
pub fn run(functions: Functions) -> ExitCode {
    let cli = Cli::parse();
    let log_level = match &cli.command {
        Command::Worker(args) => args.logging_level.clone(),
        Command::WorkerPool(args) => args.logging_level.clone(),
        _ => "warn".to_owned(),
    };
    start_logging(&log_level);
    // A work horse gets its worker's arguments, so it logs at the worker's level.
    if let Some(code) = rqrs::run_work_horse_if_child(&functions) {
        return code;
    }
    execute(async move {
        match cli.command {
            Command::Worker(args) => worker::run(&cli.backend, args, functions).await,
            Command::WorkerPool(args) => {
                anyhow::ensure!(
                    !functions.names().is_empty(),
                    "this binary registers no job functions; build your own binary with rqrs_cli::run(functions)"
                );
                pool::run(&cli.backend, args).await
            }
            Command::Info(args) => info::run(&cli.backend.connect().await?, &args).await,
            Command::Enqueue(args) => enqueue::run(&cli.backend.connect().await?, args).await,
            Command::Requeue(args) => requeue(&cli.backend.connect().await?, args).await,
            Command::Empty(args) => empty(&cli.backend.connect().await?, args).await,
            Command::Suspend(args) => {
                let duration = args.duration.map(std::time::Duration::from_secs);
                rqrs::suspend(&cli.backend.connect().await?, duration).await?;
                match args.duration {
                    Some(seconds) => println!("Suspending workers for {seconds} seconds"),
                    None => println!("Suspending workers; run rqrs resume to resume them"),
                }
                Ok(())
            }
            Command::Job(command) => job(&cli.backend.connect().await?, command).await,
            Command::Resume => {
                rqrs::resume(&cli.backend.connect().await?).await?;
                println!("Resuming workers");
                Ok(())
            }
        }
    })
}

/// Runs a worker with `functions`, taking the flags of `rqrs worker` with no subcommand:
/// `BINARY [--url URL] [--burst] [--concurrency N] ... QUEUE...`.
pub fn run_worker(functions: Functions) -> ExitCode {
    #[derive(Debug, Parser)]
    #[command(about = "An rqrs worker")]
    struct WorkerCli {
        #[command(flatten)]
        backend: Backend,
        #[command(flatten)]
        worker: worker::WorkerArgs,
    }
    let cli = WorkerCli::parse();
    start_logging(&cli.worker.logging_level);
    if let Some(code) = rqrs::run_work_horse_if_child(&functions) {
        return code;
    }
    execute(async move { worker::run(&cli.backend, cli.worker, functions).await })
}

/// Logs to stderr at `log_level`, or as `RUST_LOG` says.
fn start_logging(log_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_level.to_ascii_lowercase()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn execute(work: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(work);
    // Blocking jobs abandoned by a timeout or a cold shutdown must not hold the exit.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn job(conn: &Connection, command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Show { id } => {
            let job = rqrs::Job::fetch(conn, &id.parse()?).await?;
            let latest = job.latest_result().await?;
            let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
            let shown = serde_json::json!({
                "id": job.id().as_str(),
                "status": job.status().as_str(),
                "origin": job.origin(),
                "func_name": job.func_name(),
                "args": job.args(),
                "kwargs": job.kwargs(),
                "data_error": job.data_error(),
                "description": job.description(),
                "created_at": time(job.created_at()),
                "enqueued_at": time(job.enqueued_at()),
                "started_at": time(job.started_at()),
                "ended_at": time(job.ended_at()),
                "worker_name": job.worker_name(),
                "timeout": job.timeout().map(rqrs::Timeout::to_seconds),
                "result_ttl": job.result_ttl().map(rqrs::Ttl::to_seconds),
                "failure_ttl": job.failure_ttl().map(rqrs::Ttl::to_seconds),
                "retries_left": job.retries_left(),
                "meta": job.meta(),
                "result": latest.as_ref().map(|result| serde_json::json!({
                    "type": format!("{:?}", result.result_type()),
                    "return_value": result.return_value(),
                    "exc_string": result.exc_string(),
                    "worker_name": result.worker_name(),
                    "created_at": time(result.created_at()),
                })),
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        JobCommand::Stop { id } => {
            let heard = rqrs::send_stop_job_command(conn, &id.parse()?).await?;
            anyhow::ensure!(heard, "no worker listened for job {id}'s stop command");
            println!("Stop sent to job {id}");
        }
        JobCommand::Cancel { id } => {
            rqrs::Job::fetch(conn, &id.parse()?).await?.cancel().await?;
            println!("Canceled job {id}");
        }
        JobCommand::Delete { id, dependents } => {
            rqrs::Job::fetch(conn, &id.parse()?)
                .await?
                .delete(dependents)
                .await?;
            println!("Deleted job {id}");
        }
    }
    Ok(())
}

async fn requeue(conn: &Connection, args: RequeueArgs) -> anyhow::Result<()> {
    let registry = FailedJobRegistry::new(conn, &args.queue);
    if args.all {
        let count = registry.requeue_all().await?;
        println!("Requeued {count} jobs");
        return Ok(());
    }
    let mut failed = 0;
    for id in &args.ids {
        let outcome = match id.parse() {
            Ok(id) => registry.requeue(&id).await,
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            eprintln!("{id}: {error}");
            failed += 1;
        }
    }
    println!("Requeued {} jobs", args.ids.len() - failed);
    anyhow::ensure!(failed == 0, "{failed} jobs could not be requeued");
    Ok(())
}

async fn empty(conn: &Connection, args: EmptyArgs) -> anyhow::Result<()> {
    let queues = if args.all {
        Queue::all(conn).await?
    } else {
        args.queues
            .iter()
            .map(|name| Queue::new(conn, name))
            .collect()
    };
    for queue in queues {
        let count = queue.empty().await?;
        println!("{count} jobs removed from {} queue", queue.name());
    }
    Ok(())
}

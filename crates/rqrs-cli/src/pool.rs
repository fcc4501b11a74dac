//! `rqrs worker-pool -n N`: runs N worker processes of this binary and keeps them running (RQ's
//! `rq worker-pool`). A worker that dies is started again; in burst mode one that ends normally
//! is not. The first SIGINT/SIGTERM is passed on to every worker (warm shutdown), the second too
//! (cold shutdown); the pool returns once they have all exited.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Args)]
pub(crate) struct PoolArgs {
    /// How many worker processes to run.
    #[arg(long, short = 'n', default_value_t = 2)]
    num_workers: usize,
    /// Return once the queues are empty (workers that end normally are not started again).
    #[arg(long, short = 'b')]
    burst: bool,
    /// Name the workers `<NAME>-0`, `<NAME>-1`... (default: random names).
    #[arg(long)]
    name: Option<String>,
    /// Log level of the pool itself.
    #[arg(long, short = 'l', default_value = "INFO")]
    pub(crate) logging_level: String,
    /// Everything else is handed to each `worker` process: queues and worker flags.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    worker: Vec<String>,
}

/// Runs the pool against the backend (its URL, trusted roots and key prefix).
pub(crate) async fn run(backend: &crate::Backend, args: PoolArgs) -> anyhow::Result<()> {
    let url = backend.url.as_str();
    anyhow::ensure!(args.num_workers > 0, "--num-workers must be 1 or more");
    anyhow::ensure!(
        !url.starts_with("sqlite::memory:"),
        "an in-memory database is one process's alone, and the pool's workers are processes: \
         use a database file (sqlite:///path/to/jobs.db)"
    );
    let exe = std::env::current_exe().context("finding this program to start workers")?;
    let spawn = |i: usize| -> anyhow::Result<Child> {
        let mut command = Command::new(&exe);
        // In the environment, not on the command line, where `ps` would show its password.
        command.env("RQRS_URL", url);
        if let Some(path) = &backend.tls_ca_cert {
            command.arg("--tls-ca-cert").arg(path);
        }
        if let Some(prefix) = &backend.key_prefix {
            command.arg("--key-prefix").arg(prefix);
        }
        command.args(["worker", "--logging-level", &args.logging_level]);
        if args.burst {
            command.arg("--burst");
        }
        if let Some(name) = &args.name {
            command.args(["--name", &format!("{name}-{i}")]);
        }
        // A process group of its own: a terminal's Ctrl-C reaches the pool only, which passes
        // it on once (a second, direct signal would make the workers stop cold).
        command
            .args(&args.worker)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting a worker process")
    };
    let mut children: Vec<Option<Child>> = (0..args.num_workers)
        .map(|i| spawn(i).map(Some))
        .collect::<anyhow::Result<_>>()?;
    let mut signals = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    // Made once, so that no signal falls between two listeners.
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    loop {
        let signalled = tokio::select! {
            _ = interrupt.recv() => true,
            _ = terminate.recv() => true,
            _ = tick.tick() => false,
        };
        if signalled {
            signals += 1;
            for child in children.iter().flatten() {
                if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                    // The worker may have just exited: nothing to do then.
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
            }
        }
        for (i, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            let Some(status) = child.try_wait()? else {
                continue;
            };
            if signals > 0 || (args.burst && status.success()) {
                *slot = None;
            } else {
                tracing::warn!(worker = i, %status, "a worker process ended; starting it again");
                *slot = Some(spawn(i)?);
            }
        }
        if children.iter().all(Option::is_none) {
            return Ok(());
        }
    }
}

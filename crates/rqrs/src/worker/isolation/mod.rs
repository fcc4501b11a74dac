//! Process isolation: each job runs in a work horse, a child process that re-executes the
//! worker's own binary (`std::env::current_exe()`, never a `fork()` of the async runtime), so
//! a job cannot outlive its timeout and a crash takes down only its own job.
//!
//! The worker (parent) side, [`Horses`]:
//! 1. keeps up to `concurrency` idle horses and gives each job one, spawning a horse when none
//!    is idle; a horse runs many jobs, one at a time, so isolation costs a pipe round trip per
//!    job, not a process start;
//! 2. sends the job as one JSON line on the horse's stdin and reads one JSON line back (the
//!    return value or the error, and the job's meta as the job left it);
//! 3. while the job runs, watches the horse's resident memory when there is a cap;
//! 4. when the call is dropped (timeout, stop-job, kill-horse, cold shutdown) or the memory cap
//!    is passed, kills the horse's process group (SIGTERM, then SIGKILL after [`KILL_GRACE`]);
//!    when the horse dies by itself, fails the job with its wait status, as RQ words it.
//!
//! The horse side is [`horse`]; the lines on the pipe between the two are [`protocol`].

mod horse;
mod protocol;

use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub(crate) use horse::run_if_child;
pub(crate) use protocol::is_horse;
use protocol::{HORSE_ENV, Hello, Reply, Request, json_line};

use crate::Connection;
use crate::backend::Backend;
use crate::context::JobContext;
use crate::error::JobError;

/// How long a killed horse's process group has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(500);
/// How often a running horse's memory is read when there is a cap.
const MEMORY_POLL: Duration = Duration::from_millis(50);

/// The worker's work horses.
pub(super) struct Horses {
    idle: Mutex<Vec<Horse>>,
    /// The backend URL and the worker's name, as the first line every horse reads.
    hello: Vec<u8>,
    max_memory: Option<u64>,
}

impl Horses {
    pub(super) fn new(conn: &Connection, worker_name: &str, max_memory: Option<u64>) -> Self {
        let options = conn.backend().connect_options();
        let hello = Hello {
            url: options.url,
            root_ca: options.root_ca,
            key_prefix: options.key_prefix,
            worker_name: worker_name.to_owned(),
        };
        Horses {
            idle: Mutex::new(Vec::new()),
            hello: json_line(&hello).expect("strings always encode as JSON"),
            max_memory,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Horse>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls the function `name` for the job of `ctx` in a horse, and copies the job's meta
    /// back into `ctx`. Dropping the returned future kills the horse.
    pub(super) async fn call(
        &self,
        name: &str,
        ctx: &JobContext,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, JobError> {
        let request = Request {
            job_id: ctx.id().to_string(),
            origin: ctx.origin().to_owned(),
            execution_id: ctx.execution_id().to_owned(),
            job_args: ctx.args().to_vec(),
            job_kwargs: ctx.kwargs().clone(),
            meta: ctx.meta(),
            func_name: name.to_owned(),
            args,
            kwargs,
        };
        let line = json_line(&request)
            .map_err(|error| JobError::abort(format!("the job cannot be sent as JSON: {error}")))?;
        let mut busy = self.send(&line).await?;
        let pid = busy.horse().pid;
        let ended = tokio::select! {
            reply = busy.horse().read_reply() => Ended::Heard(reply),
            rss = over_memory(pid, self.max_memory) => Ended::OverMemory(rss),
        };
        match ended {
            Ended::Heard(Ok(Some(reply))) => {
                self.put_back(busy.into_horse());
                ctx.update_meta(|meta| *meta = reply.meta);
                reply.outcome.into_result()
            }
            Ended::Heard(Ok(None)) => {
                let reason = busy.into_horse().reap().await;
                tracing::warn!(job = %ctx.id(), pid, %reason, "a work horse died");
                Err(JobError::new(reason))
            }
            Ended::Heard(Err(error)) => Err(JobError::new(format!(
                "Work-horse sent an unreadable reply ({error}); killed"
            ))),
            Ended::OverMemory(rss) => {
                let cap = self.max_memory.unwrap_or_default();
                tracing::warn!(job = %ctx.id(), pid, rss, cap, "a work horse passed the memory cap; killing it");
                Err(JobError::new(format!(
                    "killed: memory cap ({cap} bytes); the work horse used {rss} bytes"
                )))
            }
        }
    }

    /// Sends `line` to an idle horse, or to a new one when none is idle or alive.
    async fn send(&self, line: &[u8]) -> Result<Busy, JobError> {
        loop {
            // A horse may have died while idle (the OOM killer, a kill from outside): its pipe
            // refuses the write, and the next one is tried.
            let Some(horse) = self.idle().pop() else {
                break;
            };
            let mut busy = Busy(Some(horse));
            if busy.horse().write(line).await.is_ok() {
                return Ok(busy);
            }
        }
        let horse = self
            .spawn()
            .await
            .map_err(|error| JobError::new(format!("Work-horse could not be started: {error}")))?;
        let mut busy = Busy(Some(horse));
        busy.horse().write(line).await.map_err(|error| {
            JobError::new(format!("Work-horse refused the job at its start: {error}"))
        })?;
        Ok(busy)
    }

    /// Starts a horse: this program again, with its arguments, marked by [`HORSE_ENV`], in a
    /// process group of its own so that it and anything it starts are killed together.
    async fn spawn(&self) -> std::io::Result<Horse> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env(HORSE_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("exited at once"))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("no pipes to the work horse"));
        };
        let mut horse = Horse {
            child,
            pid,
            input,
            output: BufReader::new(output),
        };
        horse.write(&self.hello).await?;
        tracing::debug!(pid, "work horse started");
        Ok(horse)
    }

    /// Keeps a horse that answered for the next job, unless it holds more memory than the cap
    /// (what a job allocated may stay with the process after the job).
    fn put_back(&self, horse: Horse) {
        match self.max_memory.zip(resident_bytes(horse.pid)) {
            Some((cap, rss)) if rss > cap => horse.kill(),
            _ => self.idle().push(horse),
        }
    }

    /// Ends the idle horses: each exits when its stdin closes.
    pub(super) async fn close(&self) {
        let horses = std::mem::take(&mut *self.idle());
        for Horse {
            mut child, input, ..
        } in horses
        {
            drop(input);
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                // kill_on_drop ends it.
                tracing::warn!("a work horse did not exit when told to");
            }
        }
    }
}

/// How a call in a horse ended.
enum Ended {
    /// A reply line, or the end of the horse's output (`None`).
    Heard(std::io::Result<Option<Reply>>),
    /// The horse's resident memory, above the cap.
    OverMemory(u64),
}

/// A work horse process and its pipes.
struct Horse {
    child: Child,
    pid: u32,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Horse {
    async fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.input.write_all(line).await?;
        self.input.flush().await
    }

    async fn read_reply(&mut self) -> std::io::Result<Option<Reply>> {
        let mut line = String::new();
        if self.output.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line)?))
    }

    fn group(&self) -> Option<Pid> {
        i32::try_from(self.pid)
            .ok()
            .filter(|pid| *pid > 0)
            .map(Pid::from_raw)
    }

    /// Kills the process group: SIGTERM now, SIGKILL after [`KILL_GRACE`], then reaps the horse
    /// (until then it is a zombie, so the group id cannot be reused by another process).
    fn kill(mut self) {
        let Some(group) = self.group() else {
            return;
        };
        let _ = killpg(group, Signal::SIGTERM);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(KILL_GRACE).await;
                    let _ = killpg(group, Signal::SIGKILL);
                    let _ = self.child.wait().await;
                });
            }
            Err(_) => {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
    }

    /// After the horse's output ended: kills what is left of its group, waits for it, and
    /// says how it ended, in RQ's words.
    async fn reap(mut self) -> String {
        // The horse has exited or is exiting, and is not yet reaped, so its group id is still
        // its own: this kills only what it left running. A process that is already exiting
        // keeps the status it exits with.
        if let Some(group) = self.group() {
            let _ = killpg(group, Signal::SIGKILL);
        }
        match tokio::time::timeout(KILL_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => terminated(status),
            Ok(Err(error)) => format!("Work-horse terminated unexpectedly; {error}"),
            Err(_) => "Work-horse closed its output and did not exit".to_owned(),
        }
    }
}

/// RQ's text for a horse that died (`Work-horse terminated unexpectedly; waitpid returned
/// <status> (signal <n>); `), followed by the signal's name or the exit code.
fn terminated(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let signal = status.signal().unwrap_or(0);
    let how = match (status.signal(), status.code()) {
        (Some(number), _) => {
            let name = Signal::try_from(number).map_or("an unknown signal", Signal::as_str);
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            format!("killed by {name}{core}")
        }
        (None, Some(code)) => format!("exited with code {code}"),
        (None, None) => "ended".to_owned(),
    };
    format!(
        "Work-horse terminated unexpectedly; waitpid returned {} (signal {signal}); {how}",
        status.into_raw()
    )
}

/// A horse busy with a call. Dropped before its reply is read, it kills the horse.
struct Busy(Option<Horse>);

impl Busy {
    fn horse(&mut self) -> &mut Horse {
        self.0
            .as_mut()
            .expect("a busy horse is taken only by into_horse")
    }

    fn into_horse(mut self) -> Horse {
        self.0.take().expect("a busy horse is taken only once")
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(horse) = self.0.take() {
            tracing::info!(pid = horse.pid, "killing a work horse");
            horse.kill();
        }
    }
}

/// Returns once the process's resident memory passes `cap` (never without a cap), with it.
async fn over_memory(pid: u32, cap: Option<u64>) -> u64 {
    let Some(cap) = cap else {
        return std::future::pending().await;
    };
    let mut ticks = tokio::time::interval(MEMORY_POLL);
    loop {
        ticks.tick().await;
        if let Some(rss) = resident_bytes(pid).filter(|rss| *rss > cap) {
            return rss;
        }
    }
}

/// The resident memory of a process in bytes (Linux: `VmRSS` in `/proc/<pid>/status`).
fn resident_bytes(pid: u32) -> Option<u64> {
    vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn vm_rss(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kilobytes: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kilobytes.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        let status = "Name:\tworker\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(vm_rss(status), Some(5120 * 1024));
        assert_eq!(vm_rss("Name:\tkthread\n"), None);
        assert!(resident_bytes(std::process::id()).is_some_and(|rss| rss > 0));
    }

    #[test]
    fn a_dead_horse_is_described_in_rqs_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            terminated(ExitStatus::from_raw(6)),
            "Work-horse terminated unexpectedly; waitpid returned 6 (signal 6); killed by SIGABRT"
        );
        assert_eq!(
            terminated(ExitStatus::from_raw(134)),
            "Work-horse terminated unexpectedly; waitpid returned 134 (signal 6); killed by SIGABRT, core dumped"
        );
        assert_eq!(
            terminated(ExitStatus::from_raw(101 << 8)),
            "Work-horse terminated unexpectedly; waitpid returned 25856 (signal 0); exited with code 101"
        );
    }
}

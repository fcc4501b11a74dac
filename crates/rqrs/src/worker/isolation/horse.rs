//! The work horse's side: a process that a worker started with `RQRS_WORK_HORSE` naming it reads
//! the backend's URL and the worker's name, connects on its own, then answers the worker's
//! requests with the same function table, calling each as the in-process worker does (with a
//! [`JobContext`], so `current_job()` and `save_meta()` work). It touches nothing in the store
//! beyond what its jobs do.

use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use super::protocol::{Hello, Reply, Request, Returned, is_horse, json_line};
use crate::Connection;
use crate::context::{ContextParts, JobContext};
use crate::error::JobError;
use crate::functions::Functions;

/// See [`run_work_horse_if_child`](crate::run_work_horse_if_child).
pub(crate) fn run_if_child(functions: &Functions) -> Option<ExitCode> {
    if !is_horse() {
        return None;
    }
    Some(match serve(functions) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rqrs work horse {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    })
}

/// The horse's loop: a hello, then one reply per request, until stdin closes.
fn serve(functions: &Functions) -> std::io::Result<()> {
    // The protocol gets its own copies of stdin and stdout (not inherited by programs a job
    // starts); fds 0 and 1 become /dev/null and stderr, so a job that prints cannot corrupt it.
    let input = std::io::stdin().as_fd().try_clone_to_owned()?;
    let output = std::io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2_stdin(std::fs::File::open("/dev/null")?)?;
    nix::unistd::dup2_stdout(std::io::stderr())?;
    let mut input = std::io::BufReader::new(std::fs::File::from(input));
    let mut output = std::io::BufWriter::new(std::fs::File::from(output));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let hello: Hello = serde_json::from_str(&line)?;
    let conn = runtime
        .block_on(
            crate::ConnectOptions {
                url: hello.url.clone(),
                root_ca: hello.root_ca.clone(),
                key_prefix: hello.key_prefix.clone(),
            }
            .connect(),
        )
        .map_err(|error| error.to_string());
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let request: Request = serde_json::from_str(&line)?;
        let reply = runtime.block_on(answer(functions, &conn, &hello.worker_name, request));
        output.write_all(&json_line(&reply)?)?;
        output.flush()?;
    }
}

/// Runs one request as the in-process worker would.
async fn answer(
    functions: &Functions,
    conn: &Result<Connection, String>,
    worker_name: &str,
    request: Request,
) -> Reply {
    let Request {
        job_id,
        origin,
        execution_id,
        job_args,
        job_kwargs,
        meta,
        func_name,
        args,
        kwargs,
    } = request;
    let conn = match conn {
        Ok(conn) => conn.clone(),
        Err(error) => {
            return Reply {
                outcome: Returned::new(Err(JobError::new(format!(
                    "Work-horse cannot connect to the backend: {error}"
                )))),
                meta,
            };
        }
    };
    // The id of a job the worker dequeued, taken as stored (RQ before 2.8 allowed more
    // characters), as the worker itself takes it.
    let id = crate::JobId::from_stored(job_id);
    let ctx = JobContext::new(ContextParts {
        conn,
        id,
        origin,
        worker_name: worker_name.to_owned(),
        execution_id,
        args: job_args,
        kwargs: job_kwargs,
        meta,
    });
    let outcome = match functions.get(&func_name) {
        Some(handler) => crate::worker::run::call(handler.clone(), ctx.clone(), args, kwargs).await,
        None => Err(JobError::abort(format!(
            "unknown function {func_name:?} in the work horse"
        ))),
    };
    Reply {
        outcome: Returned::new(outcome),
        meta: ctx.meta(),
    }
}

//! End-to-end tests of the `rqrs` command line and of interop with the real Python RQ 2.12.0
//! (`serializer=JSONSerializer`): each test starts its own redis-server, runs the `rqrs` binary,
//! the `worker` example (the fixture functions) and Python scripts against it, and checks what
//! each side reads back.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod cli;
mod control;
#[path = "../common/example_programs.rs"]
mod example_programs;
mod examples;
mod interop;
mod isolation;
mod job_ops;
mod lifecycle;
mod scheduler;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use rqrs::Connection;
use rqrs_test::{RedisServer, Store};
use serde_json::Value;
use tokio::process::{Child, Command};

/// Bounds a hang of any one process or wait; never a delay that tests rely on.
const HANG: Duration = Duration::from_secs(60);

/// Stops a worker process with SIGTERM (a warm stop); it must exit 0.
async fn stop(mut worker: Child) {
    let pid = worker.id().expect("the worker runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits an i32")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM reaches the worker");
    let status = tokio::time::timeout(HANG, worker.wait())
        .await
        .expect("the worker stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A fresh server and an rqrs connection to it.
async fn setup() -> (RedisServer, Connection) {
    let server = RedisServer::start();
    let conn = rqrs::connect(&server.url()).await.expect("connects");
    (server, conn)
}

/// What a test's processes are pointed at: a Redis server, or a store of any backend.
trait Url {
    fn url(&self) -> String;
}

impl Url for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
}

impl Url for Store {
    fn url(&self) -> String {
        Store::url(self)
    }
}

impl<T: Url> Url for &T {
    fn url(&self) -> String {
        T::url(self)
    }
}

/// Defines the test `$name`, taking its `Store` and a connection to it, once per backend:
/// `name::redis` and `name::sqlite`, as the behaviour suite's `on_every_backend!` does.
macro_rules! on_every_backend {
    ($(#[doc = $doc:literal])* async fn $name:ident($store:ident: &Store, $conn:ident: &Connection) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn test($store: &rqrs_test::Store, $conn: &rqrs::Connection) $body

            #[tokio::test]
            async fn redis() {
                let store = rqrs_test::Store::redis();
                test(&store, &store.connect().await).await;
            }

            #[tokio::test]
            async fn sqlite() {
                let store = rqrs_test::Store::sqlite();
                test(&store, &store.connect().await).await;
            }
        }
    };
}
pub(crate) use on_every_backend;

/// Makes a test per pinned Python RQ release, `rq_2_12` and `rq_3_0`, in a module named
/// after the test: `async fn name(rq: Rq) { ... }`.
macro_rules! on_every_rq {
    ($(#[doc = $doc:literal])* async fn $name:ident($rq:ident: Rq) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn test($rq: rqrs_test::python::Rq) $body

            #[tokio::test]
            async fn rq_2_12() {
                test(rqrs_test::python::Rq::V2_12).await;
            }

            #[tokio::test]
            async fn rq_3_0() {
                test(rqrs_test::python::Rq::V3_0).await;
            }
        }
    };
}
pub(crate) use on_every_rq;

use example_programs::example;
use rqrs_test::python::Rq;

/// The `worker` example (the fixture functions).
fn worker_example() -> PathBuf {
    example("worker")
}

/// Runs `command` to its end (killing it after [`HANG`]) and returns its output, whether it
/// succeeded or not.
async fn output(mut command: Command, what: &str) -> Output {
    command.kill_on_drop(true).stdin(Stdio::null());
    tokio::time::timeout(HANG, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} still runs after {HANG:?}"))
        .unwrap_or_else(|error| panic!("{what} cannot run: {error}"))
}

/// Asserts that `output` is a success and returns its standard output.
fn success(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `rqrs --url <server> ARGS...`, run to its end.
async fn rqrs_output(server: &impl Url, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rqrs"));
    command.arg("--url").arg(server.url()).args(args);
    output(command, &format!("rqrs {}", args.join(" "))).await
}

/// `rqrs --url <server> ARGS...`, which must succeed; returns its standard output.
async fn rqrs(server: &impl Url, args: &[&str]) -> String {
    success(
        &rqrs_output(server, args).await,
        &format!("rqrs {}", args.join(" ")),
    )
}

/// Runs the `worker` example in burst mode on `queues` until they are empty; it must exit 0.
async fn burst(server: &impl Url, queues: &[&str]) {
    let mut command = Command::new(worker_example());
    command
        .arg("--url")
        .arg(server.url())
        .args(["--burst", "--concurrency", "4"])
        .args(queues);
    success(
        &output(command, "the burst worker").await,
        "the burst worker",
    );
}

/// Starts the `worker` example (not in burst mode) named `name` on `queues`; it is killed if the
/// test ends first.
fn start_worker(server: &impl Url, name: &str, queues: &[&str]) -> Child {
    Command::new(worker_example())
        .arg("--url")
        .arg(server.url())
        .args(["--name", name])
        .args(queues)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the worker example starts")
}

/// What every Python script starts with: the connection, and the default queue with RQ's
/// JSON serializer.
const PYTHON_PRELUDE: &str = r"
import json, os, sys
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
redis = Redis.from_url(os.environ['REDIS_URL'])
queue = Queue('default', connection=redis, serializer=JSONSerializer)
";

/// Runs `script` (after [`PYTHON_PRELUDE`]) with Python RQ 2.12.0 against the server, `args`
/// as `sys.argv[1:]`; returns the JSON it prints last.
async fn python(server: &RedisServer, script: &str, args: &[&str]) -> Value {
    python_of(Rq::V2_12, server, script, args).await
}

/// As [`python`], with the given release of Python RQ.
async fn python_of(rq: Rq, server: &RedisServer, script: &str, args: &[&str]) -> Value {
    let url = server.url();
    let script = format!("{PYTHON_PRELUDE}{script}");
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let stdout = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rq.run(&url, &script, &args)
    })
    .await
    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|error| panic!("python printed no JSON last ({error}):\n{stdout}"))
}

/// `rq ARGS... --url <server>` with Python RQ's own command line; returns its output, whether it
/// succeeded or not.
async fn rq_cli(server: &RedisServer, args: &[&str]) -> Output {
    let mut command = Command::from(Rq::V2_12.cli());
    command.args(args).arg("--url").arg(server.url());
    output(command, &format!("rq {}", args.join(" "))).await
}

/// Sorted text of a JSON list of strings, to compare sets of ids.
fn sorted(value: &Value) -> Vec<String> {
    let mut list: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not a list"))
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect();
    list.sort();
    list
}

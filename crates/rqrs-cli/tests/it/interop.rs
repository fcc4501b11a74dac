//! rqrs and the real Python RQ (`serializer=JSONSerializer`) on one Redis: Python producers and
//! readers around the rqrs worker, rqrs producers around a Python worker, `rq info` around a
//! running rqrs worker, requeues from either side. The tests made with `on_every_rq!` run
//! against rq 2.12.0 and rq 3.0.0; the others against 2.12.0.

use std::collections::HashMap;

use rqrs::{
    FailedJobRegistry, FinishedJobRegistry, Job, JobId, JobStatus, Queue, Worker, WorkerState,
};
use rqrs_test::wait_for;
use serde_json::{Value, json};

use rqrs_test::RedisServer;
use rqrs_test::python::Rq;
use tokio::process::Command;

use crate::{
    HANG, PYTHON_PRELUDE, burst, on_every_rq, output, python, python_of, rq_cli, rqrs, setup,
    sorted, start_worker, success, worker_example,
};

/// Reads back the jobs named in `sys.argv[1]` (a JSON object of name → id) as a Python client
/// would, with the default queue's registries.
const READ_JOBS: &str = r"
ids = json.loads(sys.argv[1])
out = {}
for name, id in ids.items():
    job = Job.fetch(id, connection=redis, serializer=JSONSerializer)
    latest = job.latest_result()
    out[name] = {
        'status': job.get_status().value,
        'return_value': job.return_value(),
        'meta': job.get_meta(refresh=True),
        'type': latest.type.name if latest else None,
        'exc_string': latest.exc_string if latest else None,
        'exc_info': job.exc_info,
        'worker_name': job.worker_name,
        'ttl': redis.ttl(job.key),
        'results_ttl': redis.ttl('rq:results:' + id),
    }
out['finished'] = queue.finished_job_registry.get_job_ids()
out['failed'] = queue.failed_job_registry.get_job_ids()
print(json.dumps(out))
";

on_every_rq! {
async fn python_jobs_run_on_rqrs_and_python_reads_their_results(rq: Rq) {
    let (server, _conn) = setup().await;
    let ids = python_of(
        rq,
        &server,
        r"
ids = {
    'add': queue.enqueue('fixtures.add', 2, 3).id,
    'kwargs': queue.enqueue('fixtures.add', 2, y=40).id,
    'echo': queue.enqueue('fixtures.echo', 1, 'two', [3.5], flag=True, none=None).id,
    'meta': queue.enqueue('fixtures.add', 1, 1, meta={'owner': 'python', 'n': 1}).id,
    'ttls': queue.enqueue('fixtures.add', 1, 2, result_ttl=1000, failure_ttl=2000).id,
    'set_meta': queue.enqueue('fixtures.set_meta', 'progress', {'done': 3},
                              meta={'owner': 'python'}).id,
}
print(json.dumps(ids))
",
        &[],
    )
    .await;
    burst(&server, &["default"]).await;

    let out = python_of(rq, &server, READ_JOBS, &[&ids.to_string()]).await;
    for name in ["add", "kwargs", "echo", "meta", "ttls", "set_meta"] {
        let job = &out[name];
        assert_eq!(job["status"], "finished", "{name}: {job}");
        assert_eq!(job["type"], "SUCCESSFUL", "{name}: {job}");
        assert!(
            job["worker_name"].as_str().is_some_and(|w| !w.is_empty()),
            "{name}: {job}"
        );
    }
    assert_eq!(out["add"]["return_value"], 5);
    assert_eq!(out["kwargs"]["return_value"], 42);
    assert_eq!(
        out["echo"]["return_value"],
        json!({"args": [1, "two", [3.5]], "kwargs": {"flag": true, "none": null}})
    );
    assert_eq!(out["add"]["meta"], json!({}));
    assert_eq!(out["meta"]["meta"], json!({"owner": "python", "n": 1}));
    assert_eq!(out["meta"]["return_value"], 2);
    // The function's save_meta() adds to the producer's meta, which the worker keeps.
    assert_eq!(
        out["set_meta"]["meta"],
        json!({"owner": "python", "progress": {"done": 3}})
    );
    assert_eq!(out["set_meta"]["return_value"], ids["set_meta"]);

    let ttl = |name: &str, key: &str| out[name][key].as_i64().unwrap();
    assert!((490..=500).contains(&ttl("add", "ttl")), "{out}");
    assert!((490..=500).contains(&ttl("add", "results_ttl")), "{out}");
    assert!((990..=1000).contains(&ttl("ttls", "ttl")), "{out}");
    assert!((990..=1000).contains(&ttl("ttls", "results_ttl")), "{out}");

    let mut all: Vec<String> = ids
        .as_object()
        .unwrap()
        .values()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(sorted(&out["finished"]), all);
    assert_eq!(out["failed"], json!([]));
}
}

#[tokio::test]
async fn jobs_failed_by_rqrs_are_failures_to_python() {
    let (server, _conn) = setup().await;
    let ids = python(
        &server,
        r"
ids = {
    'fail': queue.enqueue('fixtures.fail', 'boom from python').id,
    'fail_ttl': queue.enqueue('fixtures.fail', 'short-lived', failure_ttl=300).id,
    'unknown': queue.enqueue('fixtures.nope', 1).id,
    'bad_args': queue.enqueue('fixtures.add', 1, 2, 3).id,
}
print(json.dumps(ids))
",
        &[],
    )
    .await;
    burst(&server, &["default"]).await;

    let out = python(&server, READ_JOBS, &[&ids.to_string()]).await;
    let expected = [
        ("fail", "boom from python"),
        ("fail_ttl", "short-lived"),
        ("unknown", "fixtures.nope"),
        ("bad_args", "fixtures.add"),
    ];
    for (name, message) in expected {
        let job = &out[name];
        assert_eq!(job["status"], "failed", "{name}: {job}");
        assert_eq!(job["type"], "FAILED", "{name}: {job}");
        assert_eq!(job["return_value"], Value::Null, "{name}: {job}");
        let exc_string = job["exc_string"].as_str().unwrap_or_default();
        assert!(exc_string.contains(message), "{name}: {job}");
        assert_eq!(job["exc_info"], job["exc_string"], "{name}: {job}");
    }
    // Without a failure_ttl the job is kept a year and its results stream forever, as RQ does.
    let ttl = |name: &str, key: &str| out[name][key].as_i64().unwrap();
    assert!(ttl("fail", "ttl") > 31_535_000, "{out}");
    assert_eq!(ttl("fail", "results_ttl"), -1, "{out}");
    assert!((290..=300).contains(&ttl("fail_ttl", "ttl")), "{out}");
    assert!(
        (290..=300).contains(&ttl("fail_ttl", "results_ttl")),
        "{out}"
    );

    let mut all: Vec<String> = expected
        .iter()
        .map(|(name, _)| ids[*name].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(sorted(&out["failed"]), all);
    assert_eq!(out["finished"], json!([]));
}

#[tokio::test]
async fn pickled_job_fails_naming_the_json_serializer_and_the_next_job_runs() {
    let (server, _conn) = setup().await;
    let ids = python(
        &server,
        r"
pickled = Queue('default', connection=redis).enqueue('fixtures.add', 1, 2)
good = queue.enqueue('fixtures.add', 2, 3)
print(json.dumps({'pickled': pickled.id, 'good': good.id}))
",
        &[],
    )
    .await;
    burst(&server, &["default"]).await;

    let out = python(
        &server,
        r"
ids = json.loads(sys.argv[1])
pickled = Job.fetch(ids['pickled'], connection=redis)
good = Job.fetch(ids['good'], connection=redis, serializer=JSONSerializer)
print(json.dumps({
    'pickled_status': pickled.get_status().value,
    'pickled_exc': pickled.latest_result().exc_string,
    'pickled_args': list(pickled.args),
    'good_status': good.get_status().value,
    'good_value': good.return_value(),
    'failed': queue.failed_job_registry.get_job_ids(),
    'finished': queue.finished_job_registry.get_job_ids(),
}))
",
        &[&ids.to_string()],
    )
    .await;
    assert_eq!(out["pickled_status"], "failed", "{out}");
    let exc = out["pickled_exc"].as_str().unwrap();
    assert!(exc.contains("serializer=JSONSerializer"), "{exc}");
    // rqrs failed the job without touching its data: Python still unpickles it.
    assert_eq!(out["pickled_args"], json!([1, 2]));
    assert_eq!(out["good_status"], "finished", "{out}");
    assert_eq!(out["good_value"], 5);
    assert_eq!(out["failed"], json!([ids["pickled"]]));
    assert_eq!(out["finished"], json!([ids["good"]]));
}

/// A Python module with the functions the Python worker runs under the fixture names.
const PYTHON_FIXTURES: &str = r"
def add(x, y):
    return x + y

def echo(*args, **kwargs):
    return {'args': list(args), 'kwargs': kwargs}

def divide(x, y):
    return x / y

def sleep(seconds):
    import time
    time.sleep(seconds)
";

on_every_rq! {
async fn jobs_enqueued_by_rqrs_run_on_a_python_simple_worker(rq: Rq) {
    let (server, conn) = setup().await;
    let modules = tempfile::tempdir().unwrap();
    std::fs::write(modules.path().join("fixtures.py"), PYTHON_FIXTURES).unwrap();
    let id = |stdout: String| stdout.trim().parse::<JobId>().unwrap();
    let add = id(rqrs(&server, &["enqueue", "fixtures.add", ":2", ":3"]).await);
    let echo = id(rqrs(
        &server,
        &[
            "enqueue",
            "fixtures.echo",
            "text",
            ":[1, 2.5]",
            "k=v",
            "n:=3",
        ],
    )
    .await);
    let divide = id(rqrs(&server, &["enqueue", "fixtures.divide", ":1", ":0"]).await);

    let worker = python_of(
        rq,
        &server,
        r"
sys.path.insert(0, sys.argv[1])
from rq import SimpleWorker
worker = SimpleWorker([queue], connection=redis, serializer=JSONSerializer)
worker.work(burst=True)
print(json.dumps({'name': worker.name}))
",
        &[modules.path().to_str().unwrap()],
    )
    .await;

    let add = Job::fetch(&conn, &add).await.unwrap();
    assert_eq!(add.status(), JobStatus::Finished);
    assert_eq!(add.return_value().await.unwrap(), Some(json!(5)));
    assert_eq!(add.worker_name(), worker["name"].as_str());
    let echo = Job::fetch(&conn, &echo).await.unwrap();
    assert_eq!(echo.status(), JobStatus::Finished);
    assert_eq!(
        echo.return_value().await.unwrap(),
        Some(json!({"args": ["text", [1, 2.5]], "kwargs": {"k": "v", "n": 3}}))
    );
    let divide = Job::fetch(&conn, &divide).await.unwrap();
    assert_eq!(divide.status(), JobStatus::Failed);
    assert_eq!(divide.return_value().await.unwrap(), None);
    let exc_info = divide.exc_info().await.unwrap().unwrap_or_default();
    assert!(exc_info.contains("ZeroDivisionError"), "{exc_info}");

    let mut finished = FinishedJobRegistry::new(&conn, "default")
        .job_ids()
        .await
        .unwrap();
    finished.sort();
    let mut expected = vec![add.id().clone(), echo.id().clone()];
    expected.sort();
    assert_eq!(finished, expected);
    assert_eq!(
        FailedJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [divide.id().clone()]
    );
}
}

/// The worker `name` as `rqrs::Worker::all` sees it, once it is in `state`.
async fn wait_for_worker(
    conn: &rqrs::Connection,
    name: &str,
    state: WorkerState,
) -> rqrs::WorkerInfo {
    wait_for(
        &format!("worker {name} to be {}", state.as_str()),
        HANG,
        || async {
            Worker::all(conn)
                .await
                .ok()?
                .into_iter()
                .find(|worker| worker.name == name && worker.state == state)
        },
    )
    .await
}

#[tokio::test]
async fn rq_info_lists_a_running_rqrs_worker_until_sigterm_stops_it() {
    let (server, conn) = setup().await;
    let worker = start_worker(&server, "rqrs-info", &["default", "low"]);
    let info = wait_for_worker(&conn, "rqrs-info", WorkerState::Idle).await;
    assert_eq!(info.queues, ["default", "low"]);

    let text = success(&rq_cli(&server, &["info"]).await, "rq info");
    let line = text
        .lines()
        .find(|line| line.starts_with("rqrs-info ("))
        .unwrap_or_else(|| panic!("rq info does not list the worker:\n{text}"));
    assert!(line.contains(": idle default, low."), "{line}");
    assert!(line.contains(&format!(" {})", info.pid)), "{line}");
    assert!(text.contains("1 workers"), "{text}");

    let python_view = python(
        &server,
        r"
from datetime import datetime, timezone
from rq import Worker
workers = Worker.all(connection=redis, serializer=JSONSerializer)
now = datetime.now(timezone.utc)
print(json.dumps([{
    'name': w.name, 'state': w.get_state(), 'queues': w.queue_names(), 'pid': w.pid,
    'born_seconds_ago': (now - w.birth_date).total_seconds(),
    'heartbeat_seconds_ago': (now - w.last_heartbeat).total_seconds(),
    'successful_job_count': w.successful_job_count, 'current_job': w.get_current_job_id(),
} for w in workers]))
",
        &[],
    )
    .await;
    let python_view = &python_view[0];
    assert_eq!(python_view["name"], "rqrs-info", "{python_view}");
    assert_eq!(python_view["state"], "idle", "{python_view}");
    assert_eq!(python_view["queues"], json!(["default", "low"]));
    assert_eq!(python_view["pid"], info.pid);
    for age in ["born_seconds_ago", "heartbeat_seconds_ago"] {
        let seconds = python_view[age].as_f64().unwrap();
        assert!(
            (-5.0..HANG.as_secs_f64()).contains(&seconds),
            "{python_view}"
        );
    }
    assert_eq!(python_view["successful_job_count"], 0);
    assert_eq!(python_view["current_job"], Value::Null);

    let ours: Value = serde_json::from_str(&rqrs(&server, &["info", "--json"]).await).unwrap();
    assert_eq!(ours["workers"][0]["name"], "rqrs-info", "{ours}");
    assert_eq!(ours["workers"][0]["state"], "idle", "{ours}");

    crate::stop(worker).await;

    assert!(Worker::all(&conn).await.unwrap().is_empty());
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("rq:workers")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(members.is_empty(), "{members:?}");
    let text = success(&rq_cli(&server, &["info"]).await, "rq info");
    assert!(!text.contains("rqrs-info"), "{text}");
    assert!(text.contains("0 workers"), "{text}");
}

on_every_rq! {
    /// Python sees a busy rqrs worker's job (RQ 2.12 in the worker hash's `current_job`, RQ 3.0
    /// in the worker's set of executions) and stops it with its own command (RQ 2.12's
    /// `stop-job`, RQ 3.0's `stop-execution`).
    async fn python_sees_a_busy_rqrs_worker_and_its_current_job_and_stops_it(rq: Rq) {
        let (server, conn) = setup().await;
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.sleep", (120,))
            .send()
            .await
            .unwrap();
        let _worker = start_worker(&server, "rqrs-busy", &["default"]);
        let info = wait_for_worker(&conn, "rqrs-busy", WorkerState::Busy).await;
        assert_eq!(info.current_job.as_deref(), Some(job.id().as_str()));

        let text = success(&rq_cli(&server, &["info", "--raw"]).await, "rq info --raw");
        assert!(
            text.lines().any(|line| line.starts_with("worker rqrs-busy (")
                && line.contains(") busy default.")),
            "rq info --raw does not show the busy worker:\n{text}"
        );

        // rq info cleaned the started registry above; the running job must have survived it.
        let out = python_of(
            rq,
            &server,
            r"
import rq
from rq import Worker
worker = Worker.find_by_key('rq:worker:rqrs-busy', connection=redis, serializer=JSONSerializer)
current = worker.get_current_job()
job_id = worker.get_current_job_id()
out = {
    'state': worker.get_state(),
    'current_job_id': job_id,
    'func_name': current.func_name,
    'args': current.args,
    'status': current.get_status().value,
    'started': queue.started_job_registry.get_job_ids(),
}
if rq.__version__.startswith('2.'):
    from rq.command import send_stop_job_command
    send_stop_job_command(redis, job_id, serializer=JSONSerializer)
else:
    from rq.command import send_stop_execution_command
    execution = current.get_executions()[0]
    out['execution_worker'] = execution.worker_name
    send_stop_execution_command(redis, job_id, execution.id)
print(json.dumps(out))
",
            &[],
        )
        .await;
        assert_eq!(out["state"], "busy", "{out}");
        assert_eq!(out["current_job_id"], job.id().as_str(), "{out}");
        assert_eq!(out["func_name"], "fixtures.sleep", "{out}");
        assert_eq!(out["args"], json!([120]), "{out}");
        assert_eq!(out["status"], "started", "{out}");
        assert_eq!(out["started"], json!([job.id().as_str()]), "{out}");
        if rq.version().starts_with('3') {
            assert_eq!(out["execution_worker"], "rqrs-busy", "{out}");
        }
        let stopped = wait_for("the job to stop", HANG, || async {
            let fetched = Job::fetch(&conn, job.id()).await.ok()?;
            (fetched.status() == JobStatus::Stopped).then_some(fetched)
        })
        .await;
        assert_eq!(stopped.status(), JobStatus::Stopped);
    }
}

#[tokio::test]
async fn jobs_requeued_from_python_run_again_on_rqrs() {
    let (server, conn) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    // The first runs fail: the directory they append to does not exist yet.
    let out_dir = dir.path().join("out");
    let path = out_dir.join("lines.txt");
    let ids = python(
        &server,
        r"
path = sys.argv[1]
print(json.dumps({
    'job': queue.enqueue('fixtures.append', path, 'from job.requeue').id,
    'registry': queue.enqueue('fixtures.append', path, 'from the registry').id,
}))
",
        &[path.to_str().unwrap()],
    )
    .await;
    burst(&server, &["default"]).await;
    let failed = FailedJobRegistry::new(&conn, "default");
    assert_eq!(failed.count().await.unwrap(), 2);

    std::fs::create_dir(&out_dir).unwrap();
    let requeued = python(
        &server,
        r"
ids = json.loads(sys.argv[1])
Job.fetch(ids['job'], connection=redis, serializer=JSONSerializer).requeue()
queue.failed_job_registry.requeue(ids['registry'])
print(json.dumps({
    'statuses': [Job.fetch(id, connection=redis, serializer=JSONSerializer).get_status().value
                 for id in ids.values()],
    'queued': queue.get_job_ids(),
}))
",
        &[&ids.to_string()],
    )
    .await;
    assert_eq!(requeued["statuses"], json!(["queued", "queued"]));
    assert_eq!(requeued["queued"], json!([ids["job"], ids["registry"]]));

    burst(&server, &["default"]).await;
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, ["from job.requeue", "from the registry"]);
    assert_eq!(failed.count().await.unwrap(), 0);

    let out = python(
        &server,
        r"
ids = json.loads(sys.argv[1])
out = {}
for name, id in ids.items():
    job = Job.fetch(id, connection=redis, serializer=JSONSerializer)
    out[name] = {'status': job.get_status().value,
                 'results': [result.type.name for result in job.results()]}
print(json.dumps(out))
",
        &[&ids.to_string()],
    )
    .await;
    let runs = json!({"status": "finished", "results": ["SUCCESSFUL", "FAILED"]});
    assert_eq!(out, json!({"job": runs, "registry": runs}));
}

#[tokio::test]
async fn jobs_failed_by_rqrs_and_requeued_by_the_cli_are_queued_for_python() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let mut ids = HashMap::new();
    for name in ["first", "second"] {
        let job = queue
            .enqueue("fixtures.fail", (name,))
            .send()
            .await
            .unwrap();
        ids.insert(name, job.id().as_str().to_owned());
    }
    burst(&server, &["default"]).await;
    assert_eq!(
        FailedJobRegistry::new(&conn, "default")
            .count()
            .await
            .unwrap(),
        2
    );

    let stdout = rqrs(&server, &["requeue", "--all", "--queue", "default"]).await;
    assert_eq!(stdout.trim(), "Requeued 2 jobs");

    let ids = json!(ids);
    let out = python(
        &server,
        r"
ids = json.loads(sys.argv[1])
out = {'queued': queue.get_job_ids(), 'failed': queue.failed_job_registry.get_job_ids()}
for name, id in ids.items():
    job = Job.fetch(id, connection=redis, serializer=JSONSerializer)
    out[name] = {'status': job.get_status().value, 'args': job.args,
                 'started_at': job.started_at, 'ended_at': job.ended_at,
                 'enqueued': job.enqueued_at is not None}
print(json.dumps(out))
",
        &[&ids.to_string()],
    )
    .await;
    assert_eq!(
        sorted(&out["queued"]),
        sorted(&json!([ids["first"], ids["second"]]))
    );
    assert_eq!(out["failed"], json!([]));
    for name in ["first", "second"] {
        assert_eq!(
            out[name],
            json!({"status": "queued", "args": [name], "started_at": null, "ended_at": null,
                   "enqueued": true}),
            "{out}"
        );
    }
}

#[tokio::test]
async fn pythons_json_values_round_trip_or_fail_with_a_reason() {
    let (server, _conn) = setup().await;
    let ids = python(
        &server,
        r"
print(json.dumps({
    'big': queue.enqueue('fixtures.echo', 2**70, -2**80, 1.5e300).id,
    'text': queue.enqueue('fixtures.echo', 'é ☃ \U0001F600', {1: [None]}, t=(1, 2)).id,
    'nan': queue.enqueue('fixtures.echo', float('nan'), float('inf')).id,
    'overflow': queue.enqueue('fixtures.add', 2**62, 2**62).id,
    'after': queue.enqueue('fixtures.add', 1, 1).id,
}))
",
        &[],
    )
    .await;
    burst(&server, &["default"]).await;

    let out = python(
        &server,
        r"
ids = json.loads(sys.argv[1])
out = {}
for name, id in ids.items():
    job = Job.fetch(id, connection=redis, serializer=JSONSerializer)
    latest = job.latest_result()
    out[name] = {'status': job.get_status().value, 'value': job.return_value(),
                 'exc': latest.exc_string if latest else None,
                 'big_is_exact': job.return_value() == {'args': [2**70, -2**80, 1.5e300],
                                                        'kwargs': {}}}
print(json.dumps(out))
",
        &[&ids.to_string()],
    )
    .await;
    // Integers beyond 64 bits come back exact: rqrs keeps numbers as Python wrote them.
    assert_eq!(out["big"]["status"], "finished", "{out}");
    assert_eq!(out["big"]["big_is_exact"], true, "{out}");
    assert_eq!(out["text"]["status"], "finished", "{out}");
    assert_eq!(
        out["text"]["value"],
        json!({"args": ["é ☃ \u{1F600}", {"1": [null]}], "kwargs": {"t": [1, 2]}})
    );
    // NaN and Infinity cannot be JSON: the job fails saying so, and the worker goes on.
    assert_eq!(out["nan"]["status"], "failed", "{out}");
    let exc = out["nan"]["exc"].as_str().unwrap_or_default();
    assert!(exc.contains("NaN or Infinity"), "{exc}");
    assert_eq!(out["overflow"]["status"], "failed", "{out}");
    assert_eq!(out["after"]["value"], 2, "{out}");
}

#[tokio::test]
async fn python_reads_jobs_enqueued_by_the_rqrs_library() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    queue
        .enqueue("fixtures.add", (1, 2))
        .job_id("rust-job".parse().unwrap())
        .kwargs(json!({}))
        .meta(json!({"owner": "rust", "tags": ["a"]}))
        .result_ttl(std::time::Duration::from_secs(100))
        .failure_ttl(std::time::Duration::from_secs(200))
        .ttl(std::time::Duration::from_secs(300))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    queue
        .enqueue("fixtures.noop", ())
        .job_id("no-timeout".parse().unwrap())
        .no_timeout()
        .at_front(true)
        .send()
        .await
        .unwrap();
    queue
        .enqueue_many([
            queue
                .enqueue("fixtures.echo", ("many",))
                .job_id("many-1".parse().unwrap()),
            queue
                .enqueue("fixtures.echo", ())
                .kwargs(json!({"k": [1]}))
                .job_id("many-2".parse().unwrap()),
        ])
        .await
        .unwrap();

    let out = python(
        &server,
        r"
out = {'queued': queue.get_job_ids()}
for job in Job.fetch_many(['rust-job', 'no-timeout', 'many-1', 'many-2'], connection=redis,
                          serializer=JSONSerializer):
    out[job.id] = {
        'func_name': job.func_name, 'args': job.args, 'kwargs': job.kwargs, 'meta': job.meta,
        'status': job.get_status().value, 'origin': job.origin, 'description': job.description,
        'timeout': job.timeout, 'result_ttl': job.result_ttl, 'failure_ttl': job.failure_ttl,
        'ttl': job.ttl, 'key_ttl': redis.ttl(job.key), 'position': job.get_position(),
        'created': job.created_at is not None, 'enqueued': job.enqueued_at is not None,
    }
print(json.dumps(out))
",
        &[],
    )
    .await;
    assert_eq!(
        out["queued"],
        json!(["no-timeout", "rust-job", "many-1", "many-2"])
    );
    let job = &out["rust-job"];
    assert!(
        (290..=300).contains(&job["key_ttl"].as_i64().unwrap()),
        "{job}"
    );
    assert_eq!(
        job,
        &json!({
            "func_name": "fixtures.add", "args": [1, 2], "kwargs": {},
            "meta": {"owner": "rust", "tags": ["a"]}, "status": "queued", "origin": "default",
            "description": "fixtures.add(1, 2)", "timeout": 30, "result_ttl": 100,
            "failure_ttl": 200, "ttl": 300, "key_ttl": job["key_ttl"], "position": 1,
            "created": true, "enqueued": true,
        })
    );
    assert_eq!(out["no-timeout"]["timeout"], -1, "{out}");
    assert_eq!(out["no-timeout"]["position"], 0, "{out}");
    assert_eq!(out["no-timeout"]["key_ttl"], -1, "{out}");
    assert_eq!(out["many-1"]["args"], json!(["many"]));
    assert_eq!(out["many-1"]["description"], "fixtures.echo('many')");
    assert_eq!(out["many-2"]["kwargs"], json!({"k": [1]}));
    assert_eq!(out["many-2"]["description"], "fixtures.echo(k=[1])");
    assert_eq!(out["many-2"]["timeout"], 180);
}

/// Runs `script` (after the prelude) with Python RQ 3.0 and `RQ_KEY_PREFIX=prefix`, the
/// fixture module's folder as `sys.argv[1]`; returns the JSON it prints last.
async fn python_3_prefixed(server: &RedisServer, prefix: &str, script: &str) -> Value {
    let url = server.url();
    let script = format!("{PYTHON_PRELUDE}sys.path.insert(0, sys.argv[1])\n{script}");
    let prefix = prefix.to_owned();
    let stdout = tokio::task::spawn_blocking(move || {
        let modules = tempfile::tempdir().unwrap();
        std::fs::write(modules.path().join("fixtures.py"), PYTHON_FIXTURES).unwrap();
        let folder = modules.path().to_str().unwrap();
        Rq::V3_0.run_with_env(&url, &script, &[folder], &[("RQ_KEY_PREFIX", &prefix)])
    })
    .await
    .unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("python printed no JSON last ({error}):\n{stdout}"))
}

/// RQ 3.0 with `RQ_KEY_PREFIX` and rqrs with the same prefix (`--key-prefix`, or the same
/// variable) share jobs both ways; rqrs on the default prefix sees none of them.
#[tokio::test]
async fn rq_3_0_and_rqrs_share_a_key_prefix() {
    const PREFIX: &str = "{app}";
    let (server, conn) = setup().await;

    // Python 3.0 enqueues under the prefix; an rqrs worker on the prefix runs the job.
    let enqueued = python_3_prefixed(
        &server,
        PREFIX,
        "print(json.dumps({'id': queue.enqueue('fixtures.add', 2, 3).id, 'key': queue.key}))",
    )
    .await;
    assert_eq!(enqueued["key"], "{app}:queue:default");
    assert!(
        Queue::all(&conn).await.unwrap().is_empty(),
        "the default prefix has no queue"
    );
    let mut command = Command::new(worker_example());
    command.args([
        "--url",
        &server.url(),
        "--key-prefix",
        PREFIX,
        "--burst",
        "default",
    ]);
    success(
        &output(command, "the burst worker").await,
        "the burst worker",
    );

    // rqrs enqueues under the prefix (RQ_KEY_PREFIX, read by the CLI too); a Python 3.0
    // worker runs it, then reads both jobs.
    let mut command = Command::new(env!("CARGO_BIN_EXE_rqrs"));
    command
        .args([
            "--url",
            &server.url(),
            "enqueue",
            "fixtures.add",
            ":40",
            ":2",
        ])
        .env("RQ_KEY_PREFIX", PREFIX);
    let rqrs_id = success(&output(command, "rqrs enqueue").await, "rqrs enqueue");
    let script = format!(
        "from rq import SimpleWorker\n\
         SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(burst=True)\n\
         out = {{}}\n\
         for name, id in [('python', '{}'), ('rqrs', '{}')]:\n\
         \x20   job = Job.fetch(id, connection=redis, serializer=JSONSerializer)\n\
         \x20   out[name] = [job.get_status().value, job.return_value(), job.worker_name, job.key]\n\
         print(json.dumps(out))\n",
        enqueued["id"].as_str().unwrap(),
        rqrs_id.trim()
    );
    let out = python_3_prefixed(&server, PREFIX, &script).await;
    assert_eq!(out["python"][0], "finished", "{out}");
    assert_eq!(out["python"][1], 5, "{out}");
    assert!(
        !out["python"][2].as_str().unwrap_or_default().is_empty(),
        "{out}"
    );
    assert_eq!(out["rqrs"][0], "finished", "{out}");
    assert_eq!(out["rqrs"][1], 42, "{out}");
    assert_eq!(
        out["rqrs"][3],
        format!("{{app}}:job:{}", rqrs_id.trim()),
        "{out}"
    );
    let mut redis = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis)
        .await
        .unwrap();
    let stray: Vec<&String> = keys
        .iter()
        .filter(|key| !key.starts_with("{app}:"))
        .collect();
    assert!(stray.is_empty(), "keys outside the prefix: {stray:?}");
}

on_every_rq! {
    /// rqrs sees a busy Python worker's job (RQ 2.12's `current_job`, RQ 3.0's set of
    /// executions) and `rqrs job stop` stops it with the command both versions understand.
    async fn rqrs_sees_a_busy_python_worker_and_stops_its_job(rq: Rq) {
        let (server, conn) = setup().await;
        let modules = tempfile::tempdir().unwrap();
        std::fs::write(modules.path().join("fixtures.py"), PYTHON_FIXTURES).unwrap();
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.sleep", (120,))
            .send()
            .await
            .unwrap();
        let mut command = Command::from(rq.cli());
        command
            .args(["worker", "--url", &server.url(), "--name", "python-busy"])
            .args(["--serializer", "rq.serializers.JSONSerializer", "default"])
            .env("PYTHONPATH", modules.path())
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut python_worker = command.spawn().unwrap();
        let info = wait_for_worker(&conn, "python-busy", WorkerState::Busy).await;
        let busy = wait_for("the busy worker's job", HANG, || async {
            Worker::all(&conn)
                .await
                .ok()?
                .into_iter()
                .find(|worker| worker.name == "python-busy" && worker.current_job.is_some())
        })
        .await;
        assert_eq!(busy.current_job.as_deref(), Some(job.id().as_str()), "{info:?}");
        let shown: Value = serde_json::from_str(&rqrs(&server, &["info", "--json"]).await).unwrap();
        let shown = shown["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|worker| worker["name"] == "python-busy")
            .cloned()
            .unwrap();
        assert_eq!(shown["current_job"], job.id().as_str(), "{shown}");

        // RQ 3.0 names the job on its worker before it names the worker on the job, which the
        // stop-job command reads.
        wait_for("the job to name its worker", HANG, || async {
            Job::fetch(&conn, job.id()).await.ok()?.worker_name().map(drop)
        })
        .await;
        rqrs(&server, &["job", "stop", job.id().as_str()]).await;
        let stopped = wait_for("the job to stop", HANG, || async {
            let fetched = Job::fetch(&conn, job.id()).await.ok()?;
            (fetched.status() == JobStatus::Stopped).then_some(fetched)
        })
        .await;
        assert_eq!(stopped.status(), JobStatus::Stopped);
        let _ = python_worker.start_kill();
    }
}

on_every_rq! {
    /// A Python cleanup (which any `len()` of a started registry runs, without a lock) and
    /// rqrs's recovery look at one abandoned run at once, in the worst order: Python reads the
    /// expired entries, rqrs retries the run, then Python writes its own retry. The job still
    /// runs once: a second copy of its id on the queue is dropped when taken.
    async fn a_python_cleanup_racing_rqrs_recovery_runs_the_job_once(rq: Rq) {
        let (server, conn) = setup().await;
        let dir = tempfile::tempdir().unwrap();
        let lines = dir.path().join("lines.txt");
        let job = Queue::new(&conn, "default")
            .enqueue(
                "fixtures.append",
                (lines.to_str().unwrap(), "ran"),
            )
            .retry(rqrs::Retry::new(2))
            .send()
            .await
            .unwrap();
        // A run whose worker died: started, its deadline long past.
        let mut redis = server.client().get_multiplexed_async_connection().await.unwrap();
        let id = job.id().as_str();
        let _: () = redis::pipe()
            .lrem("rq:queue:default", 0, id)
            .hset(format!("rq:job:{id}"), "status", "started")
            .zadd("rq:wip:default", format!("{id}:e1"), 1)
            .zadd(format!("rq:executions:{id}"), "e1", 1)
            .query_async(&mut redis)
            .await
            .unwrap();

        let read = dir.path().join("read");
        let go = dir.path().join("go");
        let script = r"
import time
from rq.registry import StartedJobRegistry
read_them = StartedJobRegistry.get_expired_job_ids
def read_then_wait(self, *args, **kwargs):
    ids = read_them(self, *args, **kwargs)
    open(sys.argv[1], 'w').write(','.join(ids))
    until = time.time() + 30
    while not os.path.exists(sys.argv[2]) and time.time() < until:
        time.sleep(0.01)
    return ids
StartedJobRegistry.get_expired_job_ids = read_then_wait
queue.started_job_registry.cleanup()
print(json.dumps({'queued': queue.get_job_ids()}))
";
        let python = {
            let server_url = server.url();
            let (read, go) = (read.clone(), go.clone());
            tokio::task::spawn_blocking(move || {
                let script = format!("{PYTHON_PRELUDE}{script}");
                rq.run(&server_url, &script, &[read.to_str().unwrap(), go.to_str().unwrap()])
            })
        };
        wait_for("Python to read the expired runs", HANG, || async {
            std::fs::read_to_string(&read).ok().filter(|text| text.contains(id))
        })
        .await;
        assert_eq!(
            rqrs::StartedJobRegistry::new(&conn, "default")
                .cleanup()
                .await
                .unwrap(),
            1
        );
        std::fs::write(&go, "").unwrap();
        let out = python.await.unwrap();
        // RQ 2.12 retries the run again (a second copy of the id); RQ 3.0 sees that the job is
        // no longer started and leaves it.
        let copies = out.matches(id).count();
        let expected = if rq.version().starts_with("2.") { 2 } else { 1 };
        assert_eq!(copies, expected, "{out}");

        burst(&server, &["default"]).await;
        let ran = std::fs::read_to_string(&lines).unwrap();
        assert_eq!(ran, "ran\n", "the job ran once");
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        assert_eq!(Queue::new(&conn, "default").count().await.unwrap(), 0);
        assert_eq!(
            FailedJobRegistry::new(&conn, "default").count().await.unwrap(),
            0
        );
    }
}

/// The most jobs of `ids` that ran at once, each of which must have finished.
async fn most_at_once(conn: &rqrs::Connection, ids: &[JobId]) -> usize {
    for id in ids {
        assert_eq!(
            Job::fetch(conn, id).await.unwrap().status(),
            JobStatus::Finished,
            "{id}"
        );
    }
    rqrs_test::most_at_once(conn, ids).await
}

/// RQ 3.0's rate limits, both ways: an rqrs worker runs the jobs a Python 3.0 producer limited
/// (giving each slot back, so that none stays `rate_limited`), and a Python 3.0 worker the jobs
/// rqrs limited; never more at once than the limit, measured from the jobs' times.
#[tokio::test]
async fn rq_3_0_rate_limits_hold_on_rqrs_workers_and_rqrs_limits_on_rq_3_0_workers() {
    let (server, conn) = setup().await;
    let out = python_of(
        Rq::V3_0,
        &server,
        r"
from rq import RateLimit
ids = [queue.enqueue('fixtures.sleep', 0.1, rate_limit=RateLimit('py-api', concurrency=2)).id
       for _ in range(12)]
print(json.dumps({'ids': ids, 'statuses': [Job.fetch(i, connection=redis).get_status().value
                                           for i in ids]}))
",
        &[],
    )
    .await;
    let statuses: Vec<&str> = out["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status.as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "queued").count(),
        2,
        "{out}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "rate_limited").count(),
        10,
        "{out}"
    );
    let ids: Vec<JobId> = out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect();
    burst(&server, &["default"]).await;
    let most = most_at_once(&conn, &ids).await;
    assert!(
        (1..=2).contains(&most),
        "{most} at once over Python's limit of 2"
    );

    // rqrs limits, a Python 3.0 worker runs them and gives the slots back as it goes.
    let modules = tempfile::tempdir().unwrap();
    std::fs::write(modules.path().join("fixtures.py"), PYTHON_FIXTURES).unwrap();
    let queue = Queue::new(&conn, "default");
    let mut ours = Vec::new();
    for _ in 0..4 {
        let job = queue
            .enqueue("fixtures.add", (1, 2))
            .rate_limit(rqrs::RateLimit::new("rqrs-api", 1))
            .send()
            .await
            .unwrap();
        ours.push(job.id().clone());
    }
    assert_eq!(queue.count().await.unwrap(), 1);
    let worker = python_of(
        Rq::V3_0,
        &server,
        r"
sys.path.insert(0, sys.argv[1])
from rq import SimpleWorker
SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(burst=True)
print(json.dumps({'allowed': redis.zcard('rq:rl:rqrs-api:allowed'),
                  'waiting': redis.zcard('rq:rl:rqrs-api:rate_limited')}))
",
        &[modules.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(worker, json!({"allowed": 0, "waiting": 0}));
    assert_eq!(most_at_once(&conn, &ours).await, 1);
}

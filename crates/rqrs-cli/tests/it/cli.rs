//! The `rqrs` command line end to end: `enqueue` (argument syntax and options, as Python reads
//! the job), `info --json`, `requeue` and `empty`.

use rqrs::{FailedJobRegistry, Job, JobId, JobStatus, Queue};
use serde_json::{Value, json};

use crate::{burst, on_every_backend, python, rqrs, rqrs_output, setup};

#[tokio::test]
async fn enqueue_argument_syntax_reaches_the_job_as_python_would_send_it() {
    let (server, conn) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("list.json");
    std::fs::write(&json_file, "[1, 2]").unwrap();
    let text_file = dir.path().join("note.txt");
    std::fs::write(&text_file, "from a file").unwrap();
    let json_arg = format!(":@{}", json_file.display());
    let text_arg = format!("note=@{}", text_file.display());

    let stdout = rqrs(
        &server,
        &[
            "enqueue",
            "fixtures.echo",
            "text",
            ":1",
            "k=v",
            ":2.5",
            r#":{"a": null, "b": true}"#,
            "n:=3",
            "it's é",
            &json_arg,
            &text_arg,
            "=x",
        ],
    )
    .await;
    let id: JobId = stdout.trim().parse().unwrap();
    let args = json!(["text", 1, 2.5, {"a": null, "b": true}, "it's é", [1, 2], "=x"]);
    let kwargs = json!({"k": "v", "n": 3, "note": "from a file"});

    // Python reads the job as it reads its own, description included.
    let out = python(
        &server,
        r"
job = Job.fetch(sys.argv[1], connection=redis, serializer=JSONSerializer)
same = queue.enqueue('fixtures.echo', 'text', 1, 2.5, {'a': None, 'b': True}, 'it\'s é', [1, 2],
                     '=x', k='v', n=3, note='from a file')
print(json.dumps({
    'func_name': job.func_name, 'args': job.args, 'kwargs': job.kwargs,
    'status': job.get_status().value, 'origin': job.origin, 'timeout': job.timeout,
    'description': job.description, 'python_description': same.description,
    'queued': queue.get_job_ids(),
}))
",
        &[id.as_str()],
    )
    .await;
    assert_eq!(out["func_name"], "fixtures.echo");
    assert_eq!(out["args"], args);
    assert_eq!(out["kwargs"], kwargs);
    assert_eq!(out["status"], "queued");
    assert_eq!(out["origin"], "default");
    assert_eq!(out["timeout"], 180);
    assert_eq!(out["description"], out["python_description"], "{out}");
    assert_eq!(out["queued"][0], id.as_str());

    burst(&server, &["default"]).await;
    let job = Job::fetch(&conn, &id).await.unwrap();
    assert_eq!(job.status(), JobStatus::Finished);
    assert_eq!(
        job.return_value().await.unwrap(),
        Some(json!({"args": args, "kwargs": kwargs}))
    );
}

#[tokio::test]
async fn enqueue_options_are_stored_as_rq_stores_them() {
    let (server, conn) = setup().await;
    rqrs(
        &server,
        &["enqueue", "fixtures.add", ":1", ":1", "-q", "high"],
    )
    .await;
    let stdout = rqrs(
        &server,
        &[
            "enqueue",
            "fixtures.add",
            "x:=20",
            "y:=22",
            "--queue",
            "high",
            "--job-id",
            "cli-job_1",
            "--timeout",
            "30",
            "--result-ttl",
            "1000",
            "--failure-ttl",
            "77",
            "--ttl",
            "600",
            "--description",
            "the answer",
            "--at-front",
        ],
    )
    .await;
    assert_eq!(stdout.trim(), "cli-job_1");

    let out = python(
        &server,
        r"
high = Queue('high', connection=redis, serializer=JSONSerializer)
job = Job.fetch('cli-job_1', connection=redis, serializer=JSONSerializer)
print(json.dumps({
    'queued': high.get_job_ids(), 'origin': job.origin, 'timeout': job.timeout,
    'result_ttl': job.result_ttl, 'failure_ttl': job.failure_ttl, 'ttl': job.ttl,
    'key_ttl': redis.ttl(job.key), 'description': job.description, 'kwargs': job.kwargs,
}))
",
        &[],
    )
    .await;
    assert_eq!(out["queued"][0], "cli-job_1", "--at-front: {out}");
    assert_eq!(out["queued"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["origin"], "high");
    assert_eq!(out["timeout"], 30);
    assert_eq!(out["result_ttl"], 1000);
    assert_eq!(out["failure_ttl"], 77);
    assert_eq!(out["ttl"], 600);
    assert!(
        (590..=600).contains(&out["key_ttl"].as_i64().unwrap()),
        "{out}"
    );
    assert_eq!(out["description"], "the answer");
    assert_eq!(out["kwargs"], json!({"x": 20, "y": 22}));

    burst(&server, &["high"]).await;
    let job = Job::fetch(&conn, &"cli-job_1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(job.return_value().await.unwrap(), Some(json!(42)));
}

on_every_backend! {
async fn enqueue_refuses_bad_arguments_and_enqueues_nothing(server: &Store, conn: &Connection) {
    for (args, message) in [
        (
            &["enqueue", "fixtures.echo", ":{nope"][..],
            "argument 1 is not valid JSON",
        ),
        (&["enqueue", "fixtures.echo", "k=1", "k=2"], "given twice"),
        (&["enqueue", "fixtures.echo", "--job-id", "a:b"], "a:b"),
        (
            &["enqueue", "fixtures.echo", "@/nonexistent/file"],
            "/nonexistent/file",
        ),
    ] {
        let output = rqrs_output(&server, args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(Queue::new(conn, "default").count().await.unwrap(), 0);
}
}

/// The entry of queue `name` in `rqrs info --json` output.
fn queue_entry<'a>(info: &'a Value, name: &str) -> &'a Value {
    info["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|queue| queue["name"] == name)
        .unwrap_or_else(|| panic!("no queue {name} in {info}"))
}

on_every_backend! {
async fn info_json_counts_jobs_by_queue(server: &Store, _conn: &Connection) {
    for _ in 0..2 {
        rqrs(&server, &["enqueue", "fixtures.add", ":1", ":2"]).await;
    }
    rqrs(
        &server,
        &["enqueue", "fixtures.add", ":1", ":2", "-q", "low"],
    )
    .await;
    rqrs(&server, &["enqueue", "fixtures.fail", "no", "-q", "low"]).await;
    burst(&server, &["low"]).await;

    let info: Value = serde_json::from_str(&rqrs(&server, &["info", "--json"]).await).unwrap();
    assert_eq!(info["queues"].as_array().unwrap().len(), 2, "{info}");
    assert_eq!(
        queue_entry(&info, "default"),
        &json!({"name": "default", "queued": 2, "started": 0, "finished": 0, "failed": 0})
    );
    assert_eq!(
        queue_entry(&info, "low"),
        &json!({"name": "low", "queued": 0, "started": 0, "finished": 1, "failed": 1})
    );
    assert_eq!(info["workers"], json!([]), "the burst worker is gone");

    let only_low: Value =
        serde_json::from_str(&rqrs(&server, &["info", "--json", "low"]).await).unwrap();
    assert_eq!(
        only_low["queues"].as_array().unwrap().len(),
        1,
        "{only_low}"
    );
    queue_entry(&only_low, "low");

    let text = rqrs(&server, &["info"]).await;
    assert!(text.contains("2 queues, 2 jobs queued"), "{text}");
    assert!(text.contains("0 workers"), "{text}");
}
}

on_every_backend! {
async fn requeue_by_id_moves_one_failed_job_back_and_refuses_others(server: &Store, conn: &Connection) {
    let queue = Queue::new(conn, "default");
    let first = queue
        .enqueue("fixtures.fail", ("one",))
        .send()
        .await
        .unwrap();
    let second = queue
        .enqueue("fixtures.fail", ("two",))
        .send()
        .await
        .unwrap();
    burst(&server, &["default"]).await;

    let stdout = rqrs(&server, &["requeue", first.id().as_str()]).await;
    assert_eq!(stdout.trim(), "Requeued 1 jobs");
    assert_eq!(queue.job_ids().await.unwrap(), [first.id().clone()]);
    assert_eq!(
        Job::fetch(conn, first.id()).await.unwrap().status(),
        JobStatus::Queued
    );
    assert_eq!(
        FailedJobRegistry::new(conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [second.id().clone()]
    );

    // Not failed (any more), or no such job: refused, and the exit code says so.
    let output = rqrs_output(&server, &["requeue", first.id().as_str(), "no-such-job"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-job"), "{stderr}");
    assert_eq!(queue.count().await.unwrap(), 1);
}
}

#[tokio::test]
async fn empty_deletes_the_waiting_jobs_of_queues() {
    let (server, conn) = setup().await;
    let mut ids = Vec::new();
    for queue in ["default", "default", "low", "high"] {
        let stdout = rqrs(&server, &["enqueue", "fixtures.noop", "-q", queue]).await;
        ids.push(stdout.trim().to_owned());
    }

    let stdout = rqrs(&server, &["empty", "default"]).await;
    assert_eq!(stdout.trim(), "2 jobs removed from default queue");
    assert_eq!(Queue::new(&conn, "low").count().await.unwrap(), 1);

    let stdout = rqrs(&server, &["empty", "--all"]).await;
    assert!(stdout.contains("1 jobs removed from low queue"), "{stdout}");
    assert!(
        stdout.contains("1 jobs removed from high queue"),
        "{stdout}"
    );

    let ids = json!(ids);
    let out = python(
        &server,
        r"
ids = json.loads(sys.argv[1])
print(json.dumps({
    'counts': [Queue(name, connection=redis).count for name in ('default', 'low', 'high')],
    'exists': [Job.exists(id, connection=redis) for id in ids],
}))
",
        &[&ids.to_string()],
    )
    .await;
    assert_eq!(
        out,
        json!({"counts": [0, 0, 0], "exists": [false, false, false, false]})
    );
}

/// The command line and the worker example on a Redis Cluster (three masters), with the
/// hash-tagged key prefix from `--key-prefix` or `RQ_KEY_PREFIX`.
#[tokio::test]
async fn the_cli_and_a_worker_run_on_a_redis_cluster() {
    let cluster = rqrs_test::RedisCluster::start();
    let url = cluster.url();
    let rqrs_cli = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rqrs"));
        command
            .args(["--url", &url])
            .args(args)
            .env("RQ_KEY_PREFIX", rqrs_test::CLUSTER_PREFIX);
        command
    };
    let enqueued = crate::success(
        &crate::output(
            rqrs_cli(&["enqueue", "fixtures.add", ":20", ":22"]),
            "rqrs enqueue",
        )
        .await,
        "rqrs enqueue",
    );
    let id = enqueued.trim().to_owned();
    let mut worker = tokio::process::Command::new(crate::worker_example());
    worker.args([
        "--url",
        &url,
        "--key-prefix",
        rqrs_test::CLUSTER_PREFIX,
        "--burst",
        "default",
    ]);
    crate::success(
        &crate::output(worker, "the burst worker").await,
        "the burst worker",
    );
    let shown = crate::success(
        &crate::output(rqrs_cli(&["job", "show", &id]), "rqrs job show").await,
        "rqrs job show",
    );
    assert!(
        shown.contains("finished") && shown.contains("42"),
        "{shown}"
    );
    let info: serde_json::Value = serde_json::from_str(&crate::success(
        &crate::output(rqrs_cli(&["info", "--json"]), "rqrs info").await,
        "rqrs info",
    ))
    .unwrap();
    assert_eq!(info["queues"][0]["name"], "default", "{info}");

    // Without a hash tag, one line says what to set.
    let mut plain = tokio::process::Command::new(env!("CARGO_BIN_EXE_rqrs"));
    plain
        .args(["--url", &url, "info"])
        .env_remove("RQ_KEY_PREFIX");
    let refused = crate::output(plain, "rqrs info without a prefix").await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("hash tag") && stderr.contains("--key-prefix"),
        "{stderr}"
    );
}

//! Issue 3's flows started from Python RQ 2.12 (dependencies, retries, callbacks named by
//! string) and worked by the rqrs `worker` example, read back by Python; and the reverse for
//! dependencies, which a Python worker must release from rqrs's layout.

use rqrs::{Dependency, Job, JobStatus, Queue};
use serde_json::json;

use crate::{burst, python, setup};

#[tokio::test]
async fn python_dependencies_retries_and_callbacks_work_on_rqrs() {
    let (server, _conn) = setup().await;
    let ids = python(
        &server,
        r"
from rq import Callback, Retry
from rq.job import Dependency
parent = queue.enqueue('fixtures.add', 1, 2)
failing = queue.enqueue('fixtures.fail', 'parent failed')
ids = {
    'parent': parent.id,
    'child': queue.enqueue('fixtures.add', 3, 4, depends_on=parent).id,
    'strict': queue.enqueue('fixtures.noop', depends_on=failing).id,
    'tolerant': queue.enqueue('fixtures.noop',
                              depends_on=Dependency(jobs=[failing], allow_failure=True)).id,
    'retried': queue.enqueue('fixtures.fail', 'again', retry=Retry(max=2)).id,
    'later': queue.enqueue('fixtures.fail', 'later', retry=Retry(max=1, interval=[30])).id,
    'success_cb': queue.enqueue('fixtures.add', 5, 5,
                                on_success=Callback('fixtures.on_success_mark')).id,
    'failure_cb': queue.enqueue('fixtures.fail', 'boom',
                                on_failure=Callback('fixtures.on_failure_mark', timeout=10)).id,
}
print(json.dumps(ids))
",
        &[],
    )
    .await;
    burst(&server, &["default"]).await;
    let out = python(
        &server,
        r"
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry
ids = json.loads(sys.argv[1])
out = {}
for name, job_id in ids.items():
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    result = job.latest_result()
    out[name] = {
        'status': job.get_status(),
        'return_value': job.return_value(),
        'meta': job.get_meta(refresh=True),
        'retries_left': job.retries_left,
        'exc': result.exc_string if result else None,
        'results': [r.type.name for r in job.results()],
    }
out['deferred'] = queue.deferred_job_registry.get_job_ids()
out['scheduled'] = queue.scheduled_job_registry.get_job_ids()
print(json.dumps(out))
",
        &[&ids.to_string()],
    )
    .await;
    assert_eq!(out["parent"]["status"], "finished");
    assert_eq!(out["child"]["status"], "finished", "{out}");
    assert_eq!(out["child"]["return_value"], 7);
    assert_eq!(out["strict"]["status"], "deferred");
    assert_eq!(out["tolerant"]["status"], "finished");
    assert_eq!(out["deferred"], json!([ids["strict"]]));

    assert_eq!(out["retried"]["status"], "failed");
    assert_eq!(out["retried"]["retries_left"], 0);
    assert_eq!(
        out["retried"]["results"],
        json!(["FAILED", "RETRIED", "RETRIED"])
    );
    assert!(out["retried"]["exc"].as_str().unwrap().contains("again"));
    assert_eq!(out["later"]["status"], "scheduled");
    assert_eq!(out["later"]["retries_left"], 0);
    assert_eq!(out["scheduled"], json!([ids["later"]]));

    assert_eq!(out["success_cb"]["status"], "finished");
    assert_eq!(out["success_cb"]["meta"], json!({"callback": "success"}));
    assert_eq!(out["failure_cb"]["status"], "failed");
    assert_eq!(out["failure_cb"]["meta"], json!({"callback": "failure"}));
}

/// A Python module with the functions the Python worker runs.
const PYTHON_FIXTURES: &str = r"
def add(x, y):
    return x + y
";

#[tokio::test]
async fn a_python_worker_releases_dependents_enqueued_by_rqrs() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let parent = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let child = queue
        .enqueue("fixtures.add", (3, 4))
        .depends_on(Dependency::new([parent.id().clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(child.status(), JobStatus::Deferred);
    let modules = tempfile::tempdir().unwrap();
    std::fs::write(modules.path().join("fixtures.py"), PYTHON_FIXTURES).unwrap();
    python(
        &server,
        r"
sys.path.insert(0, sys.argv[1])
from rq import SimpleWorker
SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(burst=True)
print(json.dumps({}))
",
        &[modules.path().to_str().unwrap()],
    )
    .await;
    let child = Job::fetch(&conn, child.id()).await.unwrap();
    assert_eq!(child.status(), JobStatus::Finished);
    assert_eq!(child.return_value().await.unwrap(), Some(json!(7)));
}

#[tokio::test]
async fn a_python_webhook_is_sent_by_the_rqrs_worker() {
    let (server, _conn) = setup().await;
    let (url, sink) = rqrs_test::http_sink(1).await;
    let ids = python(
        &server,
        r"
from rq.webhook import Webhook
job = queue.enqueue('fixtures.add', 1, 2,
                    webhooks=[Webhook(sys.argv[1] + '/hook', 'finished', method='POST')])
print(json.dumps({'id': job.id}))
",
        &[&url],
    )
    .await;
    burst(&server, &["default"]).await;
    let requests = tokio::time::timeout(crate::HANG, sink)
        .await
        .unwrap()
        .unwrap();
    assert!(
        requests[0].starts_with("POST /hook HTTP/1.1"),
        "{requests:?}"
    );
    let body: serde_json::Value =
        serde_json::from_str(requests[0].split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["job_id"], ids["id"]);
    assert_eq!(body["status"], "finished");
}

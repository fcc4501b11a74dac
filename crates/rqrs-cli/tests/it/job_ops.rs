//! Operations on jobs across rqrs and the real Python RQ 2.12.0: unique ids, cancel, groups and
//! positions, each side reading what the other wrote.

use rqrs::{CanceledJobRegistry, Error, Group, Job, JobId, JobStatus, Queue};
use serde_json::json;

use crate::{burst, python, setup, sorted};

#[tokio::test]
async fn unique_ids_are_refused_whichever_side_enqueued_first() {
    let (server, conn) = setup().await;
    let out = python(
        &server,
        r"
from rq.exceptions import DuplicateJobError
queue.enqueue('fixtures.add', 1, 2, job_id='from-python', unique=True)
try:
    queue.enqueue('fixtures.add', 3, 4, job_id='from-python', unique=True)
    second = 'enqueued'
except DuplicateJobError:
    second = 'DuplicateJobError'
print(json.dumps({'second': second, 'args': Job.fetch('from-python', connection=redis,
                  serializer=JSONSerializer).args, 'queued': queue.job_ids}))
",
        &[],
    )
    .await;
    assert_eq!(out["second"], "DuplicateJobError");
    assert_eq!(out["args"], json!([1, 2]));
    assert_eq!(out["queued"], json!(["from-python"]));

    let queue = Queue::new(&conn, "default");
    let refused = queue
        .enqueue("fixtures.add", (5, 6))
        .job_id("from-python".parse().unwrap())
        .unique(true)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::DuplicateJob(_)), "{refused}");
    queue
        .enqueue("fixtures.add", (7, 8))
        .job_id("from-rqrs".parse().unwrap())
        .unique(true)
        .send()
        .await
        .unwrap();
    let out = python(
        &server,
        r"
from rq.exceptions import DuplicateJobError
try:
    queue.enqueue('fixtures.add', 9, 9, job_id='from-rqrs', unique=True)
    print(json.dumps('enqueued'))
except DuplicateJobError:
    print(json.dumps('DuplicateJobError'))
",
        &[],
    )
    .await;
    assert_eq!(out, "DuplicateJobError");
    assert_eq!(
        queue.job_ids().await.unwrap(),
        [
            "from-python".parse::<JobId>().unwrap(),
            "from-rqrs".parse().unwrap()
        ]
    );
}

#[tokio::test]
async fn a_job_canceled_by_rqrs_is_canceled_for_python() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let mut job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let other = queue.enqueue("fixtures.add", (3, 4)).send().await.unwrap();
    job.cancel().await.unwrap();
    let out = python(
        &server,
        r"
job = Job.fetch(sys.argv[1], connection=redis, serializer=JSONSerializer)
try:
    job.cancel()
    again = 'canceled again'
except Exception as error:
    again = type(error).__name__
print(json.dumps({
    'status': job.get_status().value,
    'is_canceled': job.is_canceled,
    'canceled': queue.canceled_job_registry.get_job_ids(),
    'queued': queue.job_ids,
    'again': again,
}))
",
        &[job.id().as_str()],
    )
    .await;
    assert_eq!(out["status"], "canceled");
    assert_eq!(out["is_canceled"], true);
    assert_eq!(out["canceled"], json!([job.id().as_str()]));
    assert_eq!(out["queued"], json!([other.id().as_str()]));
    assert_eq!(out["again"], "InvalidJobOperation", "{out}");
}

#[tokio::test]
async fn a_job_canceled_by_python_is_in_rqrs_canceled_registry_and_never_runs() {
    let (server, conn) = setup().await;
    let ids = python(
        &server,
        r"
from rq.job import cancel_job
canceled = queue.enqueue('fixtures.add', 1, 2)
deferred = queue.enqueue('fixtures.add', 5, 6, depends_on=canceled)
kept = queue.enqueue('fixtures.add', 3, 4)
cancel_job(canceled.id, connection=redis, serializer=JSONSerializer)
print(json.dumps({'canceled': canceled.id, 'deferred': deferred.id, 'kept': kept.id}))
",
        &[],
    )
    .await;
    let id = |name: &str| -> JobId { ids[name].as_str().unwrap().parse().unwrap() };
    let queue = Queue::new(&conn, "default");
    assert_eq!(queue.job_ids().await.unwrap(), [id("kept")]);
    assert_eq!(
        CanceledJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap(),
        [id("canceled")]
    );
    let mut canceled = Job::fetch(&conn, &id("canceled")).await.unwrap();
    assert_eq!(canceled.status(), JobStatus::Canceled);
    assert!(matches!(
        canceled.cancel().await,
        Err(Error::AlreadyCanceled(_))
    ));

    burst(&server, &["default"]).await;
    let canceled = Job::fetch(&conn, &id("canceled")).await.unwrap();
    assert_eq!(canceled.status(), JobStatus::Canceled);
    assert!(canceled.results().await.unwrap().is_empty(), "never ran");
    let deferred = Job::fetch(&conn, &id("deferred")).await.unwrap();
    assert_eq!(deferred.status(), JobStatus::Deferred, "as RQ leaves it");
    let kept = Job::fetch(&conn, &id("kept")).await.unwrap();
    assert_eq!(kept.return_value().await.unwrap(), Some(json!(7)));
}

#[tokio::test]
async fn groups_made_on_either_side_are_read_and_run_on_the_other() {
    let (server, conn) = setup().await;
    let made = python(
        &server,
        r"
from rq.group import Group
group = Group.create(connection=redis, name='g')
jobs = group.enqueue_many(queue, [Queue.prepare_data('fixtures.add', (1, 2)),
                                  Queue.prepare_data('fixtures.add', (3, 4))])
print(json.dumps(sorted(job.id for job in jobs)))
",
        &[],
    )
    .await;
    let group = Group::fetch(&conn, "g").await.unwrap();
    let ids: Vec<String> = group
        .job_ids()
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, sorted(&made));
    let jobs = group.jobs().await.unwrap();
    assert!(jobs.iter().all(|job| job.group_id() == Some("g")));
    assert_eq!(Group::all(&conn).await.unwrap().len(), 1);

    // rqrs makes a group of its own; Python lists both and reads its jobs.
    let queue = Queue::new(&conn, "default");
    let ours = Group::create(&conn, Some("from-rqrs".to_owned())).unwrap();
    let our_jobs = ours
        .enqueue_many(&queue, [queue.enqueue("fixtures.add", (5, 6))])
        .await
        .unwrap();
    burst(&server, &["default"]).await;

    let out = python(
        &server,
        r"
from rq.group import Group
out = {'groups': sorted(group.name for group in Group.all(connection=redis))}
for name in ('g', 'from-rqrs'):
    # Group.get_jobs reads with the default serializer: only ids and statuses are safe.
    ids = [job.id for job in Group.fetch(name, connection=redis).get_jobs()]
    out[name] = sorted(
        [job.get_status().value, job.group_id, job.return_value()]
        for job in Job.fetch_many(ids, connection=redis, serializer=JSONSerializer))
print(json.dumps(out))
",
        &[],
    )
    .await;
    assert_eq!(out["groups"], json!(["from-rqrs", "g"]));
    assert_eq!(
        out["g"],
        json!([["finished", "g", 3], ["finished", "g", 7]]),
        "run by the rqrs worker"
    );
    assert_eq!(out["from-rqrs"], json!([["finished", "from-rqrs", 11]]));
    assert_eq!(our_jobs[0].group_id(), Some("from-rqrs"));
}

#[tokio::test]
async fn positions_agree_with_python() {
    let (server, conn) = setup().await;
    let queue = Queue::new(&conn, "default");
    let mut jobs = Vec::new();
    for at_front in [false, false, true] {
        jobs.push(
            queue
                .enqueue("fixtures.noop", ())
                .at_front(at_front)
                .send()
                .await
                .unwrap(),
        );
    }
    let python_id = python(
        &server,
        "print(json.dumps(queue.enqueue('fixtures.noop').id))",
        &[],
    )
    .await;
    let python_job = Job::fetch(&conn, &python_id.as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let deferred = queue
        .enqueue("fixtures.noop", ())
        .depends_on(rqrs::Dependency::new([jobs[0].id().clone()]))
        .send()
        .await
        .unwrap();
    jobs.push(python_job);
    jobs.push(deferred);

    let ids: Vec<&str> = jobs.iter().map(|job| job.id().as_str()).collect();
    let out = python(
        &server,
        r"
print(json.dumps([Job.fetch(id, connection=redis, serializer=JSONSerializer).get_position()
                  for id in json.loads(sys.argv[1])]))
",
        &[&json!(ids).to_string()],
    )
    .await;
    let mut ours = Vec::new();
    for job in &jobs {
        ours.push(job.position().await.unwrap());
    }
    assert_eq!(ours, [Some(1), Some(2), Some(0), Some(3), None]);
    assert_eq!(out, json!(ours));
}

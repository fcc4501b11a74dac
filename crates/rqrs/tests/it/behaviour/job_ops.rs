//! Operations on jobs from outside their runs: results history, fetch_many, position, cancel,
//! delete, requeue, and groups.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rqrs::{
    CanceledJobRegistry, DeferredJobRegistry, Dependency, Error, FailedJobRegistry, Functions,
    Group, Job, JobContext, JobError, JobId, JobStatus, Queue, ResultType, ScheduledJobRegistry,
    StartedJobRegistry, Worker,
};
use rqrs_test::wait_for;

use crate::work;

const HANG: Duration = Duration::from_secs(20);

/// Enqueues `fixtures.fail` and runs it, so that the job lands in the failed registry.
async fn failed_job(conn: &rqrs::Connection, queue: &Queue) -> Job {
    let job = queue
        .enqueue("fixtures.fail", ("no",))
        .send()
        .await
        .unwrap();
    work(conn, &[queue.name()], 1, Functions::new()).await;
    let job = Job::fetch(conn, job.id()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Failed);
    job
}

on_every_backend! {
    async fn results_keep_every_run_newest_first(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let calls = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let flaky = Functions::new().register("flaky", move |_ctx: JobContext, (): ()| {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if call == 0 {
                    Err(JobError::new("first run fails"))
                } else {
                    Ok(call)
                }
            }
        });
        let mut job = queue.enqueue("flaky", ()).send().await.unwrap();
        assert!(job.results().await.unwrap().is_empty(), "no run yet");
        work(&conn, &["default"], 1, flaky.clone()).await;
        job.requeue(false).await.unwrap();
        work(&conn, &["default"], 1, flaky).await;

        let results = job.results().await.unwrap();
        let types: Vec<ResultType> = results.iter().map(|r| r.result_type()).collect();
        assert_eq!(types, [ResultType::Successful, ResultType::Failed]);
        assert_eq!(results[0].return_value(), Some(&serde_json::json!(1)));
        assert_eq!(results[1].exc_string(), Some("first run fails"));
        assert!(results[0].created_at() >= results[1].created_at());
        assert_eq!(
            job.latest_result().await.unwrap().as_ref(),
            Some(&results[0])
        );
    }
}

on_every_backend! {
    async fn fetch_many_reads_jobs_in_order_with_none_for_missing_ones(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let first = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
        let second = queue.enqueue("fixtures.add", (3, 4)).send().await.unwrap();
        let missing: JobId = "never-enqueued".parse().unwrap();
        let ids = [first.id().clone(), missing, second.id().clone()];

        let jobs = Job::fetch_many(&conn, &ids).await.unwrap();
        let read: Vec<Option<&JobId>> = jobs.iter().map(|job| job.as_ref().map(Job::id)).collect();
        assert_eq!(read, [Some(&ids[0]), None, Some(&ids[2])]);
        assert_eq!(
            jobs[2].as_ref().unwrap().args(),
            [serde_json::json!(3), serde_json::json!(4)]
        );
        assert!(Job::fetch_many(&conn, &[]).await.unwrap().is_empty());
    }
}

on_every_backend! {
    async fn position_is_the_place_on_the_queue(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let first = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        let second = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        assert_eq!(first.position().await.unwrap(), Some(0));
        assert_eq!(second.position().await.unwrap(), Some(1));
        let urgent = queue
            .enqueue("fixtures.noop", ())
            .at_front(true)
            .send()
            .await
            .unwrap();
        assert_eq!(urgent.position().await.unwrap(), Some(0));
        assert_eq!(second.position().await.unwrap(), Some(2));
        assert_eq!(queue.job_position(second.id()).await.unwrap(), Some(2));

        let deferred = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([first.id().clone()]))
            .send()
            .await
            .unwrap();
        assert_eq!(deferred.position().await.unwrap(), None, "not on the queue");
        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(first.position().await.unwrap(), None, "ran");
    }
}

on_every_backend! {
    async fn cancel_moves_a_job_from_wherever_it_waits_to_the_canceled_registry(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let parent = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        let mut queued = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        let mut deferred = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([parent.id().clone()]))
            .send()
            .await
            .unwrap();
        let mut scheduled = queue
            .enqueue("fixtures.noop", ())
            .delay(Duration::from_secs(600))
            .send()
            .await
            .unwrap();
        assert_eq!(deferred.status(), JobStatus::Deferred);
        assert_eq!(scheduled.status(), JobStatus::Scheduled);

        queued.cancel().await.unwrap();
        deferred.cancel().await.unwrap();
        scheduled.cancel().await.unwrap();
        assert_eq!(queued.status(), JobStatus::Canceled);
        assert_eq!(queue.job_ids().await.unwrap(), [parent.id().clone()]);
        let deferred_registry = DeferredJobRegistry::new(&conn, "default");
        assert_eq!(deferred_registry.count().await.unwrap(), 0);
        let scheduled_registry = ScheduledJobRegistry::new(&conn, "default");
        assert_eq!(scheduled_registry.count().await.unwrap(), 0);

        // A failed job is canceled out of the failed registry.
        let mut failed = failed_job(&conn, &Queue::new(&conn, "other")).await;
        failed.cancel().await.unwrap();
        let failed_registry = FailedJobRegistry::new(&conn, "other");
        assert_eq!(failed_registry.count().await.unwrap(), 0);
        assert_eq!(
            CanceledJobRegistry::new(&conn, "other")
                .job_ids()
                .await
                .unwrap(),
            [failed.id().clone()]
        );

        let mut canceled = CanceledJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap();
        canceled.sort();
        let mut expected = vec![
            queued.id().clone(),
            deferred.id().clone(),
            scheduled.id().clone(),
        ];
        expected.sort();
        assert_eq!(canceled, expected);
        for id in &expected {
            assert_eq!(
                Job::fetch(&conn, id).await.unwrap().status(),
                JobStatus::Canceled
            );
        }

        // The dependents of a canceled job stay deferred (RQ's default); the parent still runs.
        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(
            Job::fetch(&conn, parent.id()).await.unwrap().status(),
            JobStatus::Finished
        );
        assert_eq!(
            Job::fetch(&conn, deferred.id()).await.unwrap().status(),
            JobStatus::Canceled
        );
    }
}

on_every_backend! {
    async fn cancel_twice_is_refused(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let mut job = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        let mut stale = job.clone();
        job.cancel().await.unwrap();
        let again = job.cancel().await.unwrap_err();
        assert!(
            matches!(again, Error::AlreadyCanceled(ref id) if id == job.id()),
            "{again}"
        );
        // The stored status decides, not the one this value last read.
        assert_eq!(stale.status(), JobStatus::Queued);
        assert!(matches!(
            stale.cancel().await,
            Err(Error::AlreadyCanceled(_))
        ));
        job.delete(false).await.unwrap();
        assert!(job.cancel().await.unwrap_err().is_no_such_job());
    }
}

/// A function that runs until the test lets it through its gate (one permit per run).
fn gated(gate: &Arc<tokio::sync::Semaphore>) -> Functions {
    let gate = Arc::clone(gate);
    Functions::new().register("gated", move |_ctx: JobContext, (): ()| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire()
                .await
                .map_err(|_| JobError::new("the gate closed"))?
                .forget();
            Ok::<_, JobError>("ran")
        }
    })
}

on_every_backend! {
    async fn a_running_job_canceled_or_deleted_keeps_running_but_records_nothing(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let mut canceled = queue.enqueue("gated", ()).send().await.unwrap();
        let deleted = queue.enqueue("gated", ()).send().await.unwrap();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let worker = Worker::builder(&conn)
            .queues(["default"])
            .functions(gated(&gate))
            .concurrency(2)
            .burst(true)
            .build()
            .unwrap();
        let task = tokio::spawn(worker.work());
        let started = StartedJobRegistry::new(&conn, "default");
        wait_for("both jobs to start", HANG, || async {
            (started.count().await.unwrap() == 2).then_some(())
        })
        .await;

        canceled.cancel().await.unwrap();
        deleted.delete(false).await.unwrap();
        assert_eq!(
            started.count().await.unwrap(),
            0,
            "both left the wip registry"
        );

        gate.add_permits(2);
        tokio::time::timeout(HANG, task)
            .await
            .expect("the burst ends")
            .unwrap()
            .unwrap();
        let job = Job::fetch(&conn, canceled.id()).await.unwrap();
        assert_eq!(
            job.status(),
            JobStatus::Canceled,
            "the late outcome is refused"
        );
        assert!(job.results().await.unwrap().is_empty());
        assert!(Job::fetch(&conn, deleted.id()).await.unwrap_err().is_no_such_job());
        assert!(deleted.results().await.unwrap().is_empty(), "no late result either");
    }
}

on_every_backend! {
    async fn delete_removes_the_job_everywhere_and_keeps_its_dependents(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let group = Group::create(&conn, Some("batch".to_owned())).unwrap();
        let jobs = group
            .enqueue_many(&queue, [queue.enqueue("fixtures.fail", ("no",))])
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let job = Job::fetch(&conn, jobs[0].id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Failed);
        let dependent = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([job.id().clone()]))
            .send()
            .await
            .unwrap();
        assert_eq!(dependent.status(), JobStatus::Deferred);

        job.delete(false).await.unwrap();
        assert!(Job::fetch(&conn, job.id()).await.unwrap_err().is_no_such_job());
        assert!(job.results().await.unwrap().is_empty());
        let failed = FailedJobRegistry::new(&conn, "default");
        assert_eq!(failed.count().await.unwrap(), 0);
        assert!(matches!(
            Group::fetch(&conn, "batch").await,
            Err(Error::NoSuchGroup(_))
        ));
        let dependent = Job::fetch(&conn, dependent.id()).await.unwrap();
        assert_eq!(dependent.status(), JobStatus::Deferred, "as in RQ");
        assert_eq!(dependent.dependency_ids(), [job.id().clone()]);
        // Deleting a job that is gone clears what is left of it, and fails nothing.
        job.delete(false).await.unwrap();
    }
}

on_every_backend! {
    async fn delete_with_dependents_deletes_the_whole_chain(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let other = Queue::new(&conn, "other");
        let parent = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        let child = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([parent.id().clone()]))
            .send()
            .await
            .unwrap();
        let grandchild = other
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([child.id().clone()]))
            .send()
            .await
            .unwrap();
        let bystander = queue.enqueue("fixtures.noop", ()).send().await.unwrap();

        parent.delete(true).await.unwrap();
        for job in [&parent, &child, &grandchild] {
            assert!(
                Job::fetch(&conn, job.id())
                    .await
                    .unwrap_err()
                    .is_no_such_job()
            );
        }
        assert_eq!(queue.job_ids().await.unwrap(), [bystander.id().clone()]);
        for name in ["default", "other"] {
            assert_eq!(
                DeferredJobRegistry::new(&conn, name).count().await.unwrap(),
                0
            );
        }
    }
}

on_every_backend! {
    async fn requeue_puts_a_failed_job_back_at_the_tail_or_the_head(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let mut first = failed_job(&conn, &queue).await;
        let mut second = failed_job(&conn, &queue).await;
        let waiting = queue.enqueue("fixtures.noop", ()).send().await.unwrap();

        first.requeue(false).await.unwrap();
        second.requeue(true).await.unwrap();
        assert_eq!(first.status(), JobStatus::Queued);
        assert_eq!(
            queue.job_ids().await.unwrap(),
            [
                second.id().clone(),
                waiting.id().clone(),
                first.id().clone()
            ]
        );
        assert_eq!(
            Job::fetch(&conn, second.id()).await.unwrap().status(),
            JobStatus::Queued
        );
        assert_eq!(
            FailedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            0
        );
        let again = second.requeue(true).await.unwrap_err();
        assert!(matches!(again, Error::NotInRegistry { .. }), "{again}");
    }
}

on_every_backend! {
    async fn groups_track_the_jobs_enqueued_in_them(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let named = Group::create(&conn, Some("reports".to_owned())).unwrap();
        let random = Group::create(&conn, None).unwrap();
        assert_eq!(random.name().len(), 32, "uuid4 hex, as RQ names groups");
        assert!(Group::create(&conn, Some(String::new())).is_err());

        let jobs = named
            .enqueue_many(
                &queue,
                [
                    queue.enqueue("fixtures.add", (1, 2)),
                    queue
                        .enqueue("fixtures.add", (3, 4))
                        .delay(Duration::from_secs(600)),
                ],
            )
            .await
            .unwrap();
        random
            .enqueue_many(&queue, [queue.enqueue("fixtures.noop", ())])
            .await
            .unwrap();
        assert!(jobs.iter().all(|job| job.group_id() == Some("reports")));
        let mut ids: Vec<JobId> = jobs.iter().map(|job| job.id().clone()).collect();
        ids.sort();
        let stored = Job::fetch(&conn, &ids[0]).await.unwrap();
        assert_eq!(stored.group_id(), Some("reports"));
        let plain = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        assert_eq!(
            Job::fetch(&conn, plain.id()).await.unwrap().group_id(),
            None
        );

        let mut names: Vec<String> = Group::all(&conn)
            .await
            .unwrap()
            .iter()
            .map(|group| group.name().to_owned())
            .collect();
        names.sort();
        let mut expected = vec!["reports".to_owned(), random.name().to_owned()];
        expected.sort();
        assert_eq!(names, expected);
        let fetched = Group::fetch(&conn, "reports").await.unwrap();
        assert_eq!(fetched.job_ids().await.unwrap(), ids);
        let read: Vec<JobId> = fetched
            .jobs()
            .await
            .unwrap()
            .iter()
            .map(|job| job.id().clone())
            .collect();
        assert_eq!(read, ids);
        assert!(matches!(
            Group::fetch(&conn, "nope").await,
            Err(Error::NoSuchGroup(ref name)) if name == "nope"
        ));

        assert!(fetched.delete_job(&ids[0]).await.unwrap());
        assert!(!fetched.delete_job(&ids[0]).await.unwrap());
        assert_eq!(fetched.job_ids().await.unwrap(), [ids[1].clone()]);
        assert!(
            Job::fetch(&conn, &ids[0]).await.is_ok(),
            "only left the group"
        );

        // A job that expires leaves its group when the group is read; a group with no job left
        // leaves the list of groups.
        rqrs::testing::expire_job(&conn, &ids[1]).await.unwrap();
        assert_eq!(fetched.job_ids().await.unwrap(), Vec::<JobId>::new());
        let names: Vec<String> = Group::all(&conn)
            .await
            .unwrap()
            .iter()
            .map(|group| group.name().to_owned())
            .collect();
        assert_eq!(names, [random.name()]);
    }
}

on_every_backend! {
    async fn maintenance_prunes_expired_jobs_and_empty_groups(store: &Store) {
        let conn = store.connect().await;
        let left = crate::groups_with_expired_jobs(&conn).await;
        let kept = Group::fetch(&conn, "kept").await.unwrap();

        // A worker cleans at start-up; it runs on a queue with no jobs, so the jobs stay as they are.
        let worker = Worker::builder(&conn)
            .queues(["elsewhere"])
            .functions(Functions::new())
            .build()
            .unwrap();
        let stop = worker.shutdown_handle();
        let task = tokio::spawn(worker.work());
        // A group whose jobs are all gone ceases to exist once maintenance pruned it.
        wait_for("the groups to be pruned", HANG, || async {
            let groups = Group::all(&conn).await.unwrap();
            let names: Vec<&str> = groups.iter().map(Group::name).collect();
            (names == ["kept"]).then_some(())
        })
        .await;
        stop.warm();
        tokio::time::timeout(HANG, task)
            .await
            .expect("the worker stops")
            .unwrap()
            .unwrap();
        assert_eq!(kept.job_ids().await.unwrap(), [left.id().clone()]);
    }
}

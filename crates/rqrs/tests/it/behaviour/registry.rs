//! Registries: requeue from failed, removal, moving a job to failed by hand, and cleanup of
//! abandoned runs and expired entries.

use std::time::Duration;

use crate::work;
use chrono::{TimeDelta, Utc};
use rqrs::{
    Error, FailedJobRegistry, FinishedJobRegistry, Functions, Job, JobStatus, Queue, ResultType,
    StartedJobRegistry,
};

async fn failing_jobs(queue: &Queue, count: usize) -> Vec<rqrs::JobId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(
            queue
                .enqueue("fixtures.fail", ("nope",))
                .send()
                .await
                .unwrap()
                .id()
                .clone(),
        );
    }
    ids
}

on_every_backend! {
    async fn failed_jobs_can_be_requeued_one_or_all(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let ids: Vec<_> = failing_jobs(&queue, 3).await;
        work(&conn, &["default"], 1, Functions::new()).await;
        let failed = FailedJobRegistry::new(&conn, "default");
        assert_eq!(failed.count().await.unwrap(), 3);

        failed.requeue(&ids[0]).await.unwrap();
        let job = Job::fetch(&conn, &ids[0]).await.unwrap();
        assert_eq!(job.status(), JobStatus::Queued);
        assert_eq!(job.started_at(), None);
        assert_eq!(
            job.exc_info().await.unwrap().as_deref(),
            Some("nope"),
            "the last failure stays readable"
        );
        assert_eq!(queue.job_ids().await.unwrap(), [ids[0].clone()]);
        let again = failed.requeue(&ids[0]).await.unwrap_err();
        assert!(matches!(again, Error::NotInRegistry { .. }), "{again}");

        assert_eq!(failed.requeue_all().await.unwrap(), 2);
        assert_eq!(failed.count().await.unwrap(), 0);
        assert_eq!(queue.count().await.unwrap(), 3);
    }
}

on_every_backend! {
    async fn remove_can_delete_the_job(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let ids = failing_jobs(&queue, 2).await;
        let done = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let deleted = Job::fetch(&conn, &ids[1]).await.unwrap();
        assert_eq!(deleted.results().await.unwrap().len(), 1);
        let failed = FailedJobRegistry::new(&conn, "default");
        assert!(failed.remove(&ids[0], false).await.unwrap());
        assert!(
            Job::fetch(&conn, &ids[0]).await.is_ok(),
            "kept when not asked to delete"
        );
        assert!(failed.remove(&ids[1], true).await.unwrap());
        assert!(
            Job::fetch(&conn, &ids[1])
                .await
                .unwrap_err()
                .is_no_such_job()
        );
        assert!(deleted.results().await.unwrap().is_empty(), "its results went too");
        assert!(!failed.remove(&ids[1], true).await.unwrap());
        assert!(
            FinishedJobRegistry::new(&conn, "default")
                .remove(done.id(), true)
                .await
                .unwrap()
        );
    }
}

on_every_backend! {
    async fn a_queued_job_can_be_moved_to_failed_by_hand(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
        let other = Queue::new(&conn, "other");
        assert!(
            FailedJobRegistry::new(&conn, "other")
                .add(&job, "x")
                .await
                .is_err(),
            "wrong queue"
        );
        FailedJobRegistry::new(&conn, "default")
            .add(&job, "quarantined: bad customer")
            .await
            .unwrap();
        assert_eq!(queue.count().await.unwrap(), 0);
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Failed);
        assert_eq!(
            job.exc_info().await.unwrap().as_deref(),
            Some("quarantined: bad customer")
        );
        let result = job.latest_result().await.unwrap().unwrap();
        assert_eq!(result.execution_id(), None, "it did not run");
        assert_eq!(other.count().await.unwrap(), 0);
    }
}

on_every_backend! {
    async fn started_registry_cleanup_fails_abandoned_runs(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
        // A run whose deadline passed long ago, as a dead worker leaves it.
        let past = Utc::now() - TimeDelta::hours(1);
        rqrs::testing::abandon_next_run(&conn, "default", past).await.unwrap();
        let started = StartedJobRegistry::new(&conn, "default");
        assert_eq!(started.job_ids().await.unwrap(), [job.id().clone()]);
        assert_eq!(started.cleanup().await.unwrap(), 1);
        assert_eq!(started.count().await.unwrap(), 0);
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Failed);
        let result = job.latest_result().await.unwrap().unwrap();
        assert!(
            result.exc_string().unwrap().starts_with(
                "Moved to FailedJobRegistry, due to AbandonedJobError, at "
            ),
            "{result:?}"
        );
        assert_eq!(result.worker_name(), None, "no worker recorded it");
        assert_eq!(
            result.execution_id(),
            None,
            "RQ writes no execution for abandoned runs"
        );
        assert_eq!(
            FailedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            1
        );
    }
}

on_every_backend! {
    async fn finished_registry_cleanup_drops_expired_entries(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let brief = queue
            .enqueue("fixtures.noop", ())
            .result_ttl(Duration::from_secs(1))
            .send()
            .await
            .unwrap();
        let kept = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let finished = FinishedJobRegistry::new(&conn, "default");
        assert_eq!(finished.count().await.unwrap(), 2);
        let cleaned = rqrs_test::wait_for(
            "the brief result to expire",
            Duration::from_secs(10),
            || async { Some(finished.cleanup().await.unwrap()).filter(|cleaned| *cleaned > 0) },
        )
        .await;
        assert_eq!(cleaned, 1);
        assert_eq!(finished.job_ids().await.unwrap(), [kept.id().clone()]);
        // The store counts the entry's time in whole seconds, the job's own expiry in finer
        // ones: the job may outlive its entry by less than a second.
        rqrs_test::wait_for("the brief job to expire", Duration::from_secs(5), || async {
            Job::fetch(&conn, brief.id()).await.err().filter(Error::is_no_such_job)
        })
        .await;
    }
}

on_every_backend! {
    async fn cleanup_leaves_live_runs_alone(store: &Store) {
        let conn = store.connect().await;
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.add", (1, 2))
            .send()
            .await
            .unwrap();
        let future = Utc::now() + TimeDelta::hours(1);
        rqrs::testing::abandon_next_run(&conn, "default", future).await.unwrap();
        let started = StartedJobRegistry::new(&conn, "default");
        assert_eq!(started.cleanup().await.unwrap(), 0);
        assert_eq!(started.job_ids().await.unwrap(), [job.id().clone()]);
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Started
        );
    }
}

on_every_backend! {
    async fn failure_ttl_zero_deletes_the_job_and_its_results(store: &Store) {
        let conn = store.connect().await;
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.fail", ("x",))
            .failure_ttl(rqrs::Ttl::NOT_KEPT)
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        assert!(Job::fetch(&conn, job.id()).await.unwrap_err().is_no_such_job());
        assert!(job.results().await.unwrap().is_empty());
    }
}

on_every_backend! {
    async fn an_abandoned_run_with_retries_left_is_requeued(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("fixtures.add", (1, 2))
            .retry(rqrs::Retry::new(2))
            .send()
            .await
            .unwrap();
        let past = Utc::now() - TimeDelta::hours(1);
        rqrs::testing::abandon_next_run(&conn, "default", past).await.unwrap();
        assert_eq!(
            StartedJobRegistry::new(&conn, "default")
                .cleanup()
                .await
                .unwrap(),
            1
        );
        let requeued = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(requeued.status(), JobStatus::Queued);
        assert_eq!(requeued.retries_left(), 1);
        assert_eq!(queue.job_ids().await.unwrap(), [job.id().clone()]);
        let result = requeued.latest_result().await.unwrap().unwrap();
        assert_eq!(result.result_type(), ResultType::Retried);
        assert!(result.exc_string().unwrap().contains("AbandonedJobError"));
        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Finished
        );
    }
}

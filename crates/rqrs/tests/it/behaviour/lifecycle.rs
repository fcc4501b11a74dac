//! What happens around runs: dependencies, retries, callbacks, repeats, test mode, webhooks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rqrs::{
    Callback, DeferredJobRegistry, Dependency, FailedJobRegistry, Functions, Job, JobContext,
    JobError, JobStatus, Queue, Repeat, ResultType, Retry, ScheduledJobRegistry,
};
use serde_json::json;

use crate::work;

on_every_backend! {
    async fn dependents_are_enqueued_when_their_last_parent_finishes(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let first = queue.enqueue("fixtures.add", (1, 1)).send().await.unwrap();
        let second = queue.enqueue("fixtures.add", (2, 2)).send().await.unwrap();
        let child = queue
            .enqueue("fixtures.add", (3, 3))
            .depends_on(Dependency::new([first.id().clone(), second.id().clone()]))
            .send()
            .await
            .unwrap();
        let other = Queue::new(&conn, "other");
        let elsewhere = other
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([first.id().clone()]).enqueue_at_front(true))
            .send()
            .await
            .unwrap();
        other.enqueue("fixtures.noop", ()).send().await.unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        // The child ran in the same burst, after both parents; the other queue's dependent went to
        // the head of its own queue.
        assert_eq!(
            Job::fetch(&conn, child.id())
                .await
                .unwrap()
                .return_value()
                .await
                .unwrap(),
            Some(json!(6))
        );
        assert_eq!(
            DeferredJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            0
        );
        assert_eq!(other.job_ids().await.unwrap()[0], *elsewhere.id());
        assert_eq!(
            Job::fetch(&conn, elsewhere.id()).await.unwrap().status(),
            JobStatus::Queued
        );
    }
}

on_every_backend! {
    async fn a_failed_parent_leaves_dependents_deferred_unless_they_allow_failure(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let parent = queue
            .enqueue("fixtures.fail", ("no",))
            .send()
            .await
            .unwrap();
        let strict = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([parent.id().clone()]))
            .send()
            .await
            .unwrap();
        let tolerant = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([parent.id().clone()]).allow_failure(true))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(
            Job::fetch(&conn, strict.id()).await.unwrap().status(),
            JobStatus::Deferred
        );
        assert_eq!(
            Job::fetch(&conn, tolerant.id()).await.unwrap().status(),
            JobStatus::Finished
        );
        assert_eq!(
            DeferredJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [strict.id().clone()]
        );
        // A dependent enqueued after its parent failed, allowing failure, is queued at once.
        let late = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([parent.id().clone()]).allow_failure(true))
            .send()
            .await
            .unwrap();
        assert_eq!(late.status(), JobStatus::Queued);
    }
}

on_every_backend! {
    async fn retries_run_the_job_again_then_fail_it(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let runs = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&runs);
        let flaky = Functions::new().register(
            "tests.flaky",
            move |_ctx: JobContext, (succeed_on,): (u32,)| {
                let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if run >= succeed_on {
                        Ok(run)
                    } else {
                        Err(JobError::new(format!("attempt {run} failed")))
                    }
                }
            },
        );
        let job = queue
            .enqueue("tests.flaky", (3,))
            .retry(Retry::new(5))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, flaky.clone()).await;
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        assert_eq!(job.return_value().await.unwrap(), Some(json!(3)));
        assert_eq!(job.retries_left(), 3);
        let mut types: Vec<ResultType> = job
            .results()
            .await
            .unwrap()
            .iter()
            .map(|result| result.result_type())
            .collect();
        types.reverse();
        assert_eq!(
            types,
            [ResultType::Retried, ResultType::Retried, ResultType::Successful],
            "each retried failure is recorded as RETRIED"
        );

        runs.store(0, Ordering::SeqCst);
        let exhausted = queue
            .enqueue("tests.flaky", (10,))
            .retry(Retry::new(2))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, flaky).await;
        let exhausted = Job::fetch(&conn, exhausted.id()).await.unwrap();
        assert_eq!(exhausted.status(), JobStatus::Failed);
        assert_eq!(exhausted.retries_left(), 0);
        assert_eq!(
            exhausted.exc_info().await.unwrap().as_deref(),
            Some("attempt 3 failed")
        );
        assert_eq!(
            FailedJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [exhausted.id().clone()]
        );
    }
}

on_every_backend! {
    async fn retries_with_an_interval_wait_in_the_scheduled_registry(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("fixtures.fail", ("later",))
            .retry(Retry::new(2).intervals([30, 60]))
            .send()
            .await
            .unwrap();
        let aborted = Functions::new().register("tests.abort", |_ctx: JobContext, (): ()| async {
            Err::<(), _>(JobError::abort("do not retry"))
        });
        let snoozed = Functions::new().register("tests.snooze", |_ctx: JobContext, (): ()| async {
            Err::<(), _>(JobError::retry_after("busy", Duration::from_secs(120)))
        });
        let abort = queue
            .enqueue("tests.abort", ())
            .retry(Retry::new(3))
            .send()
            .await
            .unwrap();
        let snooze = queue
            .enqueue("tests.snooze", ())
            .retry(Retry::new(1).interval(5))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, aborted.merge(snoozed)).await;
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Scheduled
        );
        assert_eq!(Job::fetch(&conn, job.id()).await.unwrap().retries_left(), 1);
        let snooze = Job::fetch(&conn, snooze.id()).await.unwrap();
        assert_eq!(snooze.status(), JobStatus::Scheduled, "it asked to run again later");
        assert_eq!(snooze.retries_left(), 0);
        assert_eq!(
            ScheduledJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            2
        );
        let abort = Job::fetch(&conn, abort.id()).await.unwrap();
        assert_eq!(abort.status(), JobStatus::Failed, "an abort is not retried");
        assert_eq!(abort.retries_left(), 3);
    }
}

on_every_backend! {
    async fn callbacks_run_after_success_and_failure(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let good = queue
            .enqueue("fixtures.add", (1, 2))
            .on_success(Callback::new("fixtures.on_success_mark"))
            .send()
            .await
            .unwrap();
        let bad = queue
            .enqueue("fixtures.fail", ("x",))
            .on_failure(Callback::new("fixtures.on_failure_mark").timeout(Duration::from_secs(5)))
            .send()
            .await
            .unwrap();
        let broken = queue
            .enqueue("fixtures.add", (1, 2))
            .on_success(Callback::new("fixtures.nothing"))
            .send()
            .await
            .unwrap();
        let broken_failure = queue
            .enqueue("fixtures.fail", ("first",))
            .on_failure(Callback::new("fixtures.fail"))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;

        let good = Job::fetch(&conn, good.id()).await.unwrap();
        assert_eq!(good.status(), JobStatus::Finished);
        assert_eq!(good.meta().get("callback"), Some(&json!("success")));
        let bad = Job::fetch(&conn, bad.id()).await.unwrap();
        assert_eq!(bad.status(), JobStatus::Failed);
        assert_eq!(bad.meta().get("callback"), Some(&json!("failure")));
        // A success callback that fails fails the job (as RQ); a failure callback's own error is
        // recorded with the job's.
        let broken = Job::fetch(&conn, broken.id()).await.unwrap();
        assert_eq!(broken.status(), JobStatus::Failed);
        assert!(
            broken
                .exc_info()
                .await
                .unwrap()
                .unwrap()
                .contains("callback \"fixtures.nothing\" is not a function")
        );
        let text = Job::fetch(&conn, broken_failure.id())
            .await
            .unwrap()
            .exc_info()
            .await
            .unwrap()
            .unwrap();
        assert!(
            text.starts_with("first") && text.contains("callback fixtures.fail failed"),
            "{text}"
        );
    }
}

on_every_backend! {
    async fn repeat_runs_a_finished_job_again(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("fixtures.add", (2, 3))
            .repeat(Repeat::new(2))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        assert_eq!(job.repeats_left(), 0);
        assert_eq!(
            job.results().await.unwrap().len(),
            3,
            "the first run and two repeats"
        );
        assert_eq!(
            job.latest_result().await.unwrap().unwrap().result_type(),
            ResultType::Successful
        );

        let later = queue
            .enqueue("fixtures.noop", ())
            .repeat(Repeat::new(2).intervals([0, 50]))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        // RQ indexes the interval by the repeats left: two left -> intervals[1] = 50 s first.
        assert_eq!(
            Job::fetch(&conn, later.id()).await.unwrap().status(),
            JobStatus::Scheduled
        );
    }
}

on_every_backend! {
    async fn an_inline_queue_runs_jobs_in_the_enqueuing_call(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default").inline(rqrs_test::fixtures::functions());
        let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        assert_eq!(job.return_value().await.unwrap(), Some(json!(3)));
        let failed = queue
            .enqueue("fixtures.fail", ("inline",))
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), JobStatus::Failed);
        assert_eq!(failed.exc_info().await.unwrap().as_deref(), Some("inline"));
        let gone = queue
            .enqueue("fixtures.noop", ())
            .result_ttl(rqrs::Ttl::NOT_KEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), JobStatus::Finished);
        let child = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([failed.id().clone()]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            child.status(),
            JobStatus::Deferred,
            "deferred jobs wait, as usual"
        );
        assert_eq!(queue.count().await.unwrap(), 0, "no job waits on the queue");
        assert_eq!(
            rqrs::StartedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            0,
            "and none is left running"
        );
        assert_eq!(
            rqrs::FinishedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            1
        );
    }
}

on_every_backend! {
    async fn a_retry_with_an_interval_runs_again_through_the_scheduler(store: &Store) {
        let conn = store.connect().await;
        let runs = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&runs);
        let flaky = Functions::new().register("tests.once", move |_ctx: JobContext, (): ()| {
            let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run == 1 {
                    Err(JobError::new("first run fails"))
                } else {
                    Ok(run)
                }
            }
        });
        let job = Queue::new(&conn, "default")
            .enqueue("tests.once", ())
            .retry(Retry::new(1).interval(1))
            .send()
            .await
            .unwrap();
        let worker = rqrs::Worker::builder(&conn)
            .queues(["default"])
            .functions(flaky)
            .with_scheduler(true)
            .build()
            .unwrap();
        let stop = worker.shutdown_handle();
        let task = tokio::spawn(worker.work());
        let done = rqrs_test::wait_for(
            "the retried job to finish",
            Duration::from_secs(20),
            || async {
                Job::fetch(&conn, job.id())
                    .await
                    .ok()
                    .filter(|job| job.status() == JobStatus::Finished)
            },
        )
        .await;
        assert_eq!(done.return_value().await.unwrap(), Some(json!(2)));
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    async fn webhooks_are_sent_when_a_job_finishes_or_fails(store: &Store) {
        let conn = store.connect().await;
        let (url, sink) = rqrs_test::http_sink(2).await;
        let queue = Queue::new(&conn, "default");
        let good = queue
            .enqueue("fixtures.add", (1, 2))
            .webhook(
                rqrs::Webhook::new(format!("{url}/done?x=1"), rqrs::WebhookStatus::Finished)
                    .post()
                    .header("X-Token", "t"),
            )
            .webhook(rqrs::Webhook::new(
                format!("{url}/never"),
                rqrs::WebhookStatus::Failed,
            ))
            .send()
            .await
            .unwrap();
        let bad = queue
            .enqueue("fixtures.fail", ("no",))
            .webhook(rqrs::Webhook::new(
                format!("{url}/failed"),
                rqrs::WebhookStatus::Failed,
            ))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let requests = tokio::time::timeout(Duration::from_secs(20), sink)
            .await
            .unwrap()
            .unwrap();
        let post = requests
            .iter()
            .find(|r| r.starts_with("POST /done?x=1 HTTP/1.1"))
            .expect("the POST");
        assert!(
            post.contains("X-Token: t") && post.contains("Content-Type: application/json"),
            "{post}"
        );
        let body: serde_json::Value =
            serde_json::from_str(post.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["job_id"], good.id().as_str());
        assert_eq!(body["status"], "finished");
        assert_eq!(body["func_name"], "fixtures.add");
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with("GET /failed HTTP/1.1")),
            "{requests:?}"
        );
        assert_eq!(
            Job::fetch(&conn, bad.id()).await.unwrap().status(),
            JobStatus::Failed
        );
        // An endpoint that is not there does not change the outcome.
        let lost = queue
            .enqueue("fixtures.add", (1, 1))
            .webhook(
                rqrs::Webhook::new("http://127.0.0.1:9/", rqrs::WebhookStatus::Finished)
                    .timeout(Duration::from_secs(1)),
            )
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(
            Job::fetch(&conn, lost.id()).await.unwrap().status(),
            JobStatus::Finished
        );
    }
}

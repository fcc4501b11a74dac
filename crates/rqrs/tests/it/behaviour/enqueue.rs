//! Enqueueing: what is stored and read back, the options RQ takes and refuses, batches,
//! dependencies, scheduling and unique ids.

use std::time::Duration;

use rqrs::{Error, Job, JobStatus, Queue, ScheduledJobRegistry};
use serde_json::json;

use crate::work;

trait Micros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl Micros for chrono::DateTime<chrono::Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

on_every_backend! {
    async fn fetch_reads_back_what_was_enqueued(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "q1");
        let sent = queue
            .enqueue("tasks.echo", ("a", 1))
            .kwargs(json!({"b": [1, 2]}))
            .description("echo")
            .timeout(Duration::from_secs(30))
            .result_ttl(Duration::from_secs(600))
            .failure_ttl(Duration::from_secs(300))
            .meta(json!({"k": "v"}))
            .send()
            .await
            .unwrap();
        let job = Job::fetch(&conn, sent.id()).await.unwrap();
        assert_eq!(job.func_name(), "tasks.echo");
        assert_eq!(job.args(), [json!("a"), json!(1)]);
        assert_eq!(job.kwargs().get("b"), Some(&json!([1, 2])));
        assert_eq!(job.status(), JobStatus::Queued);
        assert_eq!(job.origin(), "q1");
        assert_eq!(job.description(), Some("echo"));
        assert_eq!(job.timeout(), Some(rqrs::Timeout::seconds(30)));
        assert_eq!(job.result_ttl(), Some(rqrs::Ttl::seconds(600)));
        assert_eq!(job.failure_ttl(), Some(rqrs::Ttl::seconds(300)));
        assert_eq!(job.ttl(), None, "no ttl unless given");
        assert_eq!(job.meta().get("k"), Some(&json!("v")));
        assert_eq!(job.started_at(), None);
        assert_eq!(
            job.created_at(),
            sent.created_at().map(|t| t.trunc_subsecs_micros())
        );
        assert_eq!(
            job.enqueued_at(),
            sent.enqueued_at().map(|t| t.trunc_subsecs_micros())
        );
        assert!(job.data_error().is_none());
        assert_eq!(queue.count().await.unwrap(), 1);
        assert_eq!(queue.job_ids().await.unwrap(), [sent.id().clone()]);
        let names: Vec<String> = Queue::all(&conn)
            .await
            .unwrap()
            .iter()
            .map(|queue| queue.name().to_owned())
            .collect();
        assert_eq!(names, ["q1"]);
    }
}

on_every_backend! {
    async fn defaults_are_rqs(store: &Store) {
        let conn = store.connect().await;
        let job = Queue::new(&conn, "default")
            .enqueue("tasks.add", (1, "x"))
            .kwargs(json!({"k": 2.5}))
            .job_id("job-add-1".parse().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(job.id().as_str(), "job-add-1");
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.timeout(), Some(rqrs::DEFAULT_JOB_TIMEOUT), "always written");
        assert_eq!(job.description(), Some("tasks.add(1, 'x', k=2.5)"), "Python's call");
        assert_eq!(job.result_ttl(), None, "the worker's default applies");
        assert_eq!(job.failure_ttl(), None);
        assert!(job.meta().is_empty());
    }
}

on_every_backend! {
    async fn at_front_puts_the_job_at_the_head(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let first = queue.enqueue("f", ()).send().await.unwrap();
        let front = queue.enqueue("f", ()).at_front(true).send().await.unwrap();
        assert_eq!(
            queue.job_ids().await.unwrap(),
            [front.id().clone(), first.id().clone()]
        );
    }
}

on_every_backend! {
    async fn bad_options_and_ids_are_refused(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        assert!(matches!(
            "a:b".parse::<rqrs::JobId>(),
            Err(Error::Invalid { .. })
        ));
        let mut options = rqrs::EnqueueOptions::default();
        options.ttl = Some(Duration::ZERO);
        let zero_ttl = queue.enqueue("f", ()).options(options).send().await;
        assert!(
            matches!(zero_ttl, Err(Error::Invalid { what: "ttl", .. })),
            "{zero_ttl:?}"
        );
        let mut options = rqrs::EnqueueOptions::default();
        options.timeout = Some(rqrs::Timeout::seconds(0));
        let bad_timeout = queue.enqueue("f", ()).options(options).send().await;
        assert!(matches!(
            bad_timeout,
            Err(Error::Invalid {
                what: "timeout",
                ..
            })
        ));
        let bad_kwargs = queue.enqueue("f", ()).kwargs([1, 2]).send().await;
        assert!(matches!(
            bad_kwargs,
            Err(Error::Invalid { what: "kwargs", .. })
        ));
        let too_long = queue
            .enqueue("f", ())
            .result_ttl(Duration::from_secs(200 * 365 * 86_400))
            .send()
            .await;
        assert!(matches!(
            too_long,
            Err(Error::Invalid {
                what: "result_ttl",
                ..
            })
        ));
        assert_eq!(queue.count().await.unwrap(), 0, "nothing was enqueued");
    }
}

on_every_backend! {
    async fn fetching_a_missing_job_says_so(store: &Store) {
        let conn = store.connect().await;
        let error = Job::fetch(&conn, &"nope".parse().unwrap())
            .await
            .unwrap_err();
        assert!(error.is_no_such_job(), "{error}");
    }
}

on_every_backend! {
    async fn ttl_drops_a_job_that_did_not_start_in_time(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("fixtures.noop", ())
            .ttl(Duration::from_secs(1))
            .send()
            .await
            .unwrap();
        assert_eq!(job.ttl(), Some(Duration::from_secs(1)));
        let keep = queue.enqueue("fixtures.add", (1, 1)).send().await.unwrap();
        rqrs_test::wait_for("the job to expire", Duration::from_secs(5), || async {
            Job::fetch(&conn, job.id())
                .await
                .err()
                .filter(rqrs::Error::is_no_such_job)
        })
        .await;
        // The worker skips the expired id and runs the next job.
        work(&conn, &["default"], 1, rqrs::Functions::new()).await;
        assert_eq!(queue.count().await.unwrap(), 0);
        assert_eq!(
            Job::fetch(&conn, keep.id()).await.unwrap().status(),
            JobStatus::Finished
        );
    }
}

on_every_backend! {
    async fn empty_removes_and_deletes_waiting_jobs(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue.enqueue("f", ()).send().await.unwrap();
        queue.enqueue("f", ()).send().await.unwrap();
        assert_eq!(queue.empty().await.unwrap(), 2);
        assert_eq!(queue.count().await.unwrap(), 0);
        assert!(Job::fetch(&conn, job.id()).await.unwrap_err().is_no_such_job());
        assert_eq!(
            rqrs::Queue::all(&conn).await.unwrap().len(),
            1,
            "the queue stays known"
        );
    }
}

on_every_backend! {
    async fn enqueue_many_sends_all_jobs_in_order_or_none(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let jobs = queue
            .enqueue_many((0..5).map(|i| queue.enqueue("fixtures.add", (i, 1))))
            .await
            .unwrap();
        let ids: Vec<_> = jobs.iter().map(|job| job.id().clone()).collect();
        assert_eq!(queue.job_ids().await.unwrap(), ids);
        let other = Queue::new(&conn, "other");
        let mixed = queue
            .enqueue_many([queue.enqueue("f", ()), other.enqueue("f", ())])
            .await;
        assert!(matches!(mixed, Err(Error::Invalid { .. })), "{mixed:?}");
        let mut bad = rqrs::EnqueueOptions::default();
        bad.ttl = Some(Duration::ZERO);
        let invalid = queue
            .enqueue_many([queue.enqueue("f", ()), queue.enqueue("f", ()).options(bad)])
            .await;
        assert!(invalid.is_err());
        assert_eq!(
            queue.count().await.unwrap(),
            5,
            "nothing of a refused batch was enqueued"
        );
        work(&conn, &["default"], 8, rqrs::Functions::new()).await;
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                Job::fetch(&conn, id)
                    .await
                    .unwrap()
                    .return_value()
                    .await
                    .unwrap(),
                Some(json!(i + 1))
            );
        }
    }
}

on_every_backend! {
    async fn dependencies_defer_a_job_until_its_parents_are_done(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let parent = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
        let child = queue
            .enqueue("fixtures.add", (3, 4))
            .depends_on(rqrs::Dependency::new([parent.id().clone()]))
            .send()
            .await
            .unwrap();
        assert_eq!(child.status(), JobStatus::Deferred);
        assert_eq!(queue.job_ids().await.unwrap(), [parent.id().clone()]);
        assert_eq!(
            rqrs::DeferredJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [child.id().clone()]
        );
        let stored = Job::fetch(&conn, child.id()).await.unwrap();
        assert_eq!(stored.dependency_ids(), [parent.id().clone()]);
        assert_eq!(stored.enqueued_at(), None, "a deferred job has no enqueued_at (as RQ)");
        // A dependency that is already finished, or gone, does not hold a job back.
        let free = queue
            .enqueue("f", ())
            .depends_on(rqrs::Dependency::new(["gone".parse().unwrap()]))
            .send()
            .await
            .unwrap();
        assert_eq!(free.status(), JobStatus::Queued);
    }
}

on_every_backend! {
    async fn scheduled_and_unique_enqueues(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let later = queue
            .enqueue("f", ())
            .delay(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        assert_eq!(later.status(), JobStatus::Scheduled);
        assert_eq!(queue.count().await.unwrap(), 0);
        assert_eq!(
            ScheduledJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [later.id().clone()]
        );
        let id: rqrs::JobId = "only-once".parse().unwrap();
        queue
            .enqueue("f", (1,))
            .job_id(id.clone())
            .unique(true)
            .send()
            .await
            .unwrap();
        let again = queue
            .enqueue("f", (2,))
            .job_id(id.clone())
            .unique(true)
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(again, Error::DuplicateJob(ref dup) if *dup == id),
            "{again}"
        );
        assert_eq!(
            Job::fetch(&conn, &id).await.unwrap().args(),
            [json!(1)],
            "not overwritten"
        );
        assert!(
            queue.enqueue("f", ()).unique(true).send().await.is_err(),
            "unique needs a job id"
        );
    }
}

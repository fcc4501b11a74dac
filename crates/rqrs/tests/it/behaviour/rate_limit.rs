//! Rate limits (RQ 3.0's `RateLimit`): a job waits for a slot at enqueue, every way out of a
//! slot (finish, failure, a retry that waits, cancel, delete) gives it back to the oldest job
//! in line, and every way back onto a queue (requeue, the scheduler, released dependents) goes
//! through the limiter. Never more jobs of a key at once than its concurrency, measured in the
//! running functions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rqrs::{
    Dependency, FailedJobRegistry, Functions, Job, JobContext, JobError, JobStatus, Queue,
    RateLimit, Retry, Scheduler,
};

use crate::work;

async fn status(conn: &rqrs::Connection, id: &rqrs::JobId) -> JobStatus {
    Job::fetch(conn, id).await.unwrap().status()
}

/// How many of `jobs` wait in line for a slot.
async fn in_line(conn: &rqrs::Connection, jobs: &[&Job]) -> usize {
    let mut waiting = 0;
    for job in jobs {
        if status(conn, job.id()).await == JobStatus::RateLimited {
            waiting += 1;
        }
    }
    waiting
}

/// `limited.work`: sleeps a little while counting how many of its calls run at once.
fn counting(running: &Arc<AtomicUsize>, most: &Arc<AtomicUsize>) -> Functions {
    let (running, most) = (Arc::clone(running), Arc::clone(most));
    Functions::new().register("limited.work", move |_ctx: JobContext, (): ()| {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, JobError>(())
        }
    })
}

on_every_backend! {
    async fn jobs_of_a_limit_wait_for_a_slot_and_never_run_over_it(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let mut ids = Vec::new();
        for _ in 0..30 {
            let job = queue
                .enqueue("limited.work", ())
                .rate_limit(RateLimit::new("api", 3))
                .send()
                .await
                .unwrap();
            ids.push(job.id().clone());
        }
        // Three hold a slot and are queued, the others wait.
        assert_eq!(status(&conn, &ids[2]).await, JobStatus::Queued);
        assert_eq!(status(&conn, &ids[3]).await, JobStatus::RateLimited);
        assert_eq!(queue.count().await.unwrap(), 3);
        assert_eq!(
            Job::fetch(&conn, &ids[0]).await.unwrap().rate_limit(),
            Some(&RateLimit::new("api", 3))
        );

        let (running, most) = (Arc::default(), Arc::default());
        work(&conn, &["default"], 16, counting(&running, &most)).await;
        for id in &ids {
            assert_eq!(status(&conn, id).await, JobStatus::Finished, "{id}");
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&most),
            "{most} ran at once, over the limit of 3"
        );
        assert_eq!(queue.count().await.unwrap(), 0);
    }
}

on_every_backend! {
    async fn every_end_gives_the_slot_back_and_every_way_back_waits_in_line(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let limit = || RateLimit::new("one", 1);

        // A failure gives the slot to the next job; a requeue of the failed one waits in line.
        let failing = queue
            .enqueue("fixtures.fail", ("boom",))
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        let next = queue
            .enqueue("fixtures.noop", ())
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        assert_eq!(status(&conn, next.id()).await, JobStatus::RateLimited);
        work(&conn, &["default"], 4, Functions::new()).await;
        assert_eq!(status(&conn, failing.id()).await, JobStatus::Failed);
        assert_eq!(status(&conn, next.id()).await, JobStatus::Finished);
        assert_eq!(queue.count().await.unwrap(), 0);

        // Cancel and delete give a waiting job's slot back.
        let held = queue
            .enqueue("fixtures.noop", ())
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        let second = queue
            .enqueue("fixtures.noop", ())
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        let third = queue
            .enqueue("fixtures.noop", ())
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        assert_eq!(queue.count().await.unwrap(), 1);
        assert_eq!(in_line(&conn, &[&second, &third]).await, 2);
        let mut held = Job::fetch(&conn, held.id()).await.unwrap();
        held.cancel().await.unwrap();
        assert_eq!(status(&conn, second.id()).await, JobStatus::Queued);
        Job::fetch(&conn, second.id())
            .await
            .unwrap()
            .delete(false)
            .await
            .unwrap();
        assert_eq!(status(&conn, third.id()).await, JobStatus::Queued);
        assert_eq!(queue.count().await.unwrap(), 1);
        // The requeued failure waits behind the third.
        FailedJobRegistry::new(&conn, "default")
            .requeue(failing.id())
            .await
            .unwrap();
        assert_eq!(status(&conn, failing.id()).await, JobStatus::RateLimited);
        assert_eq!(queue.count().await.unwrap(), 1);
        work(&conn, &["default"], 4, Functions::new()).await;
        assert_eq!(status(&conn, third.id()).await, JobStatus::Finished);
        assert_eq!(status(&conn, failing.id()).await, JobStatus::Failed);
        assert_eq!(queue.count().await.unwrap(), 0);

        // A retry that waits gives its slot back and, due, waits in line again; a dependent
        // released by its parent waits in line too.
        let parent = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        let dependent = queue
            .enqueue("fixtures.noop", ())
            .depends_on(Dependency::new([parent.id().clone()]))
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        let retried = queue
            .enqueue("fixtures.fail", ("again",))
            .retry(Retry::new(1).intervals([1]))
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        assert_eq!(status(&conn, dependent.id()).await, JobStatus::Deferred);
        assert_eq!(status(&conn, retried.id()).await, JobStatus::Queued);
        work(&conn, &["default"], 4, Functions::new()).await;
        // The retry waits for its time; the dependent took the slot it gave back, and ran.
        assert_eq!(status(&conn, retried.id()).await, JobStatus::Scheduled);
        assert_eq!(status(&conn, dependent.id()).await, JobStatus::Finished);
        assert_eq!(queue.count().await.unwrap(), 0);
        let scheduler = Scheduler::builder(&conn)
            .queues(["default"])
            .build()
            .unwrap();
        rqrs_test::wait_for("the retry to be due", Duration::from_secs(10), || async {
            (scheduler.run_once().await.unwrap() == 1).then_some(())
        })
        .await;
        assert_eq!(status(&conn, retried.id()).await, JobStatus::Queued);
        assert_eq!(queue.count().await.unwrap(), 1);

        // A scheduled job waits in line when it is due.
        let blocker = queue
            .enqueue("fixtures.noop", ())
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        assert_eq!(status(&conn, blocker.id()).await, JobStatus::RateLimited);
        let due = queue
            .enqueue_at(Utc::now() - TimeDelta::seconds(1), "fixtures.noop", ())
            .rate_limit(limit())
            .send()
            .await
            .unwrap();
        assert_eq!(scheduler.run_once().await.unwrap(), 1);
        assert_eq!(status(&conn, due.id()).await, JobStatus::RateLimited);
        work(&conn, &["default"], 4, Functions::new()).await;
        assert_eq!(status(&conn, retried.id()).await, JobStatus::Failed);
        assert_eq!(status(&conn, blocker.id()).await, JobStatus::Finished);
        assert_eq!(status(&conn, due.id()).await, JobStatus::Finished);
        assert_eq!(queue.count().await.unwrap(), 0);
    }
}

on_every_backend! {
    async fn a_limit_rq_would_refuse_is_refused(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        for limit in [RateLimit::new("", 1), RateLimit::new("k", 0)] {
            let error = queue
                .enqueue("fixtures.noop", ())
                .rate_limit(limit.clone())
                .send()
                .await
                .expect_err("refused");
            assert!(
                error.to_string().contains("rate_limit"),
                "{limit:?}: {error}"
            );
        }
    }
}

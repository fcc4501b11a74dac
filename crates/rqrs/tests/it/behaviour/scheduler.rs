//! The scheduler: due jobs are enqueued where they ask to be, by the one holder of a queue's
//! lock, which is released on stop.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rqrs::{Functions, Job, JobId, JobStatus, Queue, ScheduledJobRegistry, Scheduler, Worker};
use rqrs_test::wait_for;
use serde_json::json;
use tokio::sync::oneshot;

use crate::work;

/// Bounds a hang; never a delay the tests rely on.
const HANG: Duration = Duration::from_secs(30);

async fn status(conn: &rqrs::Connection, id: &JobId) -> JobStatus {
    Job::fetch(conn, id).await.unwrap().status()
}

/// Whether the locks of `queues` are free: a scheduler of its own takes all of them (and lets
/// them go again).
async fn locks_are_free(conn: &rqrs::Connection, queues: &[&str]) -> bool {
    let probe = Scheduler::builder(conn)
        .queues(queues.iter().copied())
        .name("probe")
        .build()
        .unwrap();
    let held = probe.acquire_locks().await.unwrap();
    probe.release_locks().await.unwrap();
    held.len() == queues.len()
}

/// Starts `scheduler.run` in a task; send on the returned channel to stop it.
fn spawn(
    scheduler: Scheduler,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<rqrs::Result<()>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async {
        stopped.await.ok();
    }));
    (stop, task)
}

on_every_backend! {
    async fn a_job_enqueued_in_one_second_runs_on_a_worker_with_the_scheduler(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue_in(Duration::from_secs(1), "fixtures.add", (1, 2))
            .send()
            .await
            .unwrap();
        assert_eq!(job.status(), JobStatus::Scheduled);

        let worker = Worker::builder(&conn)
            .queues(["default"])
            .functions(rqrs_test::fixtures::functions())
            .with_scheduler(true)
            .build()
            .unwrap();
        let shutdown = worker.shutdown_handle();
        let working = tokio::spawn(worker.work());
        wait_for("the scheduled job to finish", HANG, || async {
            (status(&conn, job.id()).await == JobStatus::Finished).then_some(())
        })
        .await;
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.return_value().await.unwrap(), Some(json!(3)));
        assert!(job.enqueued_at().is_some());
        assert_eq!(
            ScheduledJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            0
        );

        shutdown.warm();
        working.await.unwrap().unwrap();
        assert!(locks_are_free(&conn, &["default"]).await, "released on stop");
    }
}

on_every_backend! {
    async fn a_burst_worker_with_the_scheduler_runs_the_jobs_due_at_start(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let due = queue
            .enqueue_at(Utc::now() - TimeDelta::seconds(5), "fixtures.add", (2, 3))
            .send()
            .await
            .unwrap();
        let later = queue
            .enqueue_in(Duration::from_secs(3600), "fixtures.add", (1, 1))
            .send()
            .await
            .unwrap();

        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(
            status(&conn, due.id()).await,
            JobStatus::Scheduled,
            "no scheduler, no run"
        );

        let worker = Worker::builder(&conn)
            .queues(["default"])
            .functions(rqrs_test::fixtures::functions())
            .burst(true)
            .with_scheduler(true)
            .build()
            .unwrap();
        tokio::time::timeout(HANG, worker.work())
            .await
            .expect("the burst ends")
            .unwrap();
        assert_eq!(status(&conn, due.id()).await, JobStatus::Finished);
        assert_eq!(status(&conn, later.id()).await, JobStatus::Scheduled);
        assert!(locks_are_free(&conn, &["default"]).await);
    }
}

on_every_backend! {
    async fn due_jobs_go_to_the_head_or_the_tail_as_they_ask(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let past = Utc::now() - TimeDelta::seconds(10);
        let id = |id: &str| -> JobId { id.parse().unwrap() };
        let waiting = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        // Equal due times are taken in the order of their ids, hence the letters.
        for (name, at_front) in [("a-front", true), ("c-tail", false)] {
            queue
                .enqueue_at(past, "fixtures.noop", ())
                .job_id(id(name))
                .at_front(at_front)
                .ttl(Duration::from_secs(500))
                .send()
                .await
                .unwrap();
        }
        queue
            .enqueue_at(past, "fixtures.noop", ())
            .job_id(id("e-gone"))
            .send()
            .await
            .unwrap();
        rqrs::testing::expire_job(&conn, &id("e-gone")).await.unwrap();
        let later = queue
            .enqueue_in(Duration::from_secs(3600), "fixtures.noop", ())
            .send()
            .await
            .unwrap();

        let scheduler = Scheduler::builder(&conn)
            .queues(["default"])
            .build()
            .unwrap();
        assert_eq!(scheduler.run_once().await.unwrap(), 2);

        let ids: Vec<String> = queue
            .job_ids()
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ids, ["a-front", waiting.id().as_str(), "c-tail"]);
        for name in ["a-front", "c-tail"] {
            let job = Job::fetch(&conn, &id(name)).await.unwrap();
            assert_eq!(job.status(), JobStatus::Queued, "{name}");
            assert!(job.enqueued_at().is_some(), "{name}");
        }
        assert_eq!(
            ScheduledJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [later.id().clone()],
            "the gone job's id is dropped, the later job stays"
        );
    }
}

on_every_backend! {
    async fn only_the_lock_holder_enqueues_due_jobs(store: &Store) {
        let conn = store.connect().await;
        let holder = Scheduler::builder(&conn)
            .queues(["default"])
            .name("scheduler-a")
            .build()
            .unwrap();
        let other = Scheduler::builder(&conn)
            .queues(["default"])
            .name("scheduler-b")
            .build()
            .unwrap();
        assert_eq!(holder.acquire_locks().await.unwrap(), ["default"]);
        assert!(other.acquire_locks().await.unwrap().is_empty());
        assert_eq!(
            holder.acquire_locks().await.unwrap(),
            ["default"],
            "refreshed"
        );

        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue_at(Utc::now() - TimeDelta::seconds(1), "fixtures.noop", ())
            .send()
            .await
            .unwrap();
        assert_eq!(other.enqueue_scheduled_jobs().await.unwrap(), 0);
        assert_eq!(other.run_once().await.unwrap(), 0);
        assert_eq!(status(&conn, job.id()).await, JobStatus::Scheduled);
        assert_eq!(queue.count().await.unwrap(), 0);

        assert_eq!(holder.enqueue_scheduled_jobs().await.unwrap(), 1);
        assert_eq!(queue.job_ids().await.unwrap(), [job.id().clone()]);

        other.release_locks().await.unwrap();
        assert!(
            other.acquire_locks().await.unwrap().is_empty(),
            "a scheduler releases only its own locks"
        );
        holder.release_locks().await.unwrap();
        assert_eq!(other.acquire_locks().await.unwrap(), ["default"]);
        other.release_locks().await.unwrap();
    }
}

on_every_backend! {
    async fn a_running_scheduler_holds_free_locks_and_releases_them_on_stop(store: &Store) {
        let conn = store.connect().await;
        let elsewhere = Scheduler::builder(&conn)
            .queues(["other"])
            .name("someone-else")
            .build()
            .unwrap();
        assert_eq!(elsewhere.acquire_locks().await.unwrap(), ["other"]);
        let scheduler = Scheduler::builder(&conn)
            .queues(["high", "default", "other"])
            .name("s1")
            .build()
            .unwrap();
        let (stop, task) = spawn(scheduler);
        let probe = Scheduler::builder(&conn)
            .queues(["high", "default"])
            .name("probe")
            .build()
            .unwrap();
        // The probe lets go of whatever it takes at once, so that the scheduler can take it.
        wait_for("the locks", HANG, || async {
            let held = probe.acquire_locks().await.unwrap();
            probe.release_locks().await.unwrap();
            held.is_empty().then_some(())
        })
        .await;

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(locks_are_free(&conn, &["high", "default"]).await);
        assert!(!locks_are_free(&conn, &["other"]).await, "not its lock to release");
    }
}

//! The worker: outcomes recorded, bad jobs, concurrency, priorities, timeouts, registration
//! and heartbeats, shutdown, suspension, control commands, limits, webhooks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rqrs::{
    FailedJobRegistry, FinishedJobRegistry, Functions, Job, JobContext, JobError, JobStatus, Queue,
    ResultType, StartedJobRegistry, Worker, WorkerState,
};
use serde_json::{Value, json};

use crate::{HANG, spawn_worker, wait_status, work};

on_every_backend! {
    async fn success_is_recorded(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;

        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Finished);
        assert_eq!(job.return_value().await.unwrap(), Some(json!(3)));
        assert!(job.started_at().is_some() && job.ended_at() >= job.started_at());
        assert!(job.worker_name().is_some());
        let result = job.latest_result().await.unwrap().unwrap();
        assert_eq!(result.result_type(), ResultType::Successful);
        assert_eq!(result.worker_name(), job.worker_name());
        assert!(result.execution_id().is_some());
        assert_eq!(
            FinishedJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [job.id().clone()]
        );
        assert_eq!(
            StartedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            0
        );
    }
}

on_every_backend! {
    async fn result_ttl_zero_deletes_the_job_and_forever_keeps_it(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let gone = queue
            .enqueue("fixtures.add", (1, 2))
            .result_ttl(rqrs::Ttl::NOT_KEPT)
            .send()
            .await
            .unwrap();
        let kept = queue
            .enqueue("fixtures.add", (1, 2))
            .result_ttl(rqrs::Ttl::FOREVER)
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 2, Functions::new()).await;
        assert!(
            Job::fetch(&conn, gone.id())
                .await
                .unwrap_err()
                .is_no_such_job()
        );
        assert!(gone.results().await.unwrap().is_empty(), "no result recorded");
        assert_eq!(
            FinishedJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [kept.id().clone()]
        );
        assert_eq!(kept.return_value().await.unwrap(), Some(json!(3)));
    }
}

on_every_backend! {
    async fn failure_goes_to_the_failed_registry_with_its_message(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("fixtures.fail", ("boom",))
            .send()
            .await
            .unwrap();
        queue
            .enqueue("fixtures.fail", ("bang",))
            .failure_ttl(Duration::from_secs(100))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;

        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Failed);
        assert_eq!(job.exc_info().await.unwrap().as_deref(), Some("boom"));
        assert_eq!(
            job.latest_result().await.unwrap().unwrap().result_type(),
            ResultType::Failed
        );
        assert_eq!(job.return_value().await.unwrap(), None);
        let failed = FailedJobRegistry::new(&conn, "default")
            .job_ids()
            .await
            .unwrap();
        assert_eq!(failed.len(), 2);
    }
}

on_every_backend! {
    async fn bad_jobs_fail_with_a_reason_and_the_worker_goes_on(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let unknown = queue.enqueue("fixtures.nothing", ()).send().await.unwrap();
        let wrong = queue
            .enqueue("fixtures.add", ("x", 1))
            .send()
            .await
            .unwrap();
        let missing = queue.enqueue("fixtures.add", (1,)).send().await.unwrap();
        let panics = queue.enqueue("tests.panic", ()).send().await.unwrap();
        let good = queue.enqueue("fixtures.add", (2, 2)).send().await.unwrap();
        let panic = Functions::new().register("tests.panic", |_ctx: JobContext, (): ()| async move {
            if true {
                panic!("deliberate");
            }
            Ok::<(), JobError>(())
        });
        work(&conn, &["default"], 2, panic).await;

        let reason = |id: &str| {
            let conn = conn.clone();
            let id = id.to_owned();
            async move {
                let job = Job::fetch(&conn, &id.parse().unwrap()).await.unwrap();
                assert_eq!(job.status(), JobStatus::Failed, "{id}");
                job.exc_info().await.unwrap().unwrap_or_default()
            }
        };
        assert!(
            reason(unknown.id().as_str())
                .await
                .contains("unknown function \"fixtures.nothing\"")
        );
        let wrong = reason(wrong.id().as_str()).await;
        assert!(
            wrong.contains("wrong arguments for fixtures.add")
                && wrong.contains("invalid type: string \"x\""),
            "{wrong}"
        );
        assert!(
            reason(missing.id().as_str())
                .await
                .contains("missing field `y`")
        );
        assert!(
            reason(panics.id().as_str())
                .await
                .contains("panicked: deliberate")
        );
        let good = Job::fetch(&conn, good.id()).await.unwrap();
        assert_eq!(good.return_value().await.unwrap(), Some(json!(4)));
        assert_eq!(
            FailedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            4
        );
    }
}

on_every_backend! {
    async fn concurrency_runs_jobs_at_the_same_time(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        // Each job waits until all four run at once: with fewer slots the burst would hang.
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let together = Functions::new().register("tests.together", move |_ctx: JobContext, (): ()| {
            let barrier = Arc::clone(&barrier);
            async move {
                barrier.wait().await;
                Ok::<_, JobError>(())
            }
        });
        let blocking_barrier = Arc::new(std::sync::Barrier::new(2));
        let blocking = Functions::new().register_blocking(
            "tests.together_blocking",
            move |_ctx: JobContext, (): ()| {
                blocking_barrier.wait();
                Ok::<_, JobError>(())
            },
        );
        for _ in 0..4 {
            queue.enqueue("tests.together", ()).send().await.unwrap();
        }
        for _ in 0..2 {
            queue
                .enqueue("tests.together_blocking", ())
                .send()
                .await
                .unwrap();
        }
        work(&conn, &["default"], 4, together.merge(blocking)).await;
        assert_eq!(
            FinishedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            6
        );
    }
}

on_every_backend! {
    async fn queues_are_served_in_priority_order(store: &Store) {
        let conn = store.connect().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&order);
        let record = Functions::new().register("tests.record", move |ctx: JobContext, (): ()| {
            seen.lock().unwrap().push(ctx.origin().to_owned());
            async { Ok::<_, JobError>(()) }
        });
        for queue in ["low", "default", "high"] {
            for _ in 0..2 {
                Queue::new(&conn, queue)
                    .enqueue("tests.record", ())
                    .send()
                    .await
                    .unwrap();
            }
        }
        work(&conn, &["high", "default", "low"], 1, record).await;
        assert_eq!(
            *order.lock().unwrap(),
            ["high", "high", "default", "default", "low", "low"]
        );
    }
}

on_every_backend! {
    async fn an_async_job_is_cancelled_at_its_timeout(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("fixtures.sleep", (30,))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(job.status(), JobStatus::Failed);
        assert!(
            job.exc_info()
                .await
                .unwrap()
                .unwrap()
                .contains("exceeded maximum timeout value (1 seconds)")
        );
    }
}

on_every_backend! {
    async fn a_waiting_worker_registers_takes_new_jobs_and_heartbeats(store: &Store) {
        let conn = store.connect().await;
        let (name, stop, task) = spawn_worker(&conn, 2);
        let worker = rqrs_test::wait_for("the worker to register", HANG, || async {
            Worker::all(&conn)
                .await
                .unwrap()
                .into_iter()
                .find(|worker| worker.state == WorkerState::Idle)
        })
        .await;
        assert_eq!(worker.name, name);
        assert_eq!(worker.queues, ["default"]);
        assert_eq!(worker.pid, std::process::id());
        assert!(worker.birth.is_some() && !worker.hostname.is_empty());
        assert!(worker.version.starts_with("rqrs-"));
        assert_eq!(Worker::for_queue(&conn, "default").await.unwrap().len(), 1);
        assert!(Worker::for_queue(&conn, "other").await.unwrap().is_empty());

        let queue = Queue::new(&conn, "default");
        let job = queue.enqueue("fixtures.sleep", (2,)).send().await.unwrap();
        let running = wait_status(&conn, job.id(), JobStatus::Started).await;
        assert_eq!(running.worker_name(), Some(name.as_str()));
        let workers = Worker::all(&conn).await.unwrap();
        assert_eq!(workers[0].state, WorkerState::Busy);
        assert_eq!(workers[0].current_job.as_deref(), Some(job.id().as_str()));
        assert_eq!(
            StartedJobRegistry::new(&conn, "default")
                .job_ids()
                .await
                .unwrap(),
            [job.id().clone()]
        );
        // Heartbeats mark the running job alive while it runs.
        let first = running.last_heartbeat().unwrap();
        rqrs_test::wait_for("a heartbeat", HANG, || async {
            Job::fetch(&conn, job.id())
                .await
                .unwrap()
                .last_heartbeat()
                .filter(|beat| *beat > first)
        })
        .await;

        wait_status(&conn, job.id(), JobStatus::Finished).await;
        stop.warm();
        task.await.unwrap().unwrap();
        assert!(Worker::all(&conn).await.unwrap().is_empty(), "the worker unregisters");
    }
}

on_every_backend! {
    async fn warm_shutdown_finishes_running_jobs_and_cold_puts_them_back(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let (_, stop, task) = spawn_worker(&conn, 1);
        let job = queue.enqueue("fixtures.sleep", (1,)).send().await.unwrap();
        let next = queue.enqueue("fixtures.noop", ()).send().await.unwrap();
        wait_status(&conn, job.id(), JobStatus::Started).await;
        stop.warm();
        task.await.unwrap().unwrap();
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Finished
        );
        assert_eq!(
            queue.job_ids().await.unwrap(),
            [next.id().clone()],
            "no new job was taken"
        );

        queue.empty().await.unwrap();
        let (_, stop, task) = spawn_worker(&conn, 1);
        let long = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
        wait_status(&conn, long.id(), JobStatus::Started).await;
        stop.cold();
        task.await.unwrap().unwrap();
        let long = Job::fetch(&conn, long.id()).await.unwrap();
        assert_eq!(long.status(), JobStatus::Queued);
        assert_eq!(queue.job_ids().await.unwrap(), [long.id().clone()]);
        assert_eq!(
            StartedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            0
        );
    }
}

on_every_backend! {
    async fn a_second_worker_with_a_live_name_is_refused(store: &Store) {
        let conn = store.connect().await;
        let worker = |name: &str| {
            Worker::builder(&conn)
                .queues(["default"])
                .functions(rqrs_test::fixtures::functions())
                .name(name)
                .build()
                .unwrap()
        };
        let first = worker("same");
        let stop = first.shutdown_handle();
        let task = tokio::spawn(first.work());
        rqrs_test::wait_for("the first worker", HANG, || async {
            (Worker::all(&conn).await.unwrap().len() == 1).then_some(())
        })
        .await;
        let error = worker("same").work().await.unwrap_err();
        assert!(matches!(error, rqrs::Error::WorkerExists(_)), "{error}");
        stop.warm();
        task.await.unwrap().unwrap();
        // Once dead, the name can be used again.
        let again = worker("same");
        let stop = again.shutdown_handle();
        let task = tokio::spawn(again.work());
        rqrs_test::wait_for("the second worker", HANG, || async {
            (Worker::all(&conn).await.unwrap().len() == 1).then_some(())
        })
        .await;
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    async fn echo_returns_args_and_kwargs(store: &Store) {
        let conn = store.connect().await;
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.echo", (1, "a"))
            .kwargs(json!({"k": [true]}))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 1, Functions::new()).await;
        let value: Option<Value> = Job::fetch(&conn, job.id())
            .await
            .unwrap()
            .return_value()
            .await
            .unwrap();
        assert_eq!(
            value,
            Some(json!({"args": [1, "a"], "kwargs": {"k": [true]}}))
        );
    }
}

on_every_backend! {
    async fn an_expired_registration_is_written_again_in_full(store: &Store) {
        let conn = store.connect().await;
        let (name, stop, task) = spawn_worker(&conn, 1);
        let registered = || async {
            Worker::all(&conn)
                .await
                .unwrap()
                .into_iter()
                .find(|worker| worker.name == name && worker.birth.is_some())
        };
        rqrs_test::wait_for("the worker to register", HANG, registered).await;
        rqrs::testing::expire_worker(&conn, &name).await.unwrap();
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.noop", ())
            .send()
            .await
            .unwrap();
        wait_status(&conn, job.id(), JobStatus::Finished).await;
        let worker = rqrs_test::wait_for("the worker to register again", HANG, registered).await;
        assert_eq!(worker.queues, ["default"]);
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    async fn a_worker_fails_runs_abandoned_by_a_dead_worker(store: &Store) {
        let conn = store.connect().await;
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.noop", ())
            .send()
            .await
            .unwrap();
        // As a worker killed mid-job leaves it: started, its deadline passed.
        let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        rqrs::testing::abandon_next_run(&conn, "default", past).await.unwrap();
        let (_, stop, task) = spawn_worker(&conn, 1);
        let failed = wait_status(&conn, job.id(), JobStatus::Failed).await;
        assert!(
            failed
                .exc_info()
                .await
                .unwrap()
                .unwrap()
                .contains("AbandonedJobError")
        );
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    async fn a_suspended_worker_takes_no_job_until_resumed(store: &Store) {
        let conn = store.connect().await;
        rqrs::suspend(&conn, None).await.unwrap();
        assert!(rqrs::is_suspended(&conn).await.unwrap());
        let (_, stop, task) = spawn_worker(&conn, 1);
        rqrs_test::wait_for("the worker to see the suspension", HANG, || async {
            Worker::all(&conn)
                .await
                .unwrap()
                .into_iter()
                .find(|worker| worker.state == WorkerState::Suspended)
        })
        .await;
        let job = Queue::new(&conn, "default")
            .enqueue("fixtures.noop", ())
            .send()
            .await
            .unwrap();
        // A burst worker gives up at once while suspended, leaving the job queued.
        work(&conn, &["default"], 1, Functions::new()).await;
        assert_eq!(
            Job::fetch(&conn, job.id()).await.unwrap().status(),
            JobStatus::Queued
        );
        rqrs::resume(&conn).await.unwrap();
        wait_status(&conn, job.id(), JobStatus::Finished).await;
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    async fn control_commands_stop_a_job_kill_running_ones_and_shut_the_worker_down(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        let (name, _stop, task) = spawn_worker(&conn, 2);
        let stopped = queue
            .enqueue("fixtures.sleep", (60,))
            .on_stopped(rqrs::Callback::new("fixtures.on_failure_mark"))
            .send()
            .await
            .unwrap();
        let killed = queue.enqueue("fixtures.sleep", (60,)).send().await.unwrap();
        wait_status(&conn, stopped.id(), JobStatus::Started).await;
        wait_status(&conn, killed.id(), JobStatus::Started).await;
        // The control channel is subscribed once the worker is up; a command before that is lost.
        rqrs_test::wait_for("the stop-job command to be heard", HANG, || async {
            rqrs::send_stop_job_command(&conn, stopped.id())
                .await
                .unwrap()
                .then_some(())
        })
        .await;
        let stopped = wait_status(&conn, stopped.id(), JobStatus::Stopped).await;
        assert_eq!(
            stopped.exc_info().await.unwrap().as_deref(),
            Some("Job stopped by user, work-horse terminated.")
        );
        assert_eq!(
            stopped.meta().get("callback"),
            Some(&json!("failure")),
            "on_stopped ran"
        );
        assert_eq!(
            Job::fetch(&conn, killed.id()).await.unwrap().status(),
            JobStatus::Started,
            "the other job runs on"
        );
        assert!(rqrs::send_kill_horse_command(&conn, &name).await.unwrap());
        let killed = wait_status(&conn, killed.id(), JobStatus::Failed).await;
        assert!(
            killed
                .exc_info()
                .await
                .unwrap()
                .unwrap()
                .contains("kill-horse")
        );
        assert_eq!(
            FailedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            2
        );
        assert!(rqrs::send_shutdown_command(&conn, &name).await.unwrap());
        tokio::time::timeout(HANG, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

on_every_backend! {
    async fn max_jobs_max_idle_time_and_round_robin(store: &Store) {
        let conn = store.connect().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&order);
        let record = Functions::new().register("tests.record", move |ctx: JobContext, (): ()| {
            seen.lock().unwrap().push(ctx.origin().to_owned());
            async { Ok::<_, JobError>(()) }
        });
        for queue in ["a", "b"] {
            for _ in 0..3 {
                Queue::new(&conn, queue)
                    .enqueue("tests.record", ())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let worker = Worker::builder(&conn)
            .queues(["a", "b"])
            .functions(record)
            .dequeue_strategy(rqrs::DequeueStrategy::RoundRobin)
            .max_jobs(4)
            .max_idle_time(Duration::from_millis(200))
            .build()
            .unwrap();
        // Not burst: it stops by itself after 4 jobs.
        tokio::time::timeout(HANG, worker.work())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*order.lock().unwrap(), ["a", "b", "a", "b"]);
        // And after a short idle time once the queues are empty.
        let worker = Worker::builder(&conn)
            .queues(["a", "b"])
            .functions(rqrs_test::fixtures::functions().merge(
                Functions::new().register("tests.record", |_ctx: JobContext, (): ()| async {
                    Ok::<_, JobError>(())
                }),
            ))
            .max_idle_time(Duration::from_millis(300))
            .build()
            .unwrap();
        tokio::time::timeout(HANG, worker.work())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            Queue::new(&conn, "a").count().await.unwrap()
                + Queue::new(&conn, "b").count().await.unwrap(),
            0
        );
    }
}

on_every_backend! {
    async fn heartbeats_go_on_while_an_async_job_never_yields(store: &Store) {
        let conn = store.connect().await;
        // An async function that blocks its runtime thread: on a current-thread runtime (as in this
        // test) nothing else of the worker's main loop could run while it does.
        let hog = Functions::new().register(
            "tests.hog",
            |_ctx: JobContext, (millis,): (u64,)| async move {
                std::thread::sleep(Duration::from_millis(millis));
                Ok::<_, JobError>(())
            },
        );
        let worker = Worker::builder(&conn)
            .queues(["default"])
            .functions(rqrs_test::fixtures::functions().merge(hog))
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .unwrap();
        let name = worker.name().to_owned();
        let stop = worker.shutdown_handle();
        let job = Queue::new(&conn, "default")
            .enqueue("tests.hog", (3500,))
            .send()
            .await
            .unwrap();
        let task = tokio::spawn(worker.work());
        // Read the heartbeats through a connection of another thread's runtime: this one is
        // blocked by the job.
        let url = store.url();
        let beats = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let conn = rqrs::connect(&url).await.unwrap();
                let mut seen = std::collections::HashSet::new();
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while std::time::Instant::now() < deadline && seen.len() < 3 {
                    let worker = Worker::all(&conn)
                        .await
                        .unwrap()
                        .into_iter()
                        .find(|worker| worker.name == name);
                    if let Some(worker) = worker.filter(|w| w.state == WorkerState::Busy) {
                        seen.extend(worker.last_heartbeat);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                seen.len()
            })
        })
        .await
        .unwrap();
        assert!(
            beats >= 3,
            "heartbeats kept coming while the job held the runtime: {beats}"
        );
        wait_status(&conn, job.id(), JobStatus::Finished).await;
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    multi_thread async fn a_slow_webhook_does_not_hold_the_jobs_slot(store: &Store) {
        let conn = store.connect().await;
        // An endpoint that takes the request and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}", listener.local_addr().unwrap());
        let (accepted, mut requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = accepted.send(socket);
            }
        });
        let queue = Queue::new(&conn, "default");
        let first = queue
            .enqueue("fixtures.add", (1, 1))
            .webhook(
                rqrs::Webhook::new(hook, rqrs::WebhookStatus::Finished)
                    .timeout(Duration::from_secs(600)),
            )
            .send()
            .await
            .unwrap();
        let (_, stop, task) = spawn_worker(&conn, 1);
        let pending = requests.recv().await.expect("the webhook is being sent");
        // One slot, held by nothing now: the next job runs while the webhook waits.
        let second = queue.enqueue("fixtures.add", (2, 2)).send().await.unwrap();
        wait_status(&conn, second.id(), JobStatus::Finished).await;
        assert_eq!(
            Job::fetch(&conn, first.id()).await.unwrap().status(),
            JobStatus::Finished
        );
        // A cold stop does not wait for webhooks.
        stop.cold();
        task.await.unwrap().unwrap();
        drop(pending);
    }
}

on_every_backend! {
    /// RQ 3.0's `stop-execution` stops the run it names, and only that one: a command naming
    /// another run of the job is ignored.
    async fn a_stop_execution_command_stops_the_run_it_names(store: &Store) {
        let conn = store.connect().await;
        let functions = Functions::new().register("runs.tell", |ctx: JobContext, (): ()| async move {
            ctx.set_meta("execution", ctx.execution_id().to_owned());
            ctx.save_meta().await?;
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, rqrs::JobError>(())
        });
        let worker = Worker::builder(&conn)
            .queues(["default"])
            .functions(rqrs_test::fixtures::functions().merge(functions))
            .build()
            .unwrap();
        let stop = worker.shutdown_handle();
        let task = tokio::spawn(worker.work());
        let job = Queue::new(&conn, "default")
            .enqueue("runs.tell", ())
            .send()
            .await
            .unwrap();
        let execution = rqrs_test::wait_for("the run to tell its execution", HANG, || async {
            let job = Job::fetch(&conn, job.id()).await.ok()?;
            job.meta().get("execution")?.as_str().map(str::to_owned)
        })
        .await;
        // Heard (the control channel is up) but for another run: the job runs on.
        rqrs_test::wait_for("the stop-execution command to be heard", HANG, || async {
            rqrs::send_stop_execution_command(&conn, job.id(), "another-run")
                .await
                .unwrap()
                .then_some(())
        })
        .await;
        assert!(rqrs::send_stop_execution_command(&conn, job.id(), &execution).await.unwrap());
        let stopped = wait_status(&conn, job.id(), JobStatus::Stopped).await;
        assert_eq!(stopped.results().await.unwrap().len(), 1, "one run, stopped once");
        stop.warm();
        task.await.unwrap().unwrap();
    }
}

on_every_backend! {
    /// Many round trips under way at once and slots that free up together: the burst still
    /// ends as soon as the queue is empty, with every job recorded once.
    async fn a_busy_burst_worker_records_every_job_and_stops(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default");
        queue
            .enqueue_many((0..2000).map(|_| queue.enqueue("fixtures.noop", ())))
            .await
            .unwrap();
        work(&conn, &["default"], 64, Functions::new()).await;
        assert_eq!(queue.count().await.unwrap(), 0);
        assert_eq!(
            FinishedJobRegistry::new(&conn, "default")
                .count()
                .await
                .unwrap(),
            2000
        );
    }
}

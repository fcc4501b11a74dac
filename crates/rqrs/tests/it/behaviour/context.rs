use std::sync::Arc;
use std::time::Duration;

use rqrs::{Functions, Job, JobContext, JobError, JobStatus, Queue};
use serde_json::json;
use tokio::sync::Notify;

use crate::work;

on_every_backend! {
    async fn meta_saved_mid_job_is_seen_by_fetchers_while_it_runs(store: &Store) {
        let conn = store.connect().await;
        let release = Arc::new(Notify::new());
        let gate = Arc::clone(&release);
        let functions = Functions::new().register("tests.step", move |ctx: JobContext, (): ()| {
            let gate = Arc::clone(&gate);
            async move {
                ctx.set_meta("step", 1);
                ctx.save_meta().await?;
                gate.notified().await;
                Ok::<_, JobError>(())
            }
        });
        let queue = Queue::new(&conn, "default");
        let job = queue
            .enqueue("tests.step", ())
            .meta(json!({"owner": "test"}))
            .send()
            .await
            .unwrap();
        let worker = tokio::spawn({
            let conn = conn.clone();
            async move { work(&conn, &["default"], 1, functions).await }
        });
        let seen = rqrs_test::wait_for("meta saved mid-job", Duration::from_secs(20), || async {
            Job::fetch(&conn, job.id())
                .await
                .ok()
                .filter(|job| job.meta().contains_key("step"))
        })
        .await;
        assert_eq!(seen.status(), JobStatus::Started);
        assert_eq!(
            seen.meta().get("owner"),
            Some(&json!("test")),
            "meta given at enqueue is kept"
        );
        release.notify_one();
        worker.await.unwrap();
        let done = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(done.status(), JobStatus::Finished);
        assert_eq!(
            done.meta().get("step"),
            Some(&json!(1)),
            "the worker does not overwrite meta"
        );
    }
}

on_every_backend! {
    async fn current_job_works_in_async_and_blocking_functions(store: &Store) {
        let conn = store.connect().await;
        assert!(rqrs::current_job().is_none());
        let blocking = Functions::new().register_blocking(
            "tests.blocking_meta",
            |_ctx: JobContext, (value,): (i64,)| {
                let job = rqrs::current_job().ok_or_else(|| JobError::new("no current job"))?;
                job.set_meta("blocking", value);
                job.save_meta_blocking()?;
                Ok(job.id().to_string())
            },
        );
        let queue = Queue::new(&conn, "default");
        let async_job = queue
            .enqueue("fixtures.set_meta", ("k", json!({"nested": [1]})))
            .send()
            .await
            .unwrap();
        let blocking_job = queue
            .enqueue("tests.blocking_meta", (7,))
            .send()
            .await
            .unwrap();
        work(&conn, &["default"], 2, blocking).await;

        let async_job = Job::fetch(&conn, async_job.id()).await.unwrap();
        assert_eq!(async_job.meta().get("k"), Some(&json!({"nested": [1]})));
        assert_eq!(
            async_job.return_value().await.unwrap(),
            Some(json!(async_job.id().as_str()))
        );
        let blocking_job = Job::fetch(&conn, blocking_job.id()).await.unwrap();
        assert_eq!(blocking_job.meta().get("blocking"), Some(&json!(7)));
        assert_eq!(
            blocking_job.return_value().await.unwrap(),
            Some(json!(blocking_job.id().as_str()))
        );
    }
}

on_every_backend! {
    async fn save_meta_from_a_fetched_job(store: &Store) {
        let conn = store.connect().await;
        let job = Queue::new(&conn, "default")
            .enqueue("f", ())
            .send()
            .await
            .unwrap();
        let mut fetched = Job::fetch(&conn, job.id()).await.unwrap();
        fetched.meta_mut().insert("by".into(), json!("producer"));
        fetched.save_meta().await.unwrap();
        fetched.refresh().await.unwrap();
        assert_eq!(fetched.meta().get("by"), Some(&json!("producer")));
    }
}

on_every_backend! {
    async fn progress_is_kept_in_meta(store: &Store) {
        let conn = store.connect().await;
        let queue = Queue::new(&conn, "default").inline(rqrs_test::fixtures::functions());
        let job = queue
            .enqueue("fixtures.progress", (4, 0))
            .send()
            .await
            .unwrap();
        assert_eq!(
            job.meta().get("progress"),
            Some(&json!({"done": 4, "total": 4, "percent": 100.0}))
        );
    }
}

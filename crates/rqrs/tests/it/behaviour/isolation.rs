//! Process isolation, as far as the library's test binary can see it: the builder's checks and
//! the work horse entry. The test binary cannot be re-executed as a work horse, so the
//! end-to-end tests (timeouts, crashes, memory cap, reuse, stop-job) are in rqrs-cli's, with
//! the `worker` example.

use rqrs::{Isolation, Worker};
on_every_backend! {
    async fn a_memory_cap_needs_process_isolation(store: &Store) {
        let conn = store.connect().await;
        let builder = || {
            Worker::builder(&conn)
                .queues(["default"])
                .functions(rqrs_test::fixtures::functions())
                .max_memory_per_job(1 << 30)
        };
        let error = builder().build().unwrap_err();
        assert!(
            error.to_string().contains("needs process isolation"),
            "{error}"
        );
        builder().isolation(Isolation::Process).build().unwrap();
    }
}

#[test]
fn a_process_not_started_by_a_worker_is_no_work_horse() {
    assert!(rqrs::run_work_horse_if_child(&rqrs_test::fixtures::functions()).is_none());
}

on_every_backend! {
    /// Run as a child of itself: the re-executed test binary is marked as a work horse of this
    /// process but never serves as one (it calls no `run_work_horse_if_child`), so building a worker
    /// there must fail instead of starting a worker that would start horses of its own.
    async fn a_binary_that_does_not_serve_as_a_work_horse_refuses_to_build_a_worker_in_one(store: &Store) {
        // Every backend's run of this test: each returns at once in the child.
        const NAME: &str = "behaviour::isolation::\
            a_binary_that_does_not_serve_as_a_work_horse_refuses_to_build_a_worker_in_one::";
        if std::env::var_os("RQRS_WORK_HORSE").is_some() {
            let conn = store.connect().await;
            let error = Worker::builder(&conn)
                .queues(["default"])
                .isolation(Isolation::Process)
                .build()
                .unwrap_err();
            assert!(
                error.to_string().contains("run_work_horse_if_child"),
                "{error}"
            );
            return;
        }
        let output = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--nocapture"])
            .env("RQRS_WORK_HORSE", std::process::id().to_string())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("test result: ok") && !stdout.contains(" 0 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

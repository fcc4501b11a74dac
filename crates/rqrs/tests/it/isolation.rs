//! Process isolation, as far as the library's test binary can see it: the builder's checks and
//! the work horse entry. The test binary cannot be re-executed as a work horse, so the
//! end-to-end tests (timeouts, crashes, memory cap, reuse, stop-job) are in rqrs-cli's, with
//! the `worker` example.

use rqrs::{Isolation, Worker};

use crate::setup;

#[tokio::test]
async fn a_memory_cap_needs_process_isolation() {
    let (_server, conn) = setup().await;
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

#[test]
fn a_process_not_started_by_a_worker_is_no_work_horse() {
    assert!(rqrs::run_work_horse_if_child(&rqrs_test::fixtures::functions()).is_none());
}

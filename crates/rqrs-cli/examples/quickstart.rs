//! Quickstart: enqueue a few jobs on the `quickstart` queue of a local Redis, run a burst
//! worker with 8 jobs at a time until the queue is empty, and print each job's status and
//! outcome.
//!
//! ```text
//! redis-server &                       # or point RQRS_URL at a Redis you have
//! cargo run --release -p rqrs-cli --example quickstart
//! ```
//!
//! The job functions are the fixtures of `rqrs-test` (`fixtures.add`, `fixtures.echo`,
//! `fixtures.sleep`, `fixtures.fail`, ...), the same ones the `worker` example runs.

use anyhow::Context as _;
use rqrs::{Job, JobStatus, Queue, Worker};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("RQRS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let conn = rqrs::connect(&url)
        .await
        .with_context(|| format!("connecting to {url} (start redis-server, or set RQRS_URL)"))?;

    // A queue of its own, so that the burst worker below runs only these jobs.
    let queue = Queue::new(&conn, "quickstart");
    let jobs = vec![
        queue.enqueue("fixtures.add", (1, 2)).send().await?,
        queue.enqueue("fixtures.add", (20, 22)).send().await?,
        queue
            .enqueue("fixtures.echo", ("hello",))
            .kwargs(json!({"from": "rqrs"}))
            .send()
            .await?,
        queue.enqueue("fixtures.sleep", (0.5,)).send().await?,
        queue.enqueue("fixtures.sleep", (0.5,)).send().await?,
        queue
            .enqueue("fixtures.fail", ("this one fails on purpose",))
            .send()
            .await?,
    ];
    println!("enqueued {} jobs on {url}, queue quickstart", jobs.len());

    Worker::builder(&conn)
        .queues(["quickstart"])
        .functions(rqrs_test::fixtures::functions())
        .concurrency(8)
        .burst(true)
        .build()?
        .work()
        .await?;

    for job in jobs {
        let job = Job::fetch(&conn, job.id()).await?;
        let outcome = match job.status() {
            JobStatus::Finished => {
                format!("returned {}", job.return_value().await?.unwrap_or_default())
            }
            JobStatus::Failed => format!("failed: {}", job.exc_info().await?.unwrap_or_default()),
            _ => String::new(),
        };
        println!(
            "{}  {:<8}  {:<32}  {outcome}",
            job.id(),
            job.status().as_str(),
            job.description().unwrap_or(job.func_name()),
        );
    }
    Ok(())
}

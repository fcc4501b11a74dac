//! Quickstart: the background jobs of a small shop, with no server: the queue lives in a SQLite
//! file, `target/quickstart.db` (or the store `RQRS_URL` names, Redis included).
//!
//! The shop enqueues 3,000 jobs: receipts to e-mail (some addresses are wrong, and one mail
//! server is down, so those fail), thumbnails to render (each saves its progress and checksum
//! in the job's meta), a card charge whose payment gateway times out twice before it goes
//! through (retried a second later), and reminders scheduled a few seconds ahead. One worker
//! runs them, 32 at a time, while a progress bar shows how far it is; then the program prints
//! what happened (throughput, each kind's outcome, the failures and their reasons), requeues
//! the failed jobs once the mail server is back, and says how to look at the file with the CLI.
//!
//! ```text
//! cargo run --release -p rqrs-cli --example quickstart
//! cargo run --release -p rqrs-cli -- --url sqlite://target/quickstart.db info
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rqrs::{
    Connection, FailedJobRegistry, Functions, Job, JobContext, JobError, JobId, JobStatus, Queue,
    Retry, Worker,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The store when `RQRS_URL` is not set: a file of this run's own (made again each run).
const DEFAULT_FILE: &str = "target/quickstart.db";
const QUEUE: &str = "quickstart";
const RECEIPTS: usize = 2500;
const THUMBNAILS: usize = 479;
const REMINDERS: usize = 20;

/// Whether the mail server of `example.invalid` is down (it comes back before the requeue).
static MAIL_DOWN: AtomicBool = AtomicBool::new(true);

#[derive(Deserialize)]
struct Receipt {
    order: u64,
    email: String,
}

/// E-mails the receipt of an order.
async fn send_receipt(
    _job: JobContext,
    Receipt { order, email }: Receipt,
) -> Result<Value, JobError> {
    let Some((_, domain)) = email
        .split_once('@')
        .filter(|(user, domain)| !user.is_empty() && domain.contains('.'))
    else {
        return Err(JobError::new(format!(
            "bad address: {email:?} is not an e-mail address (order {order})"
        )));
    };
    if domain == "example.invalid" && MAIL_DOWN.load(Ordering::Relaxed) {
        return Err(JobError::new(format!(
            "mail server down: mail.{domain} refused the connection (order {order})"
        )));
    }
    tokio::time::sleep(Duration::from_millis(2)).await; // the mail server's answer
    Ok(json!({"order": order, "sent_to": email}))
}

#[derive(Deserialize)]
struct Thumbnail {
    image: String,
    size: u32,
}

/// Renders a thumbnail (on a thread of its own: it is CPU work), saving its progress in the
/// job's meta after each quarter, and its checksum at the end.
#[expect(
    clippy::needless_pass_by_value,
    reason = "a blocking function takes its job context by value"
)]
fn render_thumbnail(
    job: JobContext,
    Thumbnail { image, size }: Thumbnail,
) -> Result<Value, JobError> {
    let mut checksum: u32 = 0x811c_9dc5;
    for quarter in 1..=4 {
        for pixel in 0..size * size / 4 {
            checksum = (checksum ^ (pixel * quarter)).wrapping_mul(0x0100_0193);
        }
        job.set_progress_blocking(u64::from(quarter), 4)?;
    }
    // The job is reachable from anywhere its function calls, not only through its argument.
    if let Some(current) = rqrs::current_job() {
        current.set_meta("checksum", format!("{checksum:08x}"));
        current.save_meta_blocking()?;
    }
    Ok(json!({"image": image, "size": size, "checksum": format!("{checksum:08x}")}))
}

#[derive(Deserialize)]
struct Charge {
    order: u64,
    cents: u64,
}

/// Charges a card; the payment gateway times out on the first two attempts.
async fn charge_card(job: JobContext, Charge { order, cents }: Charge) -> Result<Value, JobError> {
    let attempt = job
        .meta()
        .get("attempts")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        + 1;
    job.set_meta("attempts", attempt);
    job.save_meta().await?;
    if attempt < 3 {
        return Err(JobError::new(format!(
            "gateway timeout: the payment gateway did not answer (attempt {attempt})"
        )));
    }
    Ok(json!({"order": order, "charged_cents": cents, "attempt": attempt}))
}

/// Reminds a customer of the cart they left.
async fn send_reminder(_job: JobContext, (customer,): (String,)) -> Result<Value, JobError> {
    Ok(json!({"reminded": customer}))
}

fn shop() -> Functions {
    Functions::new()
        .register("shop.send_receipt", send_receipt)
        .register_blocking("shop.render_thumbnail", render_thumbnail)
        .register("shop.charge_card", charge_card)
        .register("shop.send_reminder", send_reminder)
}

/// The store's URL: `RQRS_URL`, or a fresh [`DEFAULT_FILE`].
fn store_url() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("RQRS_URL") {
        return Ok(url);
    }
    std::fs::create_dir_all("target").context("making the folder target/")?;
    for suffix in ["", "-wal", "-shm", "-wake"] {
        let path = format!("{DEFAULT_FILE}{suffix}");
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error).with_context(|| format!("removing {path} of an earlier run"));
            }
            _ => {}
        }
    }
    Ok(format!("sqlite://{DEFAULT_FILE}"))
}

/// The jobs of one kind.
struct Kind {
    name: &'static str,
    ids: Vec<JobId>,
    /// Whether they wait (for their time, or a retry's), so that they are not counted in the
    /// throughput.
    waits: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = store_url()?;
    let shown = rqrs::redact_url(&url);
    let conn = rqrs::connect(&url)
        .await
        .with_context(|| format!("opening {shown}"))?;
    println!("rqrs quickstart: a shop's background jobs in {shown}");

    let enqueued = Instant::now();
    let kinds = enqueue(&conn).await?;
    let total: usize = kinds.iter().map(|kind| kind.ids.len()).sum();
    println!(
        "enqueued {total} jobs in {:.2} s: {RECEIPTS} receipts, {THUMBNAILS} thumbnails, 1 card \
         charge, {REMINDERS} reminders due in 2 to 4 s",
        enqueued.elapsed().as_secs_f64()
    );

    let worker = Worker::builder(&conn)
        .queues([QUEUE])
        .functions(shop())
        .concurrency(32)
        .with_scheduler(true)
        .handle_signals(false)
        .build()?;
    let stop = worker.shutdown_handle();
    let started = Instant::now();
    let working = tokio::spawn(worker.work());
    // A second connection watches, as another process would.
    let watch = rqrs::connect(&url).await?;
    let (scheduled, now): (Vec<&Kind>, Vec<&Kind>) = kinds.iter().partition(|kind| kind.waits);
    let immediate: Vec<JobId> = now.iter().flat_map(|kind| kind.ids.clone()).collect();
    wait_for_ends(&watch, &immediate, "working").await?;
    let elapsed = started.elapsed();
    println!(
        "worked {} jobs in {:.2} s: {:.0} jobs/s, 32 at a time",
        immediate.len(),
        elapsed.as_secs_f64(),
        immediate.len() as f64 / elapsed.as_secs_f64()
    );
    let later: Vec<JobId> = scheduled.iter().flat_map(|kind| kind.ids.clone()).collect();
    wait_for_ends(&watch, &later, "waiting for the retries and reminders").await?;
    for kind in &kinds {
        println!("  {}", describe(&watch, kind).await?);
    }

    let failed = FailedJobRegistry::new(&watch, QUEUE);
    let failures = failed.job_ids().await?;
    println!("failures ({}), by reason:", failures.len());
    let mut reasons: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for job in Job::fetch_many(&watch, &failures)
        .await?
        .into_iter()
        .flatten()
    {
        let reason = job.exc_info().await?.unwrap_or_default();
        let kind = reason.split(':').next().unwrap_or_default().to_owned();
        reasons.entry(kind).or_insert((0, reason)).0 += 1;
    }
    for (count, example) in reasons.values() {
        println!("  {count:>4}  {example}");
    }

    MAIL_DOWN.store(false, Ordering::Relaxed);
    let requeued = failed.requeue_all().await?;
    println!("the mail server is back: requeued {requeued} failed jobs");
    wait_for_ends(&watch, &failures, "working the requeued jobs").await?;
    let again = Job::fetch_many(&watch, &failures).await?;
    let sent = again
        .iter()
        .flatten()
        .filter(|job| job.status() == JobStatus::Finished)
        .count();
    println!(
        "  {sent} sent now; {} failed again (wrong addresses: fix them, then requeue)",
        failures.len() - sent
    );

    stop.warm();
    working.await.context("the worker's task")??;
    let example = failures.first().map_or("<job id>", JobId::as_str);
    println!("look at the jobs with the command line:");
    println!("  cargo run --release -p rqrs-cli -- --url {shown} info");
    println!("  cargo run --release -p rqrs-cli -- --url {shown} job show {example}");
    Ok(())
}

/// Enqueues the shop's jobs: the receipts and thumbnails in batches (one transaction each),
/// the charge and the reminders one by one.
async fn enqueue(conn: &Connection) -> anyhow::Result<Vec<Kind>> {
    let queue = Queue::new(conn, QUEUE);
    let mut receipts = Vec::with_capacity(RECEIPTS);
    for batch in (0..RECEIPTS as u64).collect::<Vec<_>>().chunks(500) {
        let jobs = queue
            .enqueue_many(batch.iter().map(|&order| {
                let email = match order % 100 {
                    0 | 50 => format!("customer{order}.example.com"),
                    7 => format!("customer{order}@example.invalid"),
                    _ => format!("customer{order}@example.com"),
                };
                queue.enqueue("shop.send_receipt", (order, email))
            }))
            .await?;
        receipts.extend(jobs.iter().map(|job| job.id().clone()));
    }
    let thumbnails = queue
        .enqueue_many((0..THUMBNAILS).map(|i| {
            let size = 64 + 32 * (i % 4);
            queue.enqueue("shop.render_thumbnail", (format!("photos/{i}.jpg"), size))
        }))
        .await?
        .iter()
        .map(|job| job.id().clone())
        .collect();
    let charge = queue
        .enqueue("shop.charge_card", (7, 4200))
        .retry(Retry::new(2).interval(1))
        .description("charge order 7")
        .send()
        .await?;
    let mut reminders = Vec::with_capacity(REMINDERS);
    for i in 0..REMINDERS {
        let delay = Duration::from_millis(2000 + 100 * i as u64);
        let job = queue
            .enqueue_in(delay, "shop.send_reminder", (format!("customer{i}"),))
            .send()
            .await?;
        reminders.push(job.id().clone());
    }
    Ok(vec![
        Kind {
            name: "receipts",
            ids: receipts,
            waits: false,
        },
        Kind {
            name: "thumbnails",
            ids: thumbnails,
            waits: false,
        },
        Kind {
            name: "card charge",
            ids: vec![charge.id().clone()],
            waits: true,
        },
        Kind {
            name: "reminders",
            ids: reminders,
            waits: true,
        },
    ])
}

/// Waits until every job of `ids` has finished or failed, with a progress bar (on the
/// terminal only).
async fn wait_for_ends(conn: &Connection, ids: &[JobId], what: &str) -> anyhow::Result<()> {
    let bar = ProgressBar::new(ids.len() as u64).with_message(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} jobs, {per_sec}, {elapsed}")
            .context("the progress bar's template")?
            .progress_chars("=> "),
    );
    let mut waiting: HashSet<JobId> = ids.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !waiting.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} jobs still not done after 5 minutes: is the worker stuck?",
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pending: Vec<JobId> = waiting.iter().cloned().collect();
        for chunk in pending.chunks(1000) {
            for (id, job) in chunk.iter().zip(Job::fetch_many(conn, chunk).await?) {
                let ended = job.is_none_or(|job| {
                    matches!(job.status(), JobStatus::Finished | JobStatus::Failed)
                });
                if ended {
                    waiting.remove(id);
                }
            }
        }
        bar.set_position((ids.len() - waiting.len()) as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// One line on how the jobs of a kind ended.
async fn describe(conn: &Connection, kind: &Kind) -> anyhow::Result<String> {
    let jobs: Vec<Job> = Job::fetch_many(conn, &kind.ids)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let finished: Vec<&Job> = jobs
        .iter()
        .filter(|job| job.status() == JobStatus::Finished)
        .collect();
    let failed = jobs.len() - finished.len();
    let detail = match kind.name {
        "thumbnails" => finished.first().map(|job| {
            format!(
                "; the meta of each holds its progress ({}% for {}) and checksum ({})",
                job.meta()["progress"]["percent"],
                job.id(),
                job.meta()["checksum"].as_str().unwrap_or_default()
            )
        }),
        "card charge" => match finished.first() {
            Some(job) => {
                let mut runs: Vec<&'static str> = Vec::new();
                for result in job.results().await?.iter().rev() {
                    runs.push(match result.result_type() {
                        rqrs::ResultType::Successful => "finished",
                        _ => "failed",
                    });
                }
                Some(format!("; its runs: {}", runs.join(", ")))
            }
            None => None,
        },
        "reminders" => {
            let waits: Vec<f64> = finished
                .iter()
                .filter_map(|job| Some((job.started_at()? - job.created_at()?).as_seconds_f64()))
                .collect();
            let first = waits.iter().copied().fold(f64::INFINITY, f64::min);
            let last = waits.iter().copied().fold(0.0, f64::max);
            (!waits.is_empty()).then(|| {
                format!("; they ran {first:.1} to {last:.1} s after their enqueue, as scheduled")
            })
        }
        _ => None,
    };
    Ok(format!(
        "{:<12} {} finished, {failed} failed{}",
        kind.name,
        finished.len(),
        detail.unwrap_or_default()
    ))
}

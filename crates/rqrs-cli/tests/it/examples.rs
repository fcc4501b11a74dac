//! The examples run against a live store, so that none goes stale.

use std::path::Path;

use rqrs::{FailedJobRegistry, Queue};
use tokio::process::Command;

use crate::{Url, example, output, rqrs, success};

/// The store a run of the quickstart left, named by its URL.
struct Ran(String);

impl Url for Ran {
    fn url(&self) -> String {
        self.0.clone()
    }
}

/// Runs the quickstart in `dir` (with `RQRS_URL` when `url` is given), checks what it prints,
/// and returns the id of a job it says to look at, with the CLI.
async fn quickstart(dir: &Path, url: Option<&str>) -> String {
    let mut command = Command::new(example("quickstart"));
    command.current_dir(dir);
    match url {
        Some(url) => command.env("RQRS_URL", url),
        None => command.env_remove("RQRS_URL"),
    };
    let stdout = success(&output(command, "quickstart").await, "quickstart");
    let lines: Vec<&str> = stdout.lines().collect();
    let line = |start: &str| -> &str {
        lines
            .iter()
            .find(|line| line.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starts with {start:?}:\n{stdout}"))
    };
    let shown = url.unwrap_or("sqlite://target/quickstart.db");
    assert!(
        line("rqrs quickstart:").ends_with(&format!(" in {shown}")),
        "{stdout}"
    );
    assert!(
        line("enqueued 3000 jobs in").contains("20 reminders"),
        "{stdout}"
    );
    assert!(line("worked 2979 jobs in").contains("jobs/s"), "{stdout}");
    assert!(
        line("receipts").contains("2425 finished, 75 failed"),
        "{stdout}"
    );
    assert!(
        line("thumbnails").contains("479 finished, 0 failed")
            && line("thumbnails").contains("100.0%"),
        "{stdout}"
    );
    assert!(
        line("card charge").ends_with("its runs: failed, failed, finished"),
        "{stdout}"
    );
    assert!(
        line("reminders").contains("20 finished, 0 failed"),
        "{stdout}"
    );
    assert!(line("failures (75)").ends_with("by reason:"), "{stdout}");
    assert!(
        line("50  bad address:").contains("is not an e-mail address"),
        "{stdout}"
    );
    assert!(
        line("25  mail server down:").contains("refused"),
        "{stdout}"
    );
    assert!(
        line("the mail server is back:").ends_with("requeued 75 failed jobs"),
        "{stdout}"
    );
    assert!(
        line("25 sent now; 50 failed again").contains("fix them"),
        "{stdout}"
    );
    line(&format!(
        "cargo run --release -p rqrs-cli -- --url {shown} info"
    ));
    line(&format!(
        "cargo run --release -p rqrs-cli -- --url {shown} job show "
    ))
    .rsplit(' ')
    .next()
    .unwrap_or_default()
    .to_owned()
}

/// What the quickstart left in its store: the queue empty, 50 jobs failed, and the CLI
/// commands it prints work.
async fn check_the_store(store: &Ran, example_job: &str) {
    let conn = rqrs::connect(&store.url()).await.unwrap();
    assert!(Queue::new(&conn, "quickstart").is_empty().await.unwrap());
    assert_eq!(
        FailedJobRegistry::new(&conn, "quickstart")
            .count()
            .await
            .unwrap(),
        50
    );
    let info = rqrs(store, &["info"]).await;
    assert!(info.contains("quickstart"), "{info}");
    let shown = rqrs(store, &["job", "show", example_job]).await;
    assert!(
        shown.contains("failed") && shown.contains("bad address"),
        "{shown}"
    );
}

#[tokio::test]
async fn quickstart_runs_with_no_server_in_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let job = quickstart(dir.path(), None).await;
    let file = dir.path().join("target/quickstart.db");
    assert!(file.is_file(), "no {}", file.display());
    check_the_store(&Ran(format!("sqlite://{}", file.display())), &job).await;
    // A second run starts again from an empty file.
    quickstart(dir.path(), None).await;
}

#[tokio::test]
async fn quickstart_runs_on_the_store_rqrs_url_names() {
    let server = rqrs_test::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let job = quickstart(dir.path(), Some(&server.url())).await;
    check_the_store(&Ran(server.url()), &job).await;
}

//! The examples run against a live server, so that none goes stale.

use tokio::process::Command;

use crate::{example, output, setup, success};

#[tokio::test]
async fn quickstart_runs_its_jobs_and_prints_their_outcomes() {
    let (server, conn) = setup().await;
    let mut command = Command::new(example("quickstart"));
    command.env("RQRS_URL", server.url());
    let stdout = success(&output(command, "quickstart").await, "quickstart");

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    assert!(lines[0].starts_with("enqueued 6 jobs on "), "{stdout}");
    assert!(
        lines[1].contains("finished") && lines[1].contains("returned 3"),
        "{stdout}"
    );
    assert!(lines[2].contains("returned 42"), "{stdout}");
    assert!(
        lines[3].contains(r#"returned {"args":["hello"],"kwargs":{"from":"rqrs"}}"#),
        "{stdout}"
    );
    assert!(
        lines[6].contains("failed") && lines[6].contains("fails on purpose"),
        "{stdout}"
    );
    assert!(
        rqrs::Queue::new(&conn, "quickstart")
            .is_empty()
            .await
            .unwrap()
    );
}

//! Scenario e: workers connect through Sentinels (`redis+sentinel://`), and the master is
//! SIGKILLed while they run jobs; the Sentinels promote the replica, and the killed server
//! comes back as a replica for the next failover. The workers must follow the master on their
//! own (they may not exit), and every job must end finished.
//!
//! Redis replicates asynchronously: writes the old master acknowledged in the last moments
//! before it died may never reach the replica. The jobs are enqueued (and replicated) before
//! the first failover, so none can be lost that way; a run whose dequeue or finish was lost
//! with the old master runs again (at-least-once), so duplicates are counted, bounded by the
//! runs in flight, and not refused. The time to recover is from the kill to the first job
//! finished on the new master.

use std::time::{Duration, Instant};

use rqrs::FinishedJobRegistry;
use rqrs_test::SentinelGroup;

use crate::{
    Appends, QUEUE, Summary, all_finished, census, duplicates, hang, knob, lines, runs, secs,
    settle,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_loses_no_job_and_workers_follow_the_master() {
    let jobs = knob("RQRS_FAULT_JOBS", 300);
    let failovers = knob("RQRS_FAULT_FAILOVERS", 1);
    let workers = knob("RQRS_FAULT_WORKERS", 3).max(1);
    let mut group = tokio::task::spawn_blocking(|| SentinelGroup::start(1, 3))
        .await
        .unwrap();
    let conn = rqrs::connect(&group.url()).await.unwrap();
    let appends = Appends::enqueue(&conn, group.url(), "failover", jobs).await;
    let (path, ids) = (&appends.path, &appends.ids);
    tokio::task::block_in_place(|| group.replicate());
    let mut pool = appends.start_workers(workers, |i| format!("failover-{i}"));
    let finished = FinishedJobRegistry::new(&conn, QUEUE);
    // (time from the kill to the Sentinels naming a new master, to the next finished job)
    let mut records: Vec<(Duration, Duration)> = Vec::new();
    for f in 1..=failovers {
        appends.progress_to(f, failovers, "failover").await;
        let before = lines(path);
        let (killed, old) = tokio::task::block_in_place(|| {
            let old = group.kill_master();
            (Instant::now(), old)
        });
        let new = tokio::task::block_in_place(|| group.wait_for_failover(old));
        let promoted = killed.elapsed();
        // The first run that ends after the failover and is recorded on the new master.
        let count_on_new = finished.count().await.unwrap_or(0);
        let deadline = Instant::now() + hang();
        loop {
            let now = finished.count().await.unwrap_or(0);
            if (now > count_on_new && lines(path) > before) || now >= jobs {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no job finished on the new master (port {new}) after failover {f}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        records.push((promoted, killed.elapsed()));
        for worker in &mut pool {
            worker.assert_running(&format!("after failover {f}"));
        }
        // The Sentinels make a returning old master a replica only after seeing it report
        // itself master for a while (some 10 s), so this waits only where it must, with the
        // workers suspended so that work is left for the next failover.
        if f < failovers {
            rqrs::suspend(&conn, None).await.unwrap();
            tokio::task::block_in_place(|| group.rejoin(old));
            rqrs::resume(&conn).await.unwrap();
        }
    }

    let settled = settle(&conn, ids, async || {}).await;
    let elapsed = appends.started.elapsed();
    for worker in &mut pool {
        worker.assert_running("after the work");
    }
    for worker in pool {
        worker.stop().await;
    }

    let census = census(&conn, ids).await;
    let runs = runs(path, jobs);
    let (never, twice) = duplicates(&runs, ids);
    let in_flight = workers * appends.options.concurrency * failovers;
    let recovery = records
        .iter()
        .map(|(_, first)| *first)
        .max()
        .unwrap_or_default();
    Summary {
        scenario: "sentinel failovers".to_owned(),
        jobs,
        faults: format!(
            "{failovers} kill -9 of the master + Sentinel failover (1 replica, 3 Sentinels), \
             {workers} workers"
        ),
        lost: census.lost.len() + never.len(),
        duplicated: twice.len(),
        stuck: census.stuck.len(),
        recovery: secs(recovery),
        elapsed,
        notes: format!(
            "recovery = kill until the next job finished on the new master, per failover \
             (Sentinels named the new master, first job finished): {}; jobs run twice: {} (runs \
             in flight at the kills: at most {in_flight}); abandoned runs requeued by the \
             suite: {}; other failures: {}; workers kept running: yes",
            records
                .iter()
                .map(|(promoted, first)| format!("({}, {})", secs(*promoted), secs(*first)))
                .collect::<Vec<_>>()
                .join(" "),
            twice.len(),
            settled.requeued_abandoned.len(),
            settled.failed_otherwise.len()
        ),
    }
    .print();

    all_finished(&settled, &census, &never, jobs);
    assert!(
        twice.len() <= in_flight,
        "{} jobs ran twice, more than the {in_flight} runs in flight at the kills",
        twice.len()
    );
}

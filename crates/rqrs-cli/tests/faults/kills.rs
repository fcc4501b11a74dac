//! Scenario a: worker processes are SIGKILLed while they run jobs, and others are started in
//! their place. The runs a killed worker held stay in the started registry until their
//! deadline passes (five heartbeats, 10 s at the defaults); maintenance then recovers them. Nothing may be lost or
//! stuck; a job may run twice only if its run was cut by a kill. The same with cold stops
//! (SIGTERM twice), which put the runs back on the queue at once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rqrs::JobId;

use crate::{
    Appends, Rng, Summary, WorkerProcess, all_done, all_finished, census, duplicates, knob,
    on_every_backend, runs, runs_of, secs, seed, settle,
};

/// A kill and what it cut.
struct Kill {
    at: Instant,
    /// The killed worker.
    name: String,
    /// The jobs whose runs the killed worker held.
    orphans: Vec<JobId>,
    /// When none of its runs was left in the started registry (all recovered: back on the
    /// queue, or failed).
    back: Option<Duration>,
    /// When all of them had finished again.
    recovered: Option<Duration>,
}

/// Times the recoveries of the kills so far: when no run of the killed worker is left in the
/// started registry, and when all its cut jobs have finished again.
async fn observe(conn: &rqrs::Connection, records: &mut [Kill]) {
    for kill in records.iter_mut().filter(|kill| kill.back.is_none()) {
        if runs_of(conn, &kill.name).await.is_empty() {
            kill.back = Some(kill.at.elapsed());
        }
    }
    for kill in records.iter_mut().filter(|kill| kill.recovered.is_none()) {
        if all_done(conn, &kill.orphans).await {
            kill.recovered = Some(kill.at.elapsed());
        }
    }
}

on_every_backend! {
async fn killed_workers_lose_no_job(store: Store) {
    let jobs = knob("RQRS_FAULT_JOBS", 300);
    let kills = knob("RQRS_FAULT_KILLS", 3);
    let workers = knob("RQRS_FAULT_WORKERS", 3).max(1);
    let seed = seed();
    let mut rng = Rng(seed);
    let conn = store.connect().await;
    let appends = Appends::enqueue(&conn, store.url(), &format!("kills-{}", store.backend()), jobs).await;
    let mut pool = appends.start_workers(workers, |i| format!("kills-{i}-0"));
    let mut records: Vec<Kill> = Vec::new();
    for k in 1..=kills {
        appends
            .progress_to_observing(k, kills, "kill", async || observe(&conn, &mut records).await)
            .await;
        let victim = rng.below(pool.len());
        pool[victim].kill().await;
        let at = Instant::now();
        let name = pool[victim].name.clone();
        let orphans = runs_of(&conn, &name).await;
        records.push(Kill {
            at,
            name: name.clone(),
            orphans,
            back: None,
            recovered: None,
        });
        pool[victim] = WorkerProcess::start(
            &appends.options,
            format!("kills-{victim}-{k}"),
            &appends.logs,
        );
    }

    let settled = settle(&conn, &appends.ids, async || observe(&conn, &mut records).await).await;
    let elapsed = appends.started.elapsed();
    for worker in pool {
        worker.stop().await;
    }

    let census = census(&conn, &appends.ids).await;
    let runs = runs(&appends.path, jobs);
    let (never, twice) = duplicates(&runs, &appends.ids);
    let cut: BTreeSet<&JobId> = records.iter().flat_map(|kill| &kill.orphans).collect();
    let unexpected: Vec<&JobId> = twice.iter().filter(|id| !cut.contains(id)).collect();
    let cutting = || records.iter().filter(|kill| !kill.orphans.is_empty());
    let recovery = cutting()
        .filter_map(|kill| kill.recovered)
        .max()
        .unwrap_or_default();
    let back = cutting().filter_map(|kill| kill.back).max().unwrap_or_default();
    let lost = census.lost.len() + never.len();
    Summary {
        scenario: format!("worker kills on {}", store.backend()),
        jobs,
        faults: format!(
            "{kills} SIGKILLs of {workers} workers, {} runs cut",
            cut.len()
        ),
        lost,
        duplicated: twice.len(),
        stuck: census.stuck.len(),
        recovery: secs(recovery),
        elapsed,
        notes: format!(
            "recovery = kill until every cut job finished again (default deadline 10 s + \
             maintenance every 2 s + the wait on the queue); kill until the last cut run was \
             back (out of the started registry): {}; \
             duplicates all from cut runs: {}; abandoned runs failed instead of retried \
             (requeued by the suite): {}; other failures: {}; seed {seed}",
            secs(back),
            unexpected.is_empty(),
            settled.requeued_abandoned.len(),
            settled.failed_otherwise.len()
        ),
    }
    .print();

    all_finished(&settled, &census, &never, jobs);
    assert!(
        unexpected.is_empty(),
        "jobs ran twice though no kill cut their run: {unexpected:?}"
    );
    assert!(
        records
            .iter()
            .all(|kill| kill.orphans.is_empty() || kill.recovered.is_some()),
        "a kill's runs were not recovered"
    );
}
}

// Scenario a': workers stopped cold (SIGTERM twice, as an operator in a hurry) while they run
// jobs. A cold stop puts the running jobs back at the head of their queue before the process
// exits, so they run again at once, without waiting for a deadline.
on_every_backend! {
async fn cold_stopped_workers_put_their_jobs_back_at_once(store: Store) {
    let jobs = knob("RQRS_FAULT_JOBS", 300);
    let stops = knob("RQRS_FAULT_COLD_STOPS", 2);
    let workers = knob("RQRS_FAULT_WORKERS", 3).max(1);
    let seed = seed();
    let mut rng = Rng(seed);
    let conn = store.connect().await;
    let appends = Appends::enqueue(&conn, store.url(), &format!("cold-stops-{}", store.backend()), jobs).await;
    let mut pool = appends.start_workers(workers, |i| format!("cold-{i}-0"));
    let mut released: BTreeSet<JobId> = BTreeSet::new();
    let mut left_behind = 0;
    let mut longest_stop = Duration::ZERO;
    for k in 1..=stops {
        appends.progress_to(k, stops, "cold stop").await;
        let victim = rng.below(pool.len());
        let name = pool[victim].name.clone();
        let at = Instant::now();
        // The first signal stops the dequeues (warm); the runs held then are the ones a cold
        // stop may cut.
        pool[victim].signal(Signal::SIGTERM);
        released.extend(runs_of(&conn, &name).await);
        pool[victim].signal(Signal::SIGTERM);
        let worker = std::mem::replace(
            &mut pool[victim],
            WorkerProcess::start(
                &appends.options,
                format!("cold-{victim}-{k}"),
                &appends.logs,
            ),
        );
        worker.wait_success().await;
        longest_stop = longest_stop.max(at.elapsed());
        left_behind += runs_of(&conn, &name).await.len();
    }

    let settled = settle(&conn, &appends.ids, async || {}).await;
    let elapsed = appends.started.elapsed();
    for worker in pool {
        worker.stop().await;
    }

    let census = census(&conn, &appends.ids).await;
    let runs = runs(&appends.path, jobs);
    let (never, twice) = duplicates(&runs, &appends.ids);
    let unexpected: Vec<&JobId> = twice.iter().filter(|id| !released.contains(id)).collect();
    Summary {
        scenario: format!("cold stops on {}", store.backend()),
        jobs,
        faults: format!(
            "{stops} cold stops (SIGTERM x2) of {workers} workers, {} runs held",
            released.len()
        ),
        lost: census.lost.len() + never.len(),
        duplicated: twice.len(),
        stuck: census.stuck.len(),
        recovery: secs(longest_stop),
        elapsed,
        notes: format!(
            "recovery = first signal until the process exited with its jobs back on the \
             queue; runs left in the started registry after an exit: {left_behind}; \
             duplicates all from held runs: {}; abandoned (requeued by the suite): {}; other \
             failures: {}; seed {seed}",
            unexpected.is_empty(),
            settled.requeued_abandoned.len(),
            settled.failed_otherwise.len()
        ),
    }
    .print();

    assert_eq!(
        left_behind, 0,
        "a cold stop left runs in the started registry"
    );
    assert!(
        settled.requeued_abandoned.is_empty(),
        "runs recovered as abandoned: {:?}",
        settled.requeued_abandoned
    );
    all_finished(&settled, &census, &never, jobs);
    assert!(
        unexpected.is_empty(),
        "jobs ran twice though no cold stop held them: {unexpected:?}"
    );
}
}

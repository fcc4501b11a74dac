//! Scenario e, on SQLite: rows of the jobs table hold bad data (a spec that is not JSON or not
//! a call, the wrong types in a column, a pickled blob, an unknown function, wrong argument
//! types, a row whose id is not text), each written by hand over a queued job. A burst worker
//! must return normally and the good job behind them must finish; every bad job must end failed
//! with a reason, or finished where the bad data does not touch what the worker needs. Nothing
//! may stay queued or started. The same again through the `worker` example process, which must
//! exit 0.

use std::path::Path;
use std::time::Instant;

use rqrs::{Connection, JobId, Queue, Worker};
use rqrs_test::Store;
use serde_json::json;

use crate::{Logs, QUEUE, Summary, WorkerProcess, hang};

/// How a bad job may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Failed, with a reason that holds this text.
    Failed(&'static str),
    /// Finished: the bad data is not in what the worker needs.
    Finished,
}

/// A bad row: what is wrong, the SQL that makes it so (`?1` is the job's id), how it ends.
struct Case {
    what: &'static str,
    sql: &'static str,
    end: End,
}

const CASES: &[Case] = &[
    Case {
        what: "a spec that is not JSON",
        sql: "UPDATE jobs SET spec = '{not json' WHERE id = ?1",
        end: End::Failed("cannot be read"),
    },
    Case {
        what: "a spec without a function name",
        sql: "UPDATE jobs SET spec = json_remove(spec, '$.func_name') WHERE id = ?1",
        end: End::Failed("func_name"),
    },
    Case {
        what: "an empty function name",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.func_name', '') WHERE id = ?1",
        end: End::Failed("empty"),
    },
    Case {
        what: "an unknown function",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.func_name', 'nowhere.nothing') \
              WHERE id = ?1",
        end: End::Failed("nowhere.nothing"),
    },
    Case {
        what: "arguments of the wrong types",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.args', json('[\"one\", {\"two\": 2}]')) \
              WHERE id = ?1",
        end: End::Failed(""),
    },
    Case {
        what: "a megabyte of text for an integer argument",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.args', \
              json_array(replace(hex(zeroblob(500000)), '00', 'xx'), 1)) WHERE id = ?1",
        end: End::Failed(""),
    },
    Case {
        what: "arguments that are not a list",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.args', json('{\"x\": 1}')) WHERE id = ?1",
        end: End::Failed("cannot be read"),
    },
    Case {
        what: "a timeout in words",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.timeout', 'soon') WHERE id = ?1",
        end: End::Failed("cannot be read"),
    },
    Case {
        what: "retry intervals in words",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.retry_intervals', json('[\"later\"]')) \
              WHERE id = ?1",
        end: End::Failed("cannot be read"),
    },
    Case {
        what: "a callback that is not a name and a timeout",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.on_success', 'tomorrow') WHERE id = ?1",
        end: End::Failed("cannot be read"),
    },
    Case {
        what: "a pickled spec (a blob)",
        sql: "UPDATE jobs SET spec = X'80049505000000000000008c' WHERE id = ?1",
        end: End::Failed("spec holds a Blob"),
    },
    Case {
        what: "a creation time in words",
        sql: "UPDATE jobs SET created_at = 'yesterday' WHERE id = ?1",
        end: End::Failed("created_at holds a Text"),
    },
    Case {
        what: "a retry count in words",
        sql: "UPDATE jobs SET retries_left = 'lots' WHERE id = ?1",
        end: End::Failed("retries_left holds a Text"),
    },
    Case {
        what: "a negative retry count",
        sql: "UPDATE jobs SET retries_left = -5 WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "meta that is not JSON",
        sql: "UPDATE jobs SET meta = 'oops' WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "a results history that is not JSON",
        sql: "UPDATE jobs SET results = '[{oops' WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "an unknown status",
        sql: "UPDATE jobs SET status = 'zombie' WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "a result TTL past any date",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.result_ttl', 9223372036854775807) \
              WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "no place in the queue's order",
        sql: "UPDATE jobs SET score = NULL WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "an expiry in words",
        sql: "UPDATE jobs SET expires_at = 'never' WHERE id = ?1",
        end: End::Finished,
    },
    Case {
        what: "a dependency on a job that never existed",
        sql: "UPDATE jobs SET spec = json_set(spec, '$.dependency_ids', json('[\"ghost\"]')) \
              WHERE id = ?1",
        end: End::Finished,
    },
];

/// The bad row no job can be: its id is a blob. The worker deletes it.
const BLOB_ID: &str = "UPDATE jobs SET id = CAST(id AS BLOB) WHERE id = ?1";

/// Enqueues one `fixtures.add(1, 2)` per case (and one more for the blob id), makes each row
/// bad, and enqueues a good job behind them; returns the bad jobs' ids, in case order, and the
/// good job's.
async fn stage(conn: &Connection, db: &rusqlite::Connection) -> (Vec<JobId>, JobId) {
    let queue = Queue::new(conn, QUEUE);
    let mut ids = Vec::new();
    for case in CASES.iter().map(|case| case.sql).chain([BLOB_ID]) {
        let job = queue
            .enqueue("fixtures.add", json!([1, 2]))
            .send()
            .await
            .unwrap();
        let changed = db.execute(case, [job.id().as_str()]).unwrap();
        assert_eq!(changed, 1, "{case}");
        ids.push(job.id().clone());
    }
    ids.pop();
    let good = queue
        .enqueue("fixtures.add", json!([2, 3]))
        .send()
        .await
        .unwrap();
    (ids, good.id().clone())
}

/// Checks how every bad job ended, and that nothing is left queued or started.
fn check(db: &rusqlite::Connection, ids: &[JobId], good: &JobId, run: &str) {
    let ended = |id: &JobId| -> (String, Option<String>, Option<String>) {
        db.query_row(
            "SELECT CAST(status AS TEXT), place, \
             json_extract(results, '$[#-1].exc_string') \
             FROM jobs WHERE id = ?1",
            [id.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap_or_else(|error| panic!("{run}: job {id}: {error}"))
    };
    for (case, id) in CASES.iter().zip(ids) {
        let (status, place, reason) = ended(id);
        match case.end {
            End::Finished => assert_eq!(
                (status.as_str(), place.as_deref()),
                ("finished", Some("finished")),
                "{run}: {}",
                case.what
            ),
            End::Failed(text) => {
                assert_eq!(
                    (status.as_str(), place.as_deref()),
                    ("failed", Some("failed")),
                    "{run}: {}",
                    case.what
                );
                let reason = reason.unwrap_or_default();
                assert!(
                    !reason.trim().is_empty() && reason.contains(text),
                    "{run}: {}: the reason {reason:?} does not say {text:?}",
                    case.what
                );
            }
        }
    }
    assert_eq!(
        ended(good).1.as_deref(),
        Some("finished"),
        "{run}: the good job"
    );
    let left: i64 = db
        .query_row(
            "SELECT (SELECT count(*) FROM jobs WHERE place IN ('queued', 'started') \
             OR typeof(id) != 'text') + (SELECT count(*) FROM jobs WHERE execution_id IS NOT NULL)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "{run}: rows left queued or started, or not jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_fail_with_a_reason_and_the_worker_goes_on() {
    let started = Instant::now();
    let store = Store::sqlite();
    let conn = store.connect().await;
    let path = store.url();
    let file = Path::new(path.strip_prefix("sqlite://").unwrap());
    let db = rusqlite::Connection::open(file).unwrap();

    let (ids, good) = stage(&conn, &db).await;
    let worker = Worker::builder(&conn)
        .queues([QUEUE])
        .functions(rqrs_test::fixtures::functions())
        .concurrency(8)
        .burst(true)
        .build()
        .unwrap();
    tokio::time::timeout(hang(), worker.work())
        .await
        .expect("the burst worker returns")
        .expect("the worker does not fail");
    check(&db, &ids, &good, "in process");

    let logs = Logs::new("bad-rows");
    let (process_ids, process_good) = stage(&conn, &db).await;
    WorkerProcess::burst(store.url(), "bad-rows-process", &logs).await;
    check(&db, &process_ids, &process_good, "worker process");

    let failed = CASES
        .iter()
        .filter(|case| matches!(case.end, End::Failed(_)))
        .count();
    Summary {
        scenario: "bad rows on sqlite".to_owned(),
        jobs: 2 * (CASES.len() + 1),
        faults: format!("{} kinds of bad row, twice", CASES.len() + 1),
        lost: 0,
        duplicated: 0,
        stuck: 0,
        recovery: "-".to_owned(),
        elapsed: started.elapsed(),
        notes: format!(
            "{failed} kinds failed with their reason, {} finished, the blob id deleted; the \
             worker never failed, in process or as the worker example",
            CASES.len() - failed
        ),
    }
    .print();
}

//! Scenario d: job hashes fuzzed with proptest. Each case writes a batch of arbitrary field maps
//! as `rq:job:<id>` hashes (missing or random `data`, zlib of random JSON, near-valid calls with
//! wrong types, pickled data, huge values, random statuses, numbers where text is expected and
//! the reverse), pushes their ids on a queue with a good job behind them, and runs a burst
//! worker. The worker must return normally, the good job must finish, and every fuzzed job
//! must end failed with a reason, or finished if it happened to be a call the worker can run
//! (or scheduled, or deleted, where its own retry, repeat or TTL fields ask for that). Nothing
//! may stay queued or started.
//!
//! The cases run with the library's worker in this process; one last batch runs through the
//! `worker` example process, which must exit 0.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use redis::AsyncCommands as _;
use rqrs::{Connection, Job, JobId, Queue, Worker};
use rqrs_test::RedisServer;
use serde_json::{Value, json};

use crate::{Logs, QUEUE, Summary, WorkerProcess, fuzz_seed, hang, knob, worker_example};

/// Whether known bugs fail the test (the default; `RQRS_FAULT_FUZZ_STRICT=0` counts them only).
fn strict() -> bool {
    // Strict by default since the known bugs were fixed; `RQRS_FAULT_FUZZ_STRICT=0` relaxes it.
    std::env::var("RQRS_FAULT_FUZZ_STRICT").map_or(true, |value| value != "0")
}

/// Fuzzed hashes per case, at most.
const BATCH: usize = 16;

/// A fuzzed job hash: its fields in the order they are written, and whether its `data` is the
/// shape of a call (a JSON `[name, null, args, kwargs]`), which may then finish.
#[derive(Clone)]
struct FuzzJob {
    fields: Vec<(String, Vec<u8>)>,
    call_shaped: bool,
}

impl std::fmt::Debug for FuzzJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.fields {
            let shown: String = String::from_utf8_lossy(value).chars().take(60).collect();
            if value.len() > 60 {
                map.entry(name, &format!("{shown:?}... ({} bytes)", value.len()));
            } else {
                map.entry(name, &shown);
            }
        }
        map.finish()
    }
}

impl FuzzJob {
    /// The value Redis keeps for `name` (the last write wins).
    fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .rev()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_slice())
    }

    /// The field read as an integer the way the worker reads it (missing, empty or not a
    /// number: `None`).
    fn integer(&self, name: &str) -> Option<i64> {
        let text = String::from_utf8_lossy(self.field(name)?).into_owned();
        text.trim().parse().ok()
    }

    /// The known bug this hash runs into, if any (see [`KnownBug`]).
    fn known_bug(&self) -> Option<KnownBug> {
        // Positive for the worker's reader (which trims and takes `+1` and `01`), but not an
        // integer for Redis's HINCRBY (which takes only the canonical form).
        let non_canonical_count = |name| {
            let Some(raw) = self.field(name) else {
                return false;
            };
            let text = String::from_utf8_lossy(raw);
            text.trim()
                .parse::<i64>()
                .is_ok_and(|n| n > 0 && n.to_string() != text)
        };
        if non_canonical_count("retries_left") || non_canonical_count("repeats_left") {
            return Some(KnownBug::NonCanonicalCount);
        }
        // EXPIRE refuses seconds past i64::MAX / 1000 less the current time.
        if self
            .integer("result_ttl")
            .is_some_and(|ttl| ttl > i64::MAX / 1000 - 4_000_000_000)
        {
            return Some(KnownBug::HugeResultTtl);
        }
        None
    }

    /// The outcomes this hash may end in.
    fn allows(&self, outcome: &Outcome) -> bool {
        let positive = |name| self.integer(name).is_some_and(|n| n > 0);
        let zero = |name| self.integer(name) == Some(0);
        match outcome {
            Outcome::Failed => true,
            Outcome::Finished => self.call_shaped,
            Outcome::Scheduled => positive("retries_left") || positive("repeats_left"),
            Outcome::Gone => self.fields.is_empty() || zero("failure_ttl") || zero("result_ttl"),
            Outcome::Stuck(_) => self.known_bug().is_some() && !strict(),
        }
    }
}

/// Bugs the fuzzing found, which the worker and its scripts still have: a script that ends a
/// run fails on a Redis error after it already took the run out of the started registry
/// (Redis does not undo a script's earlier writes), so the job is left in no queue and no
/// registry. Such cases are counted and shown in the summary; with `RQRS_FAULT_FUZZ_STRICT=1`
/// they fail the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KnownBug {
    /// `retries_left`/`repeats_left` such as ` 1 `, `+1`, `01`: the worker reads a positive
    /// count, then `retry.lua`'s (or `work.lua`'s) `HINCRBY ... -1` fails with "hash value is
    /// not an integer" after `end_execution`: a retried job stays `started` in no registry (a
    /// repeated one is finished but never repeats).
    NonCanonicalCount,
    /// `result_ttl` past EXPIRE's range (about 9.2e15 s): `work.lua`'s `EXPIRE` fails after
    /// the status and result are written but before the finished registry entry: a finished
    /// job in no registry, without a TTL.
    HugeResultTtl,
}

/// Where a fuzzed job ended.
#[derive(Debug)]
enum Outcome {
    /// In the failed registry, status `failed`, with a reason.
    Failed,
    Finished,
    Scheduled,
    /// No job hash left (and in no list).
    Gone,
    /// Anywhere else (queued, started, failed without a reason...): what was found.
    Stuck(#[expect(dead_code, reason = "shown through Debug in failure messages")] String),
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `len` bytes from a seed, fast (a huge value drawn byte by byte would be slow).
fn expand(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = crate::Rng(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

/// A call the fixture functions may or may not accept: [name, null, args, kwargs].
fn call() -> impl Strategy<Value = Value> {
    let target = prop_oneof![
        Just(("fixtures.noop", json!([]))),
        (any::<i32>(), any::<i32>()).prop_map(|(x, y)| ("fixtures.add", json!([x, y]))),
        (any::<i64>(), any::<i64>()).prop_map(|(x, y)| ("fixtures.add", json!([x, y]))),
        prop::collection::vec(json(), 0..3).prop_map(|args| ("fixtures.echo", Value::Array(args))),
        // Never blank: a job that fails with a blank message records a blank reason.
        ".{0,20}".prop_map(|message| ("fixtures.fail", json!([format!("boom {message}")]))),
        json().prop_map(|arg| ("fixtures.add", json!([arg]))),
        json().prop_map(|args| ("fixtures.noop", args)),
        Just(("nope.missing", json!([]))),
    ];
    let kwargs = prop_oneof![
        4 => Just(json!({})),
        1 => Just(Value::Null),
        1 => json(),
    ];
    (target, kwargs).prop_map(|((name, args), kwargs)| json!([name, null, args, kwargs]))
}

/// `data`, and whether it is call-shaped.
fn data() -> impl Strategy<Value = (Option<Vec<u8>>, bool)> {
    prop_oneof![
        1 => Just((None, false)),
        2 => small_bytes().prop_map(|bytes| (Some(bytes), false)),
        // Pickle (Python RQ's default serializer) opens with 0x80.
        2 => (small_bytes(), any::<bool>()).prop_map(|(rest, compressed)| {
            let mut pickled = vec![0x80, 0x05];
            pickled.extend(rest);
            (Some(if compressed { zlib(&pickled) } else { pickled }), false)
        }),
        2 => json().prop_map(|value| (Some(zlib(&serde_json::to_vec(&value).unwrap())), false)),
        2 => prop::collection::vec(json(), 4).prop_map(|parts| {
            (Some(zlib(&serde_json::to_vec(&parts).unwrap())), false)
        }),
        4 => (call(), any::<bool>()).prop_map(|(call, compressed)| {
            let text = serde_json::to_vec(&call).unwrap();
            (Some(if compressed { zlib(&text) } else { text }), true)
        }),
        1 => call().prop_map(|call| {
            let mut compressed = zlib(&serde_json::to_vec(&call).unwrap());
            compressed.truncate(compressed.len() / 2);
            (Some(compressed), false)
        }),
        1 => json().prop_map(|value| (Some(value.to_string().into_bytes()), false)),
    ]
}

/// Numbers as text, and text that is almost a number.
fn number() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-5i64..1000).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999".to_owned()),
        Just("1.5".to_owned()),
        Just("-0.0".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("1e400".to_owned()),
        (0i64..100).prop_map(|n| format!(" {n} ")),
        (0i64..100).prop_map(|n| format!("+{n}")),
        (0i64..100).prop_map(|n| format!("0{n}")),
    ]
    .prop_map(String::into_bytes)
}

/// Retry and repeat counts: small, or not numbers at all (a large count would only make the
/// worker run the job that many times).
fn count() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-2i64..=3).prop_map(|n| n.to_string()),
        Just(" 1 ".to_owned()),
        Just("+1".to_owned()),
        Just("01".to_owned()),
        Just("1.0".to_owned()),
        Just("abc".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just(String::new()),
    ]
    .prop_map(String::into_bytes)
}

fn intervals() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"[0]".to_vec()),
        prop::collection::vec(0u64..3, 0..3).prop_map(|list| serde_json::to_vec(&list).unwrap()),
        prop::collection::vec(json(), 0..3).prop_map(|list| serde_json::to_vec(&list).unwrap()),
        any::<u64>().prop_map(|n| format!("[{n}]").into_bytes()),
        Just(b"not json".to_vec()),
    ]
}

fn timestamp() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"2026-11-29T02:10:41.123456Z".to_vec()),
        Just(b"2026-11-29T02:10:41Z".to_vec()),
        Just(b"29/11/2026".to_vec()),
        ".{0,30}".prop_map(String::into_bytes),
        small_bytes(),
    ]
}

fn callback() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(String::new()),
        Just("fixtures.on_success_mark".to_owned()),
        Just("fixtures.on_failure_mark".to_owned()),
        Just("fixtures.noop".to_owned()),
        Just("fixtures.fail".to_owned()),
        Just("nope.missing".to_owned()),
        ".{0,12}",
    ]
    .prop_map(String::into_bytes)
}

/// Anything: text, numbers, JSON, bytes, nothing.
fn anything() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        ".{0,24}".prop_map(String::into_bytes),
        number(),
        json().prop_map(|value| value.to_string().into_bytes()),
        small_bytes(),
        Just(Vec::new()),
    ]
}

fn status() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            "queued",
            "started",
            "finished",
            "failed",
            "deferred",
            "scheduled",
            "stopped",
            "canceled",
            "",
        ])
        .prop_map(|status| status.as_bytes().to_vec()),
        anything(),
    ]
}

/// A field present half of the time.
fn field<S>(name: &'static str, value: S) -> BoxedStrategy<Option<(String, Vec<u8>)>>
where
    S: Strategy<Value = Vec<u8>> + 'static,
{
    proptest::option::weighted(0.5, value.prop_map(move |value| (name.to_owned(), value))).boxed()
}

fn fuzz_job() -> impl Strategy<Value = FuzzJob> {
    let named = vec![
        field("status", status()),
        field("origin", anything()),
        field("description", anything()),
        field("created_at", timestamp()),
        field("enqueued_at", timestamp()),
        field("started_at", timestamp()),
        field("ended_at", timestamp()),
        field("last_heartbeat", timestamp()),
        field("worker_name", anything()),
        field("timeout", number()),
        field("result_ttl", number()),
        field("failure_ttl", number()),
        field("ttl", number()),
        field("meta", anything()),
        field("exc_info", anything()),
        field("result", anything()),
        field("retries_left", count()),
        field("retry_intervals", intervals()),
        field("enqueue_at_front_on_retry", anything()),
        field("repeats_left", count()),
        field("repeat_intervals", intervals()),
        field("success_callback_name", callback()),
        field("success_callback_timeout", number()),
        field("failure_callback_name", callback()),
        field("failure_callback_timeout", number()),
        field("stopped_callback_name", callback()),
        field("dependency_ids", anything()),
        field("allow_dependency_failures", anything()),
        field("group_id", anything()),
    ];
    let extra = prop::collection::vec(("[a-z_]{1,12}", anything()), 0..3);
    // Now and then one value is huge (64 KiB to 1 MiB): data, meta or description.
    let huge = proptest::option::weighted(0.03, (0..3usize, 65_536..1_048_576usize, any::<u64>()));
    (data(), named, extra, huge).prop_map(|((data, call_shaped), named, extra, huge)| {
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        let mut call_shaped = call_shaped;
        if let Some(data) = data {
            fields.push(("data".to_owned(), data));
        }
        fields.extend(named.into_iter().flatten());
        fields.extend(extra);
        if let Some((which, len, seed)) = huge {
            let name = ["data", "meta", "description"][which];
            if name == "data" {
                call_shaped = false;
            }
            fields.push((name.to_owned(), expand(seed, len)));
        }
        FuzzJob {
            fields,
            call_shaped,
        }
    })
}

fn batch() -> impl Strategy<Value = Vec<FuzzJob>> {
    prop::collection::vec(fuzz_job(), 1..=BATCH)
}

/// Writes the batch's hashes, pushes their ids with a good job behind them; returns the ids
/// and the good job's id.
async fn push(
    conn: &Connection,
    client: &mut redis::aio::MultiplexedConnection,
    case: usize,
    batch: &[FuzzJob],
) -> (Vec<String>, JobId) {
    let _: () = redis::cmd("FLUSHALL").query_async(client).await.unwrap();
    let mut ids = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        let id = format!("fuzz-{case}-{i}");
        if !job.fields.is_empty() {
            let mut hset = redis::cmd("HSET");
            hset.arg(format!("rq:job:{id}"));
            for (name, value) in &job.fields {
                hset.arg(name).arg(value);
            }
            let _: () = hset.query_async(client).await.unwrap();
        }
        let _: () = client
            .rpush(format!("rq:queue:{QUEUE}"), &id)
            .await
            .unwrap();
        ids.push(id);
    }
    let _: () = client
        .sadd("rq:queues", format!("rq:queue:{QUEUE}"))
        .await
        .unwrap();
    let good = Queue::new(conn, QUEUE)
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    (ids, good.id().clone())
}

/// Where the fuzzed job `id` ended.
async fn outcome(
    conn: &Connection,
    client: &mut redis::aio::MultiplexedConnection,
    id: &str,
) -> Outcome {
    let queued: Option<i64> = redis::cmd("LPOS")
        .arg(format!("rq:queue:{QUEUE}"))
        .arg(id)
        .query_async(client)
        .await
        .unwrap();
    if queued.is_some() {
        return Outcome::Stuck("still queued".to_owned());
    }
    let started: Vec<String> = client
        .zrange(format!("rq:wip:{QUEUE}"), 0, -1)
        .await
        .unwrap();
    if started
        .iter()
        .any(|member| member.rsplit_once(':').is_some_and(|(job, _)| job == id))
    {
        return Outcome::Stuck("still in the started registry".to_owned());
    }
    let score = async |client: &mut redis::aio::MultiplexedConnection, registry: &str| {
        let score: Option<f64> = client
            .zscore(format!("rq:{registry}:{QUEUE}"), id)
            .await
            .unwrap();
        score.is_some()
    };
    let exists: bool = client.exists(format!("rq:job:{id}")).await.unwrap();
    if !exists {
        return Outcome::Gone;
    }
    let status: Option<String> = client.hget(format!("rq:job:{id}"), "status").await.unwrap();
    if score(client, "failed").await {
        // Read back through the library, as a user would.
        let job = match Job::fetch(conn, &id.parse().unwrap()).await {
            Ok(job) => job,
            Err(error) => return Outcome::Stuck(format!("failed, but unreadable: {error}")),
        };
        let reason = job.exc_info().await.ok().flatten().unwrap_or_default();
        if status.as_deref() != Some("failed") {
            return Outcome::Stuck(format!("in the failed registry with status {status:?}"));
        }
        if reason.trim().is_empty() {
            return Outcome::Stuck("failed without a reason".to_owned());
        }
        return Outcome::Failed;
    }
    if score(client, "finished").await {
        return Outcome::Finished;
    }
    if score(client, "scheduled").await {
        return Outcome::Scheduled;
    }
    Outcome::Stuck(format!("in no registry, status {status:?}"))
}

/// Checks every fuzzed job and the good one after a worker ran the batch; returns the known
/// bugs that left a job stuck.
async fn check(
    conn: &Connection,
    client: &mut redis::aio::MultiplexedConnection,
    batch: &[FuzzJob],
    ids: &[String],
    good: &JobId,
) -> Result<Vec<KnownBug>, String> {
    let mut hits = Vec::new();
    for (job, id) in batch.iter().zip(ids) {
        let outcome = outcome(conn, client, id).await;
        if !job.allows(&outcome) {
            return Err(format!("{id} ended as {outcome:?}: {job:?}"));
        }
        if let (Outcome::Stuck(_), Some(bug)) = (&outcome, job.known_bug()) {
            hits.push(bug);
        }
    }
    let good = Job::fetch(conn, good).await.map_err(|e| e.to_string())?;
    let value = good.return_value().await.map_err(|e| e.to_string())?;
    if value != Some(json!(3)) {
        return Err(format!(
            "the good job behind the fuzzed ones ended {:?} with {value:?}",
            good.status()
        ));
    }
    Ok(hits)
}

#[test]
fn fuzzed_job_hashes_fail_with_a_reason_and_the_worker_goes_on() {
    let hashes = knob("RQRS_FAULT_FUZZ_CASES", 256);
    let seed = fuzz_seed();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = RedisServer::start();
    let (conn, mut client) = runtime.block_on(async {
        let conn = rqrs::connect(&server.url()).await.unwrap();
        let client = server
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        (conn, client)
    });
    // Built (once per binary) before the clock starts.
    worker_example();
    let started = Instant::now();
    let pushed = AtomicUsize::new(0);
    let cases = AtomicUsize::new(0);
    let known = std::sync::Mutex::new(std::collections::BTreeMap::<KnownBug, usize>::new());
    let config = Config {
        cases: u32::try_from(hashes.div_ceil(BATCH.div_ceil(2) + 1)).unwrap(),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        // A failing case may take as long as the worker's give-up on a store error: keep
        // shrinking short.
        max_shrink_iters: 32,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&batch(), |batch| {
        let case = cases.fetch_add(1, Ordering::SeqCst);
        pushed.fetch_add(batch.len(), Ordering::SeqCst);
        let mut client = client.clone();
        runtime.block_on(async {
            let (ids, good) = push(&conn, &mut client, case, &batch).await;
            let worker = Worker::builder(&conn)
                .queues([QUEUE])
                .functions(rqrs_test::fixtures::functions())
                .concurrency(8)
                .burst(true)
                .build()
                .unwrap();
            match tokio::time::timeout(hang(), worker.work()).await {
                Err(_) => return Err(TestCaseError::fail("the burst worker did not return")),
                Ok(Err(error)) => {
                    return Err(TestCaseError::fail(format!("the worker failed: {error}")));
                }
                Ok(Ok(())) => {}
            }
            let hits = check(&conn, &mut client, &batch, &ids, &good)
                .await
                .map_err(TestCaseError::fail)?;
            let mut known = known.lock().unwrap();
            for bug in hits {
                *known.entry(bug).or_default() += 1;
            }
            Ok(())
        })
    });
    if let Err(error) = result {
        panic!("fuzzing failed (seed {seed}): {error}");
    }

    // One more batch through the worker example process: it must exit 0.
    let logs = Logs::new("fuzz");
    let mut tree = batch().new_tree(&mut runner).unwrap();
    let _ = tree.simplify();
    let last = tree.current();
    let in_process = pushed.load(Ordering::SeqCst);
    runtime.block_on(async {
        let (ids, good) = push(&conn, &mut client, usize::MAX, &last).await;
        WorkerProcess::burst(server.url(), "fuzz-process", &logs).await;
        match check(&conn, &mut client, &last, &ids, &good).await {
            Ok(hits) => {
                let mut known = known.lock().unwrap();
                for bug in hits {
                    *known.entry(bug).or_default() += 1;
                }
            }
            Err(error) => panic!("the worker process (seed {seed}): {error}"),
        }
    });

    let known = known.into_inner().unwrap();
    Summary {
        scenario: "fuzzed job hashes".to_owned(),
        jobs: in_process + last.len(),
        faults: format!(
            "{} batches in process + 1 through the worker process",
            cases.load(Ordering::SeqCst)
        ),
        lost: 0,
        duplicated: 0,
        stuck: known.values().sum(),
        recovery: "-".to_owned(),
        elapsed: started.elapsed(),
        notes: format!(
            "every fuzzed job failed with a reason (or finished, scheduled or deleted as its \
             own fields asked), except known bugs that left jobs in no registry: {known:?}; \
             the worker never failed; seed {seed}"
        ),
    }
    .print();
}

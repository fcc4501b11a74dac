//! Every Redis key rqrs reads or writes, spelled here and nowhere else.
//!
//! The layout is Python RQ 2.12's (`rq:` prefix, hard-coded there too), so Python producers,
//! workers and `rq info` share the data. `docs/redis-layout.md` lists the same keys; a test
//! checks that the two agree. Lua scripts get key prefixes from here as arguments, so they
//! spell no key either.

/// SET of queue keys (`rq:queue:<q>`), as `Queue.all()` reads it.
pub(crate) const QUEUES: &str = "rq:queues";
/// Present while workers are suspended (`rq suspend`), with an optional expiry.
pub(crate) const SUSPENDED: &str = "rq:suspended";
/// SET of live worker keys.
pub(crate) const WORKERS: &str = "rq:workers";
/// SET of group names (RQ's `Group.REDIS_GROUP_KEY`).
pub(crate) const GROUPS: &str = "rq:groups";

pub(crate) const QUEUE_PREFIX: &str = "rq:queue:";
pub(crate) const JOB_PREFIX: &str = "rq:job:";
pub(crate) const RESULTS_PREFIX: &str = "rq:results:";
pub(crate) const EXECUTION_PREFIX: &str = "rq:execution:";
pub(crate) const EXECUTIONS_PREFIX: &str = "rq:executions:";
pub(crate) const WORKER_PREFIX: &str = "rq:worker:";
pub(crate) const WORKERS_BY_QUEUE_PREFIX: &str = "rq:workers:";
pub(crate) const STARTED_PREFIX: &str = "rq:wip:";
pub(crate) const FINISHED_PREFIX: &str = "rq:finished:";
pub(crate) const FAILED_PREFIX: &str = "rq:failed:";
pub(crate) const DEFERRED_PREFIX: &str = "rq:deferred:";
pub(crate) const SCHEDULED_PREFIX: &str = "rq:scheduled:";
pub(crate) const CANCELED_PREFIX: &str = "rq:canceled:";
pub(crate) const GROUP_PREFIX: &str = "rq:group:";

/// `rq:queue:<q>`: LIST of job ids.
pub(crate) fn queue(name: &str) -> String {
    format!("{QUEUE_PREFIX}{name}")
}

/// `rq:pubsub:<name>`: the worker's control channel (JSON commands: shutdown, kill-horse,
/// stop-job), as RQ's `send_*_command` publish them.
pub(crate) fn worker_channel(name: &str) -> String {
    format!("rq:pubsub:{name}")
}

/// `rq:job:<id>`: HASH of the job.
pub(crate) fn job(id: &str) -> String {
    format!("{JOB_PREFIX}{id}")
}

/// What follows `rq:job:<id>` in the key of the job's dependents.
pub(crate) const DEPENDENTS_SUFFIX: &str = ":dependents";

/// `rq:job:<id>:dependents`: SET of the ids waiting on the job.
pub(crate) fn job_dependents(id: &str) -> String {
    format!("{JOB_PREFIX}{id}{DEPENDENTS_SUFFIX}")
}

/// What comes before `<id>` in the key of a job's dependencies: RQ's double colon (it builds
/// the key as `'rq:job:' + ':' + id`); readers must spell it the same way.
pub(crate) const DEPENDENCIES_PREFIX: &str = "rq:job::";
/// What follows `<id>` in the key of a job's dependencies.
pub(crate) const DEPENDENCIES_SUFFIX: &str = ":dependencies";

/// `rq:job::<id>:dependencies`: SET of the ids the job waits on.
pub(crate) fn job_dependencies(id: &str) -> String {
    format!("{DEPENDENCIES_PREFIX}{id}{DEPENDENCIES_SUFFIX}")
}

/// `rq:results:<id>`: STREAM of the job's results.
pub(crate) fn results(id: &str) -> String {
    format!("{RESULTS_PREFIX}{id}")
}

/// `rq:execution:<id>:<eid>`: HASH of one run of a job.
pub(crate) fn execution(id: &str, execution_id: &str) -> String {
    format!("{EXECUTION_PREFIX}{id}:{execution_id}")
}

/// `rq:executions:<id>`: ZSET of the job's execution ids.
pub(crate) fn executions(id: &str) -> String {
    format!("{EXECUTIONS_PREFIX}{id}")
}

/// `rq:worker:<name>`: HASH of a worker.
pub(crate) fn worker(name: &str) -> String {
    format!("{WORKER_PREFIX}{name}")
}

/// `rq:workers:<q>`: SET of the keys of the workers that listen on `<q>`.
pub(crate) fn workers_by_queue(queue: &str) -> String {
    format!("{WORKERS_BY_QUEUE_PREFIX}{queue}")
}

/// `rq:wip:<q>`: ZSET StartedJobRegistry, members `<id>:<eid>`.
pub(crate) fn started(queue: &str) -> String {
    format!("{STARTED_PREFIX}{queue}")
}

/// `rq:finished:<q>`: ZSET FinishedJobRegistry.
pub(crate) fn finished(queue: &str) -> String {
    format!("{FINISHED_PREFIX}{queue}")
}

/// `rq:failed:<q>`: ZSET FailedJobRegistry.
pub(crate) fn failed(queue: &str) -> String {
    format!("{FAILED_PREFIX}{queue}")
}

/// `rq:deferred:<q>`: ZSET DeferredJobRegistry, scored by when the job was deferred.
pub(crate) fn deferred(queue: &str) -> String {
    format!("{DEFERRED_PREFIX}{queue}")
}

/// `rq:scheduled:<q>`: ZSET ScheduledJobRegistry, scored by the whole epoch second it is due.
pub(crate) fn scheduled(queue: &str) -> String {
    format!("{SCHEDULED_PREFIX}{queue}")
}

/// `rq:canceled:<q>`: ZSET CanceledJobRegistry, scored by when the job was canceled.
pub(crate) fn canceled(queue: &str) -> String {
    format!("{CANCELED_PREFIX}{queue}")
}

/// `rq:group:<name>`: SET of the ids of a group's jobs.
pub(crate) fn group(name: &str) -> String {
    format!("{GROUP_PREFIX}{name}")
}

/// `rq:clean_registries:<q>`: the lock of a queue's registry maintenance, shared with RQ's
/// workers so that one process at a time cleans a queue.
pub(crate) fn clean_registries(queue: &str) -> String {
    format!("rq:clean_registries:{queue}")
}

/// `rq:scheduler-lock:<q>`: the name of the one scheduler (rqrs's or Python's) that may
/// enqueue the queue's due scheduled jobs.
pub(crate) fn scheduler_lock(queue: &str) -> String {
    format!("rq:scheduler-lock:{queue}")
}

/// `rq:scheduler:<name>`: HASH of a running scheduler (RQ 2.10+).
pub(crate) fn scheduler(name: &str) -> String {
    format!("rq:scheduler:{name}")
}

/// The queue name of a queue key, if it is one.
pub(crate) fn queue_name(key: &str) -> Option<&str> {
    key.strip_prefix(QUEUE_PREFIX)
}

/// The worker name of a worker key, if it is one.
pub(crate) fn worker_name(key: &str) -> Option<&str> {
    key.strip_prefix(WORKER_PREFIX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The compatibility contract, whose key table must list exactly the keys built here.
    const LAYOUT: &str = include_str!("../../../../../docs/redis-layout.md");
    /// This file, to catch a key function added without a line in [`built`].
    const SOURCE: &str = include_str!("keys.rs");

    /// Every full key and key builder of this file, by name, with placeholders for its parts.
    fn built() -> Vec<(&'static str, String)> {
        vec![
            ("QUEUES", QUEUES.to_owned()),
            ("WORKERS", WORKERS.to_owned()),
            ("queue", queue("<q>")),
            ("job", job("<id>")),
            ("job_dependents", job_dependents("<id>")),
            ("job_dependencies", job_dependencies("<id>")),
            ("results", results("<id>")),
            ("execution", execution("<id>", "<eid>")),
            ("executions", executions("<id>")),
            ("worker", worker("<name>")),
            ("workers_by_queue", workers_by_queue("<q>")),
            ("started", started("<q>")),
            ("finished", finished("<q>")),
            ("failed", failed("<q>")),
            ("clean_registries", clean_registries("<q>")),
            ("deferred", deferred("<q>")),
            ("scheduled", scheduled("<q>")),
            ("canceled", canceled("<q>")),
            ("SUSPENDED", SUSPENDED.to_owned()),
            ("worker_channel", worker_channel("<name>")),
            ("scheduler_lock", scheduler_lock("<q>")),
            ("scheduler", scheduler("<name>")),
            ("GROUPS", GROUPS.to_owned()),
            ("group", group("<name>")),
        ]
    }

    /// Functions that read keys instead of building them.
    const PARSERS: &[&str] = &["queue_name", "worker_name"];

    /// Constants that are pieces of keys, handed to Lua scripts and parsers.
    const PIECES: &[&str] = &[
        "QUEUE_PREFIX",
        "JOB_PREFIX",
        "RESULTS_PREFIX",
        "EXECUTION_PREFIX",
        "EXECUTIONS_PREFIX",
        "WORKER_PREFIX",
        "WORKERS_BY_QUEUE_PREFIX",
        "STARTED_PREFIX",
        "FINISHED_PREFIX",
        "FAILED_PREFIX",
        "DEPENDENTS_SUFFIX",
        "DEPENDENCIES_PREFIX",
        "DEPENDENCIES_SUFFIX",
        "DEFERRED_PREFIX",
        "SCHEDULED_PREFIX",
        "CANCELED_PREFIX",
        "GROUP_PREFIX",
    ];

    /// The key patterns in the first column of the document's key table (the first table
    /// under `## Keys`).
    fn documented() -> Vec<String> {
        let mut lines = LAYOUT.lines().skip_while(|line| line.trim() != "## Keys");
        assert!(
            lines.next().is_some(),
            "docs/redis-layout.md has no `## Keys` section"
        );
        let rows: Vec<&str> = lines
            .take_while(|line| !line.starts_with("## "))
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .collect();
        assert!(
            rows.len() > 2,
            "the `## Keys` section of docs/redis-layout.md has no key table"
        );
        // rows[0] is the header and rows[1] the separator.
        rows[2..]
            .iter()
            .map(|row| {
                let cell = row.split('|').nth(1).unwrap_or_default().trim();
                let pattern = cell
                    .strip_prefix('`')
                    .and_then(|cell| cell.strip_suffix('`'))
                    .filter(|pattern| pattern.starts_with("rq:") && !pattern.contains('`'));
                pattern
                    .unwrap_or_else(|| {
                        panic!("a key table row must open with one `rq:...` pattern: {row}")
                    })
                    .to_owned()
            })
            .collect()
    }

    /// The names declared as `pub(crate) <keyword> <name>` in the code above the tests.
    fn declared(keyword: &str) -> Vec<String> {
        let code = SOURCE.split("\n#[cfg(test)]").next().unwrap_or_default();
        let opening = format!("pub(crate) {keyword} ");
        code.lines()
            .filter_map(|line| line.trim_start().strip_prefix(opening.as_str()))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn layout_doc_lists_exactly_the_keys_built_here() {
        let documented = documented();
        let doc: BTreeSet<String> = documented.iter().cloned().collect();
        assert_eq!(
            doc.len(),
            documented.len(),
            "a key appears twice in the key table of docs/redis-layout.md: {documented:?}"
        );
        let code: BTreeSet<String> = built().into_iter().map(|(_, key)| key).collect();
        let undocumented: Vec<_> = code.difference(&doc).collect();
        let unbuilt: Vec<_> = doc.difference(&code).collect();
        assert!(
            undocumented.is_empty() && unbuilt.is_empty(),
            "docs/redis-layout.md and keys.rs disagree.\n\
             Built by keys.rs but missing from the key table: {undocumented:?}\n\
             In the key table but not built by keys.rs: {unbuilt:?}"
        );
    }

    #[test]
    fn every_key_function_and_constant_is_known_to_the_layout_test() {
        let built: Vec<&str> = built().into_iter().map(|(name, _)| name).collect();
        let functions = declared("fn");
        let constants = declared("const");
        let unknown: Vec<&String> =
            functions
                .iter()
                .filter(|name| !built.contains(&name.as_str()) && !PARSERS.contains(&name.as_str()))
                .chain(constants.iter().filter(|name| {
                    !built.contains(&name.as_str()) && !PIECES.contains(&name.as_str())
                }))
                .collect();
        assert!(
            unknown.is_empty(),
            "keys.rs declares {unknown:?}, unknown to its tests: add key builders and full keys \
             to `built()` (and a row to docs/redis-layout.md), parsers to PARSERS, key pieces \
             to PIECES"
        );
        for name in PARSERS {
            assert!(
                functions.iter().any(|f| f == name),
                "PARSERS names {name}, which keys.rs no longer declares"
            );
        }
        for name in PIECES {
            assert!(
                constants.iter().any(|c| c == name),
                "PIECES names {name}, which keys.rs no longer declares"
            );
        }
    }

    #[test]
    fn scripts_compose_the_same_keys_as_the_builders() {
        // dequeue.lua, heartbeat.lua, empty.lua and enqueue_scheduled.lua build these keys
        // from the pieces.
        assert_eq!(format!("{JOB_PREFIX}<id>"), job("<id>"));
        assert_eq!(
            format!("{JOB_PREFIX}<id>{DEPENDENTS_SUFFIX}"),
            job_dependents("<id>")
        );
        assert_eq!(
            format!("{DEPENDENCIES_PREFIX}<id>{DEPENDENCIES_SUFFIX}"),
            job_dependencies("<id>")
        );
        assert_eq!(format!("{STARTED_PREFIX}<q>"), started("<q>"));
        assert_eq!(format!("{RESULTS_PREFIX}<id>"), results("<id>"));
        assert_eq!(
            format!("{EXECUTION_PREFIX}<id>:<eid>"),
            execution("<id>", "<eid>")
        );
        assert_eq!(format!("{EXECUTIONS_PREFIX}<id>"), executions("<id>"));
        // unlist.lua (cancel, delete) and group_cleanup.lua.
        assert_eq!(format!("{RESULTS_PREFIX}<id>"), results("<id>"));
        assert_eq!(format!("{GROUP_PREFIX}<name>"), group("<name>"));
        for (prefix, builder) in [
            (QUEUE_PREFIX, queue as fn(&str) -> String),
            (FINISHED_PREFIX, finished),
            (FAILED_PREFIX, failed),
            (DEFERRED_PREFIX, deferred),
            (SCHEDULED_PREFIX, scheduled),
            (CANCELED_PREFIX, canceled),
        ] {
            assert_eq!(format!("{prefix}<q>"), builder("<q>"));
        }
        // requeue.lua's member of `rq:queues` and the readers of the sets.
        assert_eq!(queue_name(&queue("default")), Some("default"));
        assert_eq!(queue_name("rq:worker:w1"), None);
        assert_eq!(worker_name(&worker("w1")), Some("w1"));
        assert_eq!(worker_name("rq:queue:default"), None);
    }
}

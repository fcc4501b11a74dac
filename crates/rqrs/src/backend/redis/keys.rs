//! Every Redis key rqrs reads or writes, spelled here and nowhere else.
//!
//! The layout is Python RQ's: every key starts with the key prefix, `rq` unless `RQ_KEY_PREFIX`
//! or [`ConnectOptions::key_prefix`](crate::ConnectOptions::key_prefix) says otherwise (RQ 3.0
//! reads the same variable; RQ 2.12's prefix is always `rq`), so Python producers, workers and
//! `rq info` share the data. `docs/redis-layout.md` lists the same keys; a test checks that the
//! two agree. Lua scripts get key prefixes from here as arguments, so they spell no key either.

use crate::error::{Error, Result};
use crate::registry::RegistryKind;

/// The prefix of every key when none is set, as in RQ.
pub(crate) const DEFAULT_PREFIX: &str = "rq";

/// What follows `<prefix>:job:<id>` in the key of the job's dependents.
pub(crate) const DEPENDENTS_SUFFIX: &str = ":dependents";
/// What follows a worker hash's key in the key of its set of executions (`lib.lua` spells it).
pub(crate) const WORKER_EXECUTIONS_SUFFIX: &str = ":executions";
/// What follows a queue's key in the key of its intermediate list (`lib.lua` spells it).
pub(crate) const INTERMEDIATE_SUFFIX: &str = ":intermediate";
/// What follows `<id>` in the key of a job's dependencies.
pub(crate) const DEPENDENCIES_SUFFIX: &str = ":dependencies";

/// The keys of one key prefix. The full keys and the pieces that scripts build keys from are
/// made once, at connect.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    root: String,
    rate_limits: String,
    queues: String,
    suspended: String,
    workers: String,
    groups: String,
    queue_prefix: String,
    job_prefix: String,
    dependencies_prefix: String,
    results_prefix: String,
    execution_prefix: String,
    executions_prefix: String,
    worker_prefix: String,
    started_prefix: String,
    finished_prefix: String,
    failed_prefix: String,
    deferred_prefix: String,
    scheduled_prefix: String,
    canceled_prefix: String,
    group_prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Keys::build(DEFAULT_PREFIX)
    }
}

impl Keys {
    /// The keys of `prefix`, which may hold letters, digits and `_ . : - { }` (RQ 3.0's rule);
    /// `{...}` makes a Redis Cluster hash tag, putting every key in one slot.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:-{}".contains(c);
        if prefix.is_empty() || !prefix.chars().all(allowed) {
            return Err(Error::invalid(
                "key_prefix",
                format!(
                    "{prefix:?}: a key prefix is letters, digits and _ . : - {{ }} only \
                     (RQ's RQ_KEY_PREFIX rule), such as rq or {{rq}}"
                ),
            ));
        }
        Ok(Keys::build(prefix))
    }

    fn build(prefix: &str) -> Self {
        let piece = |name: &str| format!("{prefix}:{name}");
        Keys {
            prefix: prefix.to_owned(),
            root: piece(""),
            rate_limits: piece("rl-keys"),
            queues: piece("queues"),
            suspended: piece("suspended"),
            workers: piece("workers"),
            groups: piece("groups"),
            queue_prefix: piece("queue:"),
            job_prefix: piece("job:"),
            // RQ's double colon: it builds the key as `<prefix>:job:` + `:` + id.
            dependencies_prefix: piece("job::"),
            results_prefix: piece("results:"),
            execution_prefix: piece("execution:"),
            executions_prefix: piece("executions:"),
            worker_prefix: piece("worker:"),
            started_prefix: piece("wip:"),
            finished_prefix: piece("finished:"),
            failed_prefix: piece("failed:"),
            deferred_prefix: piece("deferred:"),
            scheduled_prefix: piece("scheduled:"),
            canceled_prefix: piece("canceled:"),
            group_prefix: piece("group:"),
        }
    }

    /// The key prefix, without its colon.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key prefix and its colon (`rq:`), from which the rate limiter's scripts build their
    /// keys (`limit.lua`), as RQ 3.0's do.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    /// `rq:rl-keys`: SET of the keys of the rate limits in use (RQ 3.0).
    pub(crate) fn rate_limits(&self) -> &str {
        &self.rate_limits
    }

    /// `rq:rl:<key>`: HASH of a rate limit's settings (`concurrency`), RQ 3.0's.
    pub(crate) fn rate_limit(&self, key: &str) -> String {
        format!("{}rl:{key}", self.root)
    }

    /// `rq:rl:<key>:allowed`: ZSET of the jobs that hold a slot of the limit (queued or
    /// running), scored by when they got it.
    #[cfg_attr(not(test), expect(dead_code, reason = "limit.lua builds it"))]
    pub(crate) fn rate_limit_allowed(&self, key: &str) -> String {
        format!("{}:allowed", self.rate_limit(key))
    }

    /// `rq:rl:<key>:rate_limited`: ZSET of the jobs waiting for a slot, scored by when they
    /// came.
    #[cfg_attr(not(test), expect(dead_code, reason = "limit.lua builds it"))]
    pub(crate) fn rate_limit_waiting(&self, key: &str) -> String {
        format!("{}:rate_limited", self.rate_limit(key))
    }

    /// SET of queue keys (`rq:queue:<q>`), as `Queue.all()` reads it.
    pub(crate) fn queues(&self) -> &str {
        &self.queues
    }

    /// Present while workers are suspended (`rq suspend`), with an optional expiry.
    pub(crate) fn suspended(&self) -> &str {
        &self.suspended
    }

    /// SET of live worker keys.
    pub(crate) fn workers(&self) -> &str {
        &self.workers
    }

    /// SET of group names (RQ's `Group.REDIS_GROUP_KEY`).
    pub(crate) fn groups(&self) -> &str {
        &self.groups
    }

    pub(crate) fn queue_prefix(&self) -> &str {
        &self.queue_prefix
    }

    pub(crate) fn job_prefix(&self) -> &str {
        &self.job_prefix
    }

    /// What comes before `<id>` in the key of a job's dependencies: RQ's double colon;
    /// readers must spell it the same way.
    pub(crate) fn dependencies_prefix(&self) -> &str {
        &self.dependencies_prefix
    }

    pub(crate) fn results_prefix(&self) -> &str {
        &self.results_prefix
    }

    pub(crate) fn execution_prefix(&self) -> &str {
        &self.execution_prefix
    }

    pub(crate) fn executions_prefix(&self) -> &str {
        &self.executions_prefix
    }

    pub(crate) fn started_prefix(&self) -> &str {
        &self.started_prefix
    }

    pub(crate) fn finished_prefix(&self) -> &str {
        &self.finished_prefix
    }

    pub(crate) fn failed_prefix(&self) -> &str {
        &self.failed_prefix
    }

    pub(crate) fn deferred_prefix(&self) -> &str {
        &self.deferred_prefix
    }

    pub(crate) fn scheduled_prefix(&self) -> &str {
        &self.scheduled_prefix
    }

    pub(crate) fn canceled_prefix(&self) -> &str {
        &self.canceled_prefix
    }

    pub(crate) fn group_prefix(&self) -> &str {
        &self.group_prefix
    }

    /// `rq:queue:<q>`: LIST of job ids.
    pub(crate) fn queue(&self, name: &str) -> String {
        format!("{}{name}", self.queue_prefix)
    }

    /// `rq:queue:<q>:intermediate`: LIST of the ids a Python worker took off the queue (its
    /// BLMOVE) and has not started yet.
    pub(crate) fn intermediate(&self, name: &str) -> String {
        format!("{}{name}{INTERMEDIATE_SUFFIX}", self.queue_prefix)
    }

    /// `rq:queue:<q>:intermediate:first_seen:<id>`: when a cleanup first saw `<id>` on the
    /// intermediate list without a run (epoch float), shared with Python's cleanup.
    /// `stranded.lua` gets it without the id, and adds the id.
    pub(crate) fn intermediate_first_seen(&self, name: &str, id: &str) -> String {
        format!("{}:first_seen:{id}", self.intermediate(name))
    }

    /// `rq:pubsub:<name>`: the worker's control channel (JSON commands: shutdown, kill-horse,
    /// stop-job, stop-execution), as RQ's `send_*_command` publish them.
    pub(crate) fn worker_channel(&self, name: &str) -> String {
        format!("{}:pubsub:{name}", self.prefix)
    }

    /// `rq:job:<id>`: HASH of the job.
    pub(crate) fn job(&self, id: &str) -> String {
        format!("{}{id}", self.job_prefix)
    }

    /// `rq:job:<id>:dependents`: SET of the ids waiting on the job.
    pub(crate) fn job_dependents(&self, id: &str) -> String {
        format!("{}{id}{DEPENDENTS_SUFFIX}", self.job_prefix)
    }

    /// `rq:job::<id>:dependencies`: SET of the ids the job waits on.
    pub(crate) fn job_dependencies(&self, id: &str) -> String {
        format!("{}{id}{DEPENDENCIES_SUFFIX}", self.dependencies_prefix)
    }

    /// `rq:results:<id>`: STREAM of the job's results.
    pub(crate) fn results(&self, id: &str) -> String {
        format!("{}{id}", self.results_prefix)
    }

    /// `rq:execution:<id>:<eid>`: HASH of one run of a job.
    pub(crate) fn execution(&self, id: &str, execution_id: &str) -> String {
        format!("{}{id}:{execution_id}", self.execution_prefix)
    }

    /// `rq:executions:<id>`: ZSET of the job's execution ids.
    pub(crate) fn executions(&self, id: &str) -> String {
        format!("{}{id}", self.executions_prefix)
    }

    /// `rq:worker:<name>`: HASH of a worker.
    pub(crate) fn worker(&self, name: &str) -> String {
        format!("{}{name}", self.worker_prefix)
    }

    /// `rq:worker:<name>:executions`: SET of the runs a worker has (RQ 3.0's index), members
    /// `<id>:<eid>`. Scripts that end a run build it from the worker hash's key and
    /// [`WORKER_EXECUTIONS_SUFFIX`].
    pub(crate) fn worker_executions(&self, name: &str) -> String {
        format!("{}{name}{WORKER_EXECUTIONS_SUFFIX}", self.worker_prefix)
    }

    /// `rq:workers:<q>`: SET of the keys of the workers that listen on `<q>`.
    pub(crate) fn workers_by_queue(&self, queue: &str) -> String {
        format!("{}:workers:{queue}", self.prefix)
    }

    /// `rq:wip:<q>`: ZSET StartedJobRegistry, members `<id>:<eid>`.
    pub(crate) fn started(&self, queue: &str) -> String {
        format!("{}{queue}", self.started_prefix)
    }

    /// `rq:finished:<q>`: ZSET FinishedJobRegistry.
    pub(crate) fn finished(&self, queue: &str) -> String {
        format!("{}{queue}", self.finished_prefix)
    }

    /// `rq:failed:<q>`: ZSET FailedJobRegistry.
    pub(crate) fn failed(&self, queue: &str) -> String {
        format!("{}{queue}", self.failed_prefix)
    }

    /// `rq:deferred:<q>`: ZSET DeferredJobRegistry, scored by when the job was deferred.
    pub(crate) fn deferred(&self, queue: &str) -> String {
        format!("{}{queue}", self.deferred_prefix)
    }

    /// `rq:scheduled:<q>`: ZSET ScheduledJobRegistry, scored by the whole epoch second it is
    /// due.
    pub(crate) fn scheduled(&self, queue: &str) -> String {
        format!("{}{queue}", self.scheduled_prefix)
    }

    /// `rq:canceled:<q>`: ZSET CanceledJobRegistry, scored by when the job was canceled.
    pub(crate) fn canceled(&self, queue: &str) -> String {
        format!("{}{queue}", self.canceled_prefix)
    }

    /// `rq:ready:<q>`: ZSET ReadyJobRegistry (RQ 3.0): dependents released and not yet on
    /// their queue, scored by when they were released.
    pub(crate) fn ready(&self, queue: &str) -> String {
        format!("{}ready:{queue}", self.root)
    }

    /// `rq:group:<name>`: SET of the ids of a group's jobs.
    pub(crate) fn group(&self, name: &str) -> String {
        format!("{}{name}", self.group_prefix)
    }

    /// `rq:clean_registries:<q>`: the lock of a queue's registry maintenance, shared with RQ's
    /// workers so that one process at a time cleans a queue.
    pub(crate) fn clean_registries(&self, queue: &str) -> String {
        format!("{}:clean_registries:{queue}", self.prefix)
    }

    /// `rq:scheduler-lock:<q>`: the name of the one scheduler (rqrs's or Python's) that may
    /// enqueue the queue's due scheduled jobs.
    pub(crate) fn scheduler_lock(&self, queue: &str) -> String {
        format!("{}:scheduler-lock:{queue}", self.prefix)
    }

    /// `rq:scheduler:<name>`: HASH of a running scheduler (RQ 2.10+).
    pub(crate) fn scheduler(&self, name: &str) -> String {
        format!("{}:scheduler:{name}", self.prefix)
    }

    /// The key of a queue's registry of `kind`.
    pub(crate) fn registry(&self, kind: RegistryKind, queue: &str) -> String {
        match kind {
            RegistryKind::Started => self.started(queue),
            RegistryKind::Finished => self.finished(queue),
            RegistryKind::Failed => self.failed(queue),
            RegistryKind::Deferred => self.deferred(queue),
            RegistryKind::Scheduled => self.scheduled(queue),
            RegistryKind::Canceled => self.canceled(queue),
        }
    }

    /// The queue name of a queue key, if it is one.
    pub(crate) fn queue_name<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.queue_prefix.as_str())
    }

    /// The worker name of a worker key, if it is one.
    pub(crate) fn worker_name<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.worker_prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The compatibility contract, whose key table must list exactly the keys built here.
    const LAYOUT: &str = include_str!("../../../../../docs/redis-layout.md");
    /// This file, to catch a key function added without a line in [`built`].
    const SOURCE: &str = include_str!("keys.rs");

    /// Every full key and key builder of this file, by name, with placeholders for its parts,
    /// under the default prefix.
    fn built() -> Vec<(&'static str, String)> {
        let k = Keys::default();
        vec![
            ("queues", k.queues().to_owned()),
            ("workers", k.workers().to_owned()),
            ("queue", k.queue("<q>")),
            ("intermediate", k.intermediate("<q>")),
            (
                "intermediate_first_seen",
                k.intermediate_first_seen("<q>", "<id>"),
            ),
            ("job", k.job("<id>")),
            ("job_dependents", k.job_dependents("<id>")),
            ("job_dependencies", k.job_dependencies("<id>")),
            ("results", k.results("<id>")),
            ("execution", k.execution("<id>", "<eid>")),
            ("executions", k.executions("<id>")),
            ("worker", k.worker("<name>")),
            ("worker_executions", k.worker_executions("<name>")),
            ("workers_by_queue", k.workers_by_queue("<q>")),
            ("started", k.started("<q>")),
            ("finished", k.finished("<q>")),
            ("failed", k.failed("<q>")),
            ("clean_registries", k.clean_registries("<q>")),
            ("deferred", k.deferred("<q>")),
            ("scheduled", k.scheduled("<q>")),
            ("canceled", k.canceled("<q>")),
            ("ready", k.ready("<q>")),
            ("suspended", k.suspended().to_owned()),
            ("worker_channel", k.worker_channel("<name>")),
            ("scheduler_lock", k.scheduler_lock("<q>")),
            ("scheduler", k.scheduler("<name>")),
            ("groups", k.groups().to_owned()),
            ("rate_limits", k.rate_limits().to_owned()),
            ("rate_limit", k.rate_limit("<key>")),
            ("rate_limit_allowed", k.rate_limit_allowed("<key>")),
            ("rate_limit_waiting", k.rate_limit_waiting("<key>")),
            ("group", k.group("<name>")),
        ]
    }

    /// Functions that read keys, or make the set of keys, instead of building a key.
    const PARSERS: &[&str] = &["new", "prefix", "registry", "queue_name", "worker_name"];

    /// Pieces of keys, handed to Lua scripts and parsers (functions and constants).
    const PIECES: &[&str] = &[
        "DEFAULT_PREFIX",
        "root",
        "DEPENDENTS_SUFFIX",
        "DEPENDENCIES_SUFFIX",
        "WORKER_EXECUTIONS_SUFFIX",
        "INTERMEDIATE_SUFFIX",
        "queue_prefix",
        "job_prefix",
        "dependencies_prefix",
        "results_prefix",
        "execution_prefix",
        "executions_prefix",
        "started_prefix",
        "finished_prefix",
        "failed_prefix",
        "deferred_prefix",
        "scheduled_prefix",
        "canceled_prefix",
        "group_prefix",
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
        let declared: Vec<String> = declared("fn")
            .into_iter()
            .chain(declared("const"))
            .collect();
        let known =
            |name: &str| built.contains(&name) || PARSERS.contains(&name) || PIECES.contains(&name);
        let unknown: Vec<&String> = declared.iter().filter(|name| !known(name)).collect();
        assert!(
            unknown.is_empty(),
            "keys.rs declares {unknown:?}, unknown to its tests: add key builders and full keys \
             to `built()` (and a row to docs/redis-layout.md), parsers to PARSERS, key pieces \
             to PIECES"
        );
        for name in PARSERS.iter().chain(PIECES) {
            assert!(
                declared.iter().any(|d| d == name),
                "the layout test names {name}, which keys.rs no longer declares"
            );
        }
    }

    #[test]
    fn scripts_compose_the_same_keys_as_the_builders() {
        for k in [Keys::default(), Keys::new("{app}").expect("a valid prefix")] {
            let p = k.prefix();
            // The scripts build these keys from the pieces.
            assert_eq!(format!("{}<id>", k.job_prefix()), k.job("<id>"));
            assert_eq!(
                format!("{}<id>{DEPENDENTS_SUFFIX}", k.job_prefix()),
                k.job_dependents("<id>")
            );
            assert_eq!(
                format!("{}<id>{DEPENDENCIES_SUFFIX}", k.dependencies_prefix()),
                k.job_dependencies("<id>")
            );
            assert_eq!(format!("{}<q>", k.started_prefix()), k.started("<q>"));
            assert_eq!(format!("{}<id>", k.results_prefix()), k.results("<id>"));
            assert_eq!(
                format!("{}<id>:<eid>", k.execution_prefix()),
                k.execution("<id>", "<eid>")
            );
            assert_eq!(
                format!("{}<id>", k.executions_prefix()),
                k.executions("<id>")
            );
            assert_eq!(format!("{}<name>", k.group_prefix()), k.group("<name>"));
            for (prefix, key) in [
                (k.queue_prefix(), k.queue("<q>")),
                (k.finished_prefix(), k.finished("<q>")),
                (k.failed_prefix(), k.failed("<q>")),
                (k.deferred_prefix(), k.deferred("<q>")),
                (k.scheduled_prefix(), k.scheduled("<q>")),
                (k.canceled_prefix(), k.canceled("<q>")),
            ] {
                assert_eq!(format!("{prefix}<q>"), key);
            }
            assert!(k.worker_channel("w").starts_with(&format!("{p}:")));
            // limit.lua's and limits_cleanup.lua's keys, from the root.
            let root = k.root();
            assert_eq!(format!("{root}rl:<key>"), k.rate_limit("<key>"));
            assert_eq!(
                format!("{root}rl:<key>:allowed"),
                k.rate_limit_allowed("<key>")
            );
            assert_eq!(
                format!("{root}rl:<key>:rate_limited"),
                k.rate_limit_waiting("<key>")
            );
            assert_eq!(format!("{root}rl-keys"), k.rate_limits());
            assert_eq!(format!("{root}job:<id>"), k.job("<id>"));
            assert_eq!(format!("{root}queue:<q>"), k.queue("<q>"));
            assert_eq!(format!("{root}queues"), k.queues());
            assert_eq!(format!("{root}executions:<id>"), k.executions("<id>"));
            // lib.lua's key of a queue's intermediate list.
            assert_eq!(
                format!("{}{INTERMEDIATE_SUFFIX}", k.queue("<q>")),
                k.intermediate("<q>")
            );
            // lib.lua's key of a worker's set of executions.
            assert_eq!(
                format!("{}{WORKER_EXECUTIONS_SUFFIX}", k.worker("<name>")),
                k.worker_executions("<name>")
            );
            // requeue.lua's member of `rq:queues` and the readers of the sets.
            assert_eq!(k.queue_name(&k.queue("default")), Some("default"));
            assert_eq!(k.queue_name(&k.worker("w1")), None);
            assert_eq!(k.worker_name(&k.worker("w1")), Some("w1"));
            assert_eq!(k.worker_name(&k.queue("default")), None);
        }
    }

    #[test]
    fn lib_lua_spells_the_suffixes_of_keys_rs() {
        let lib = include_str!("scripts/lib.lua");
        for suffix in [INTERMEDIATE_SUFFIX, WORKER_EXECUTIONS_SUFFIX] {
            assert!(
                lib.contains(&format!("'{suffix}'")),
                "lib.lua lacks {suffix:?}"
            );
        }
    }

    #[test]
    fn a_key_prefix_is_checked_and_prefixes_every_key() {
        let k = Keys::new("{rq}").expect("a hash tag is a valid prefix");
        assert_eq!(k.queue("default"), "{rq}:queue:default");
        assert_eq!(k.job_dependencies("a"), "{rq}:job::a:dependencies");
        assert_eq!(k.worker_channel("w"), "{rq}:pubsub:w");
        for bad in ["", "rq prefix", "rq/x", "é"] {
            let error = Keys::new(bad).expect_err(bad);
            assert!(error.to_string().contains("key prefix"), "{bad:?}: {error}");
        }
    }
}

//! Every Redis key rqrs reads or writes, spelled here and nowhere else.
//!
//! The layout is Python RQ 2.12's (`rq:` prefix, hard-coded there too), so Python producers,
//! workers and `rq info` share the data. `docs/redis-layout.md` lists the same keys; a test
//! checks that the two agree. Lua scripts get key prefixes from here as arguments, so they
//! spell no key either.

/// SET of queue keys (`rq:queue:<q>`), as `Queue.all()` reads it.
pub(crate) const QUEUES: &str = "rq:queues";
/// SET of live worker keys.
pub(crate) const WORKERS: &str = "rq:workers";

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

/// `rq:queue:<q>`: LIST of job ids.
pub(crate) fn queue(name: &str) -> String {
    format!("{QUEUE_PREFIX}{name}")
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

/// `rq:job::<id>:dependencies`: SET of the ids the job waits on. The double colon is RQ's
/// (it builds the key as `'rq:job:' + ':' + id`); readers must spell it the same way.
pub(crate) fn job_dependencies(id: &str) -> String {
    format!("{JOB_PREFIX}:{id}:dependencies")
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

/// `rq:clean_registries:<q>`: the lock of a queue's registry maintenance, shared with RQ's
/// workers so that one process at a time cleans a queue.
pub(crate) fn clean_registries(queue: &str) -> String {
    format!("rq:clean_registries:{queue}")
}

/// The queue name of a queue key, if it is one.
pub(crate) fn queue_name(key: &str) -> Option<&str> {
    key.strip_prefix(QUEUE_PREFIX)
}

/// The worker name of a worker key, if it is one.
pub(crate) fn worker_name(key: &str) -> Option<&str> {
    key.strip_prefix(WORKER_PREFIX)
}

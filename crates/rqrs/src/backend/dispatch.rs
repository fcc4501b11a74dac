//! [`AnyBackend`] implements every trait of the seam by passing each call to the backend it
//! holds. A new backend is one more arm in [`dispatch!`] and one more variant of the enum.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::task::JoinSet;

use super::types::{
    Commands, Ending, Execution, Failed, Finishing, HeartbeatReply, JobRecord, Liveness, Lock,
    NewJob, Recorded, Replicas, Retried, RunId, SchedulerRecord, Watch, Worked,
};
use super::{
    AnyBackend, Backend, ConnectOptions, GroupStore, JobStore, QueueStore, RegistryStore, RunStore,
    ScheduleStore, WorkerStore,
};
use crate::command::Command;
use crate::error::Result;
use crate::job::{JobId, JobStatus};
use crate::registry::RegistryKind;
use crate::results::JobResult;
use crate::ttl::Ttl;
use crate::worker::{WorkerInfo, WorkerState};

/// Calls `$call` on the backend that `$self` holds, as `$backend`.
macro_rules! dispatch {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            AnyBackend::Redis($backend) => $call,
            AnyBackend::Sqlite($backend) => $call,
        }
    };
}

impl Backend for AnyBackend {
    fn url(&self) -> String {
        dispatch!(self, backend => backend.url())
    }

    fn connect_options(&self) -> ConnectOptions {
        dispatch!(self, backend => backend.connect_options())
    }

    fn is_shared(&self) -> bool {
        dispatch!(self, backend => backend.is_shared())
    }

    async fn detached(&self) -> Result<Self> {
        Ok(match self {
            AnyBackend::Redis(backend) => AnyBackend::Redis(backend.detached().await?),
            AnyBackend::Sqlite(backend) => AnyBackend::Sqlite(backend.detached().await?),
        })
    }
}

impl JobStore for AnyBackend {
    async fn enqueue(
        &self,
        queue: &str,
        jobs: &[NewJob],
        group: Option<&str>,
        replicas: Option<Replicas>,
    ) -> Result<Vec<JobStatus>> {
        dispatch!(self, backend => backend.enqueue(queue, jobs, group, replicas).await)
    }

    async fn fetch_job(&self, id: &JobId) -> Result<Option<JobRecord>> {
        dispatch!(self, backend => backend.fetch_job(id).await)
    }

    async fn fetch_jobs(&self, ids: &[JobId]) -> Result<Vec<Option<JobRecord>>> {
        dispatch!(self, backend => backend.fetch_jobs(ids).await)
    }

    async fn save_meta(&self, id: &JobId, meta: &Map<String, Value>) -> Result<()> {
        dispatch!(self, backend => backend.save_meta(id, meta).await)
    }

    async fn latest_result(&self, id: &JobId) -> Result<Option<JobResult>> {
        dispatch!(self, backend => backend.latest_result(id).await)
    }

    async fn results(&self, id: &JobId) -> Result<Vec<JobResult>> {
        dispatch!(self, backend => backend.results(id).await)
    }

    async fn cancel(&self, id: &JobId, origin: &str) -> Result<()> {
        dispatch!(self, backend => backend.cancel(id, origin).await)
    }

    async fn delete(&self, id: &JobId, origin: &str, dependents: bool) -> Result<usize> {
        dispatch!(self, backend => backend.delete(id, origin, dependents).await)
    }
}

impl QueueStore for AnyBackend {
    async fn queue_names(&self) -> Result<Vec<String>> {
        dispatch!(self, backend => backend.queue_names().await)
    }

    async fn queue_count(&self, queue: &str) -> Result<usize> {
        dispatch!(self, backend => backend.queue_count(queue).await)
    }

    async fn queue_job_ids(
        &self,
        queue: &str,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<JobId>> {
        dispatch!(self, backend => backend.queue_job_ids(queue, offset, limit).await)
    }

    async fn queue_position(&self, queue: &str, id: &JobId) -> Result<Option<usize>> {
        dispatch!(self, backend => backend.queue_position(queue, id).await)
    }

    async fn empty_queue(&self, queue: &str) -> Result<usize> {
        dispatch!(self, backend => backend.empty_queue(queue).await)
    }
}

impl RegistryStore for AnyBackend {
    async fn registry_count(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        dispatch!(self, backend => backend.registry_count(kind, queue).await)
    }

    async fn registry_job_ids(&self, kind: RegistryKind, queue: &str) -> Result<Vec<JobId>> {
        dispatch!(self, backend => backend.registry_job_ids(kind, queue).await)
    }

    async fn registry_remove(
        &self,
        kind: RegistryKind,
        queue: &str,
        id: &JobId,
        delete_job: bool,
    ) -> Result<bool> {
        dispatch!(self, backend => backend.registry_remove(kind, queue, id, delete_job).await)
    }

    async fn expire_entries(&self, kind: RegistryKind, queue: &str) -> Result<usize> {
        dispatch!(self, backend => backend.expire_entries(kind, queue).await)
    }

    async fn abandoned_runs(&self, queue: &str) -> Result<Vec<RunId>> {
        dispatch!(self, backend => backend.abandoned_runs(queue).await)
    }

    async fn clean_rate_limits(&self) -> Result<usize> {
        dispatch!(self, backend => backend.clean_rate_limits().await)
    }

    async fn recover_stranded(&self, queue: &str) -> Result<usize> {
        dispatch!(self, backend => backend.recover_stranded(queue).await)
    }

    async fn lock_maintenance(&self, queue: &str, ttl: Duration) -> Result<bool> {
        dispatch!(self, backend => backend.lock_maintenance(queue, ttl).await)
    }

    async fn unlock_maintenance(&self, queue: &str, hold: Duration) -> Result<()> {
        dispatch!(self, backend => backend.unlock_maintenance(queue, hold).await)
    }

    async fn requeue(&self, queue: &str, id: &JobId, at_front: bool) -> Result<bool> {
        dispatch!(self, backend => backend.requeue(queue, id, at_front).await)
    }

    async fn add_to_failed(
        &self,
        id: &JobId,
        queue: &str,
        failure_ttl: Option<Ttl>,
        exc_info: &str,
    ) -> Result<()> {
        dispatch!(self, backend => backend.add_to_failed(id, queue, failure_ttl, exc_info).await)
    }
}

impl GroupStore for AnyBackend {
    async fn group_names(&self) -> Result<Vec<String>> {
        dispatch!(self, backend => backend.group_names().await)
    }

    async fn group_exists(&self, name: &str) -> Result<bool> {
        dispatch!(self, backend => backend.group_exists(name).await)
    }

    async fn group_cleanup(&self, name: &str) -> Result<(usize, Vec<JobId>)> {
        dispatch!(self, backend => backend.group_cleanup(name).await)
    }

    async fn group_remove(&self, name: &str, id: &JobId) -> Result<bool> {
        dispatch!(self, backend => backend.group_remove(name, id).await)
    }

    async fn clean_groups(&self) -> Result<usize> {
        dispatch!(self, backend => backend.clean_groups().await)
    }
}

impl RunStore for AnyBackend {
    async fn work(
        &self,
        worker: &str,
        finishing: &[&Finishing],
        queues: &[String],
        execution_ids: &[String],
        liveness: Liveness,
    ) -> Result<Worked> {
        dispatch!(self, backend => backend.work(worker, finishing, queues, execution_ids, liveness).await)
    }

    async fn reclaim(
        &self,
        worker: &str,
        queues: &[String],
        execution_ids: &[String],
    ) -> Result<usize> {
        dispatch!(self, backend => backend.reclaim(worker, queues, execution_ids).await)
    }

    async fn heartbeat(
        &self,
        worker: &str,
        running: &[Execution],
        liveness: Liveness,
    ) -> Result<HeartbeatReply> {
        dispatch!(self, backend => backend.heartbeat(worker, running, liveness).await)
    }

    async fn fail(&self, run: &RunId, ending: Ending<'_>, failed: &Failed) -> Result<Recorded> {
        dispatch!(self, backend => backend.fail(run, ending, failed).await)
    }

    async fn retry(&self, run: &RunId, ending: Ending<'_>, retried: &Retried) -> Result<Recorded> {
        dispatch!(self, backend => backend.retry(run, ending, retried).await)
    }

    async fn release(&self, run: &RunId, worker: &str) -> Result<bool> {
        dispatch!(self, backend => backend.release(run, worker).await)
    }

    fn watch_queues(&self, queues: &[String], watch: Watch) -> JoinSet<()> {
        dispatch!(self, backend => backend.watch_queues(queues, watch))
    }
}

impl WorkerStore for AnyBackend {
    async fn register_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()> {
        dispatch!(self, backend => backend.register_worker(info, liveness).await)
    }

    async fn reregister_worker(&self, info: &WorkerInfo, liveness: Liveness) -> Result<()> {
        dispatch!(self, backend => backend.reregister_worker(info, liveness).await)
    }

    async fn set_worker_state(&self, worker: &str, state: WorkerState) -> Result<()> {
        dispatch!(self, backend => backend.set_worker_state(worker, state).await)
    }

    async fn register_death(&self, worker: &str, queues: &[String]) -> Result<()> {
        dispatch!(self, backend => backend.register_death(worker, queues).await)
    }

    async fn workers(&self, queue: Option<&str>) -> Result<Vec<WorkerInfo>> {
        dispatch!(self, backend => backend.workers(queue).await)
    }

    async fn suspend(&self, duration: Option<Duration>) -> Result<()> {
        dispatch!(self, backend => backend.suspend(duration).await)
    }

    async fn resume(&self) -> Result<()> {
        dispatch!(self, backend => backend.resume().await)
    }

    async fn is_suspended(&self) -> Result<bool> {
        dispatch!(self, backend => backend.is_suspended().await)
    }

    async fn publish(&self, worker: &str, command: &Command) -> Result<usize> {
        dispatch!(self, backend => backend.publish(worker, command).await)
    }

    async fn commands(&self, worker: &str) -> Result<Commands> {
        dispatch!(self, backend => backend.commands(worker).await)
    }
}

impl ScheduleStore for AnyBackend {
    async fn acquire_scheduler_locks(
        &self,
        name: &str,
        queues: &[String],
        ttl: Duration,
    ) -> Result<Vec<Lock>> {
        dispatch!(self, backend => backend.acquire_scheduler_locks(name, queues, ttl).await)
    }

    async fn release_scheduler_locks(&self, name: &str, queues: &[String]) -> Result<usize> {
        dispatch!(self, backend => backend.release_scheduler_locks(name, queues).await)
    }

    async fn register_scheduler(&self, record: &SchedulerRecord<'_>, ttl: Duration) -> Result<()> {
        dispatch!(self, backend => backend.register_scheduler(record, ttl).await)
    }

    async fn unregister_scheduler(&self, name: &str) -> Result<()> {
        dispatch!(self, backend => backend.unregister_scheduler(name).await)
    }

    async fn enqueue_scheduled(&self, name: &str, queue: &str) -> Result<Option<usize>> {
        dispatch!(self, backend => backend.enqueue_scheduled(name, queue).await)
    }
}

#[cfg(feature = "testing")]
impl super::TestHooks for AnyBackend {
    async fn set_run_deadline(
        &self,
        run: &RunId,
        deadline: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        dispatch!(self, backend => backend.set_run_deadline(run, deadline).await)
    }

    async fn expire_job(&self, id: &JobId) -> Result<()> {
        dispatch!(self, backend => backend.expire_job(id).await)
    }

    async fn expire_worker(&self, name: &str) -> Result<()> {
        dispatch!(self, backend => backend.expire_worker(name).await)
    }
}

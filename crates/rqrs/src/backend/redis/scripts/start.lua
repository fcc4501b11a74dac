-- Starting a run, shared by the scripts that start one (dequeue, and enqueue in test mode); the
-- loader puts this file in front of each of them, since a Redis script cannot call another.

-- Starts run `eid` of job `id` (whose hash is `job_key`) for `worker`, at `iso` (now as ISO
-- text), `nowf` (as an epoch float) and `now` (in whole seconds): an execution hash and set
-- member (the key prefixes `execution` and `executions`), a member `<id>:<eid>` of the worker's
-- set of executions `worker_executions` (RQ 3.0's index; the caller sets its expiry once per
-- call, with `expire_worker_executions`), an entry of the started registry `wip` with a deadline of now + `ttl` (the
-- sets of executions live `executions_ttl`), and the job's status and times. A started job no
-- longer expires by its ttl.
local function start_run(job_key, id, eid, worker, worker_executions, iso, nowf, now, ttl,
    executions_ttl, wip, execution, executions)
  local execution_key = execution .. id .. ':' .. eid
  local executions_key = executions .. id
  redis.call('HSET', execution_key, 'id', eid, 'job_id', id, 'created_at', nowf,
    'last_heartbeat', nowf, 'worker_name', worker)
  redis.call('EXPIRE', execution_key, ttl)
  redis.call('ZADD', executions_key, now + executions_ttl, eid)
  redis.call('EXPIRE', executions_key, executions_ttl)
  redis.call('SADD', worker_executions, id .. ':' .. eid)
  redis.call('ZADD', wip, now + ttl, id .. ':' .. eid)
  redis.call('HSET', job_key, 'status', 'started', 'started_at', iso, 'ended_at', '',
    'worker_name', worker, 'last_heartbeat', iso)
  redis.call('PERSIST', job_key)
end

-- Sets the expiry of a worker's set of executions after runs were started in it.
local function expire_worker_executions(worker_executions, executions_ttl)
  redis.call('EXPIRE', worker_executions, executions_ttl)
end


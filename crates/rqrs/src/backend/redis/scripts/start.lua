-- Starting a run, shared by the scripts that start one (work, and enqueue in test mode); the
-- loader puts this file in front of each of them, since a Redis script cannot call another.

-- Starts run `eid` of job `id` (whose hash is `job_key`) for `worker`, at `iso` (now as ISO
-- text), `nowf` (as an epoch float) and `now` (in whole seconds): an execution hash living
-- `ttl` (key prefix `execution`), a member of the job's set of executions living
-- `executions_ttl` (key prefix `executions`), and the job's status and times. A started job no
-- longer expires by its ttl. Returns the run's member `<id>:<eid>`: the caller adds it to the
-- started registry, with a deadline of now + `ttl`, and to the worker's set of executions (RQ
-- 3.0's index), with one command for all the runs it starts at once.
local function start_run(job_key, id, eid, worker, iso, nowf, now, ttl, executions_ttl,
    execution, executions)
  local execution_key = execution .. id .. ':' .. eid
  local executions_key = executions .. id
  redis.call('HSET', execution_key, 'id', eid, 'job_id', id, 'created_at', nowf,
    'last_heartbeat', nowf, 'worker_name', worker)
  redis.call('EXPIRE', execution_key, ttl)
  redis.call('ZADD', executions_key, now + executions_ttl, eid)
  redis.call('EXPIRE', executions_key, executions_ttl)
  redis.call('HSET', job_key, 'status', 'started', 'started_at', iso, 'ended_at', '',
    'worker_name', worker, 'last_heartbeat', iso)
  redis.call('PERSIST', job_key)
  return id .. ':' .. eid
end

-- Starting a run, shared by the scripts that start one (dequeue, and enqueue in test mode); the
-- loader puts this file in front of each of them, since a Redis script cannot call another.

-- Starts run `eid` of job `id` (whose hash is `job_key`) for `worker`: an execution hash and
-- set member, a started-registry entry with a deadline of now + `ttl` (the set of executions
-- lives `executions_ttl`), and the job's status and times. A started job no longer expires by
-- its ttl. `at` holds now as ISO text, as an epoch float and in whole seconds.
local function start_run(job_key, id, eid, worker, at, ttl, executions_ttl, wip, prefixes)
  local execution_key = prefixes.execution .. id .. ':' .. eid
  local executions_key = prefixes.executions .. id
  redis.call('HSET', execution_key, 'id', eid, 'created_at', at.float, 'last_heartbeat', at.float,
    'worker_name', worker)
  redis.call('EXPIRE', execution_key, ttl)
  redis.call('ZADD', executions_key, at.seconds + executions_ttl, eid)
  redis.call('EXPIRE', executions_key, executions_ttl)
  redis.call('ZADD', wip, at.seconds + ttl, id .. ':' .. eid)
  redis.call('HSET', job_key, 'status', 'started', 'started_at', at.iso, 'ended_at', '',
    'worker_name', worker, 'last_heartbeat', at.iso)
  redis.call('PERSIST', job_key)
end


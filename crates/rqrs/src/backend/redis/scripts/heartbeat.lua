-- Refreshes a worker and every execution it runs, so that neither the worker nor its jobs
-- count as dead: the worker hash's heartbeat and TTL and its set of executions' TTL, and per
-- execution the started-registry deadline (ZADD XX: an entry already recovered is not brought
-- back, and leaves the worker's set of executions), the execution hash and set, and the job's
-- last_heartbeat.
-- KEYS[1]: the worker hash; [2]: its set of executions
-- ARGV[1]: now (ISO); [2]: now (epoch float); [3]: now (whole seconds); [4]: heartbeat ttl;
-- [5]: worker hash ttl; [6]: the ttl of a job's set of executions; [7..10]: key prefixes of
-- jobs, started registries, executions, execution sets; then (job id, execution id, queue name)
-- per running execution
-- Returns: {worker hash was missing (1/0), ids of executions no longer in the started registry...}
local iso, nowf, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local executions_ttl = tonumber(ARGV[6])
local job_prefix, wip_prefix, execution_prefix, executions_prefix = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
-- An expired worker hash is not brought back piecemeal (Python's readers need `birth`): the
-- worker is told, and registers again in full.
local missing = 1
if redis.call('EXISTS', KEYS[1]) == 1 then
  missing = 0
  redis.call('HSET', KEYS[1], 'last_heartbeat', iso)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
local out = {missing}
for i = 11, #ARGV, 3 do
  local id, eid, queue = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local wip = wip_prefix .. queue
  if redis.call('ZADD', wip, 'XX', 'CH', now + ttl, id .. ':' .. eid) == 0
      and not redis.call('ZSCORE', wip, id .. ':' .. eid) then
    out[#out + 1] = eid
    redis.call('SREM', KEYS[2], id .. ':' .. eid)
  else
    local execution_key = execution_prefix .. id .. ':' .. eid
    redis.call('HSET', execution_key, 'last_heartbeat', nowf)
    redis.call('EXPIRE', execution_key, ttl)
    redis.call('ZADD', executions_prefix .. id, now + executions_ttl, eid)
    redis.call('EXPIRE', executions_prefix .. id, executions_ttl)
    if redis.call('EXISTS', job_prefix .. id) == 1 then
      redis.call('HSET', job_prefix .. id, 'last_heartbeat', iso)
    end
  end
end
return out

-- Takes up to ARGV[1] jobs from the queues in priority order and starts each one in the same
-- step: the id leaves the queue list and enters the started registry with an execution record
-- and a deadline, so a job is never held only in a worker's memory. Ids whose job hash is gone
-- (expired by its ttl, or deleted) are dropped, as RQ's workers drop them. Nothing is taken
-- while workers are suspended (`rq suspend`). (start.lua is loaded in front of this script.)
-- KEYS[1..n]: the queue lists (rq:queue:<q>), highest priority first; KEYS[n+1]: the worker
-- hash; KEYS[n+2]: its set of executions; KEYS[n+3]: the suspension flag (rq:suspended)
-- ARGV[1]: how many jobs at most; ARGV[2]: worker name
-- ARGV[3]: now (ISO); ARGV[4]: now (epoch float); ARGV[5]: now (whole epoch seconds)
-- ARGV[6]: heartbeat ttl in seconds (the started-registry deadline is now + ttl);
-- ARGV[7]: the ttl of a job's set of executions
-- ARGV[8..11]: key prefixes of jobs, started registries, executions, execution sets
-- ARGV[12..11+n]: the queue names of KEYS[1..n]; ARGV[12+n..]: execution ids, one per job wanted
-- Returns: {'suspended'} while suspended; else a flat list of (queue index, job id, execution
-- id, HGETALL of the job) per job.
local want = tonumber(ARGV[1])
local worker = ARGV[2]
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {'suspended'} end
local iso, nowf, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
local ttl, executions_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local job_prefix, wip_prefix, execution_prefix, executions_prefix = ARGV[8], ARGV[9], ARGV[10],
  ARGV[11]
local queues = #KEYS - 3
local worker_key = KEYS[#KEYS - 2]
local worker_executions = KEYS[#KEYS - 1]
local out = {}
local taken = 0
local last_id = nil
for q = 1, queues do
  while taken < want do
    local id = redis.call('LPOP', KEYS[q])
    if not id then break end
    local job_key = job_prefix .. id
    if redis.call('EXISTS', job_key) == 1 then
      taken = taken + 1
      local eid = ARGV[11 + queues + taken]
      start_run(job_key, id, eid, worker, worker_executions, iso, nowf, now, ttl, executions_ttl,
        wip_prefix .. ARGV[11 + q], execution_prefix, executions_prefix)
      out[#out + 1] = q
      out[#out + 1] = id
      out[#out + 1] = eid
      out[#out + 1] = redis.call('HGETALL', job_key)
      last_id = id
    end
  end
end
if last_id and redis.call('EXISTS', worker_key) == 1 then
  redis.call('HSET', worker_key, 'state', 'busy', 'current_job', last_id,
    'current_job_working_time', '0', 'last_heartbeat', iso)
end
return out

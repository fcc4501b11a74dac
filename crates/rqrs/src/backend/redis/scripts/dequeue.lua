-- Takes up to ARGV[1] jobs from the queues in priority order and starts each one in the same
-- step: the id leaves the queue list and enters the started registry with an execution record
-- and a deadline, so a job is never held only in a worker's memory. Ids whose job hash is gone
-- (expired by its ttl, or deleted) are dropped, as RQ's workers drop them. So is a second copy
-- of an id (two cleanups that recovered one run at once each put the job back): the job runs
-- already (`started`, with a run in the started registry), or has ended and is in the registry
-- of its status; it would run twice. Nothing is taken while workers are suspended
-- (`rq suspend`). (start.lua is loaded in front of this script.)
-- KEYS[1..n]: the queue lists (rq:queue:<q>), highest priority first; KEYS[n+1]: the worker
-- hash; KEYS[n+2]: its set of executions; KEYS[n+3]: the suspension flag (rq:suspended)
-- ARGV[1]: how many jobs at most; ARGV[2]: worker name
-- ARGV[3]: now (ISO); ARGV[4]: now (epoch float); ARGV[5]: now (whole epoch seconds)
-- ARGV[6]: heartbeat ttl in seconds (the started-registry deadline is now + ttl);
-- ARGV[7]: the ttl of a job's set of executions
-- ARGV[8..14]: key prefixes of jobs, started registries, executions, execution sets, finished,
-- failed and canceled registries
-- ARGV[15..14+n]: the queue names of KEYS[1..n]; ARGV[15+n..]: execution ids, one per job wanted
-- Returns: {'suspended'} while suspended; else a flat list of (queue index, job id, execution
-- id, HGETALL of the job) per job.
local want = tonumber(ARGV[1])
local worker = ARGV[2]
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {'suspended'} end
local iso, nowf, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
local ttl, executions_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local job_prefix, wip_prefix, execution_prefix, executions_prefix = ARGV[8], ARGV[9], ARGV[10],
  ARGV[11]
-- The registry prefix of each ended status.
local ended = {finished = ARGV[12], failed = ARGV[13], stopped = ARGV[13], canceled = ARGV[14]}
local queues = #KEYS - 3
local worker_key = KEYS[#KEYS - 2]
local worker_executions = KEYS[#KEYS - 1]

-- Whether job `id` (of queue `name`), whose status is `status`, is already in its place: a run
-- in the started registry, or the registry of its ended status.
local function placed(id, status, name)
  if status == 'started' then
    local wip = wip_prefix .. name
    for _, eid in ipairs(redis.call('ZRANGE', executions_prefix .. id, 0, -1)) do
      if redis.call('ZSCORE', wip, id .. ':' .. eid) then return true end
    end
    return false
  end
  local registry = ended[status]
  return registry ~= nil and redis.call('ZSCORE', registry .. name, id) ~= false
end

local out = {}
local taken = 0
local last_id = nil
for q = 1, queues do
  local name = ARGV[14 + q]
  while taken < want do
    local id = redis.call('LPOP', KEYS[q])
    if not id then break end
    local job_key = job_prefix .. id
    local status = redis.call('HGET', job_key, 'status')
    local waiting
    if status == 'queued' then
      waiting = true
    elseif status then
      waiting = not placed(id, status, name)
    else
      -- A hash without a status is taken, and fails as malformed.
      waiting = redis.call('EXISTS', job_key) == 1
    end
    if waiting then
      taken = taken + 1
      local eid = ARGV[14 + queues + taken]
      start_run(job_key, id, eid, worker, worker_executions, iso, nowf, now, ttl, executions_ttl,
        wip_prefix .. name, execution_prefix, executions_prefix)
      out[#out + 1] = q
      out[#out + 1] = id
      out[#out + 1] = eid
      out[#out + 1] = redis.call('HGETALL', job_key)
      last_id = id
    end
  end
end
if last_id then expire_worker_executions(worker_executions, executions_ttl) end
if last_id and redis.call('EXISTS', worker_key) == 1 then
  redis.call('HSET', worker_key, 'state', 'busy', 'current_job', last_id,
    'current_job_working_time', '0', 'last_heartbeat', iso)
end
return out

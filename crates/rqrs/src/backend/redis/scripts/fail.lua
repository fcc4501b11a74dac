-- Records a failure: status, failed registry, error in the result stream, TTLs, and (when the
-- job ran) the end of its execution and the worker's counters, in one step.
-- Who ends it (ARGV[2]): 'worker', for a run that failed; 'abandoned', for a run whose worker
-- stopped heartbeating, found by maintenance; 'hand', for a job moved to the failed registry by
-- hand, which did not run (it leaves its queue list instead).
-- A run's failure is refused when its execution is no longer in the started registry (it was
-- recovered and handed out again); an abandoned run's, also when a late heartbeat moved its
-- deadline past now. Abandoned runs get no execution fields in their result, as in RQ.
-- (lib.lua is loaded in front of this script.)
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: worker hash for 'worker', else the worker key prefix (for the abandoned run's worker);
-- [6]: failed registry; [7]: result stream;
-- [8]: dependents set; [9]: dependencies set; [10]: queue list
-- ARGV[1]: job id; [2]: who ends it; [3]: execution id ('' by hand); [4]: worker name ('' unless
-- 'worker'); [5]: now (ISO); [6]: now (whole seconds); [7]: failure_ttl, or '' when the job has
-- none; [8]: the default failure ttl; [9]: error text, base64 of zlib; [10]: execution start
-- (epoch float, 'worker' only); [11]: end (epoch float); [12]: working time in seconds;
-- [13]: status to set ('failed' or 'stopped'); [14]: how many results a job keeps;
-- [15..22]: key pieces for release_dependents (see lib.lua)
-- A job of a rate limit gives its slot back (limit.lua, loaded in front of lib.lua).
-- Returns: 1 when recorded, 2 when an earlier call recorded this run (its reply was lost), 0
-- when the execution was stale, -1 when the job does not exist.
local id, by, eid, worker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local kept = tonumber(ARGV[14])
local p = pieces(15)
if by ~= 'hand' then
  local deadline = redis.call('ZSCORE', KEYS[2], id .. ':' .. eid)
  if not deadline then
    if by == 'worker' then
      forget_current(KEYS[5], id, eid)
      if recorded_before(KEYS[7], eid, kept) then return 2 end
      release_if_idle(p.limits, KEYS[1], id, ARGV[5])
    end
    return 0
  end
  -- An abandoned run's deadline must still be past: a late heartbeat saves it.
  if by == 'abandoned' then
    if tonumber(deadline) > tonumber(ARGV[6]) then return 0 end
    if not end_abandoned(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[10], id, eid) then
      return 0
    end
  else
    end_execution(KEYS[2], KEYS[3], KEYS[4], id, eid)
  end
else
  redis.call('LREM', KEYS[10], 0, id)
end
if by == 'worker' then
  count_run(KEYS[5], 'failed_job_count', ARGV[12], id, eid)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local limit = limit_of(KEYS[1])
local now = tonumber(ARGV[6])
-- RQ: the job and the registry entry default to one year; the result stream expires only when
-- failure_ttl was given explicitly; a negative failure_ttl is stored as the raw score, which
-- cleanup never reaches.
local explicit = ARGV[7] ~= ''
local ttl = tonumber(ARGV[8])
if explicit then ttl = tonumber(ARGV[7]) end
redis.call('HSET', KEYS[1], 'status', ARGV[13], 'ended_at', ARGV[5])
-- A stopped job's dependents stay deferred (RQ 2.8+); a failed one's go on if they allow it.
if ARGV[13] == 'failed' then
  release_dependents(id, 'failed', ARGV[5], p)
end
local started = ''
if by == 'worker' then started = ARGV[10] end
add_result(KEYS[7], '2', worker, 'exc_string', ARGV[9], eid, started, ARGV[11], kept)
if ttl < 0 then
  redis.call('ZADD', KEYS[6], ttl, id)
else
  redis.call('ZADD', KEYS[6], now + ttl, id)
end
if ttl == 0 then
  redis.call('DEL', KEYS[1], KEYS[8], KEYS[9])
elseif ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[8], ttl)
  redis.call('EXPIRE', KEYS[9], ttl)
end
if explicit then
  if ttl == 0 then
    redis.call('DEL', KEYS[7])
  elseif ttl > 0 then
    redis.call('EXPIRE', KEYS[7], ttl)
  elseif ttl < 0 then
    redis.call('PERSIST', KEYS[7])
  end
end
if limit then release_slot(p.limits, limit, id, ARGV[5]) end
return 1

-- Records a failure: status, failed registry, error in the result stream, TTLs, and (when the
-- job ran) the end of its execution and the worker's counters, in one step.
-- Three uses: a run that failed (ARGV[2] = execution id, ARGV[3] = worker name); an abandoned
-- run found by registry cleanup (execution id, worker name ''); a job moved to the failed
-- registry by hand (execution id '': the job leaves its queue list instead).
-- A run's failure is refused when its execution is no longer in the started registry (it was
-- recovered and handed out again); an abandoned run's, also when a late heartbeat moved its
-- deadline past now. Abandoned runs get no execution fields in their result, as in RQ.
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: worker hash; [6]: failed registry; [7]: result stream; [8]: dependents set;
-- [9]: dependencies set; [10]: queue list
-- ARGV[1]: job id; [2]: execution id or ''; [3]: worker name or ''; [4]: now (ISO);
-- [5]: now (whole seconds); [6]: failure_ttl or '' when the job has none;
-- [7]: error text, base64 of zlib; [8]: execution start (epoch float, or ''); [9]: end
-- (epoch float); [10]: working time in seconds; [11]: status to set ('failed' or 'stopped');
-- [12..18]: key pieces for release_dependents (see lib.lua, loaded in front of this script)
-- Returns: 1 when recorded, 2 when an earlier call recorded this run (its reply was lost), 0
-- when the execution was stale, -1 when the job does not exist.
local id, eid, worker = ARGV[1], ARGV[2], ARGV[3]
if eid ~= '' then
  local deadline = redis.call('ZSCORE', KEYS[2], id .. ':' .. eid)
  if not deadline then
    if worker ~= '' then
      forget_current(KEYS[5], id)
      if recorded_before(KEYS[7], eid) then return 2 end
    end
    return 0
  end
  -- An abandoned run's deadline must still be past: a late heartbeat saves it.
  if worker == '' and tonumber(deadline) > tonumber(ARGV[5]) then return 0 end
  end_execution(KEYS[2], KEYS[3], KEYS[4], id, eid)
else
  redis.call('LREM', KEYS[10], 0, id)
end
if worker ~= '' then
  count_run(KEYS[5], 'failed_job_count', ARGV[10], id)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local now = tonumber(ARGV[5])
-- RQ: the job and the registry entry default to one year; the result stream expires only when
-- failure_ttl was given explicitly; a negative failure_ttl is stored as the raw score, which
-- cleanup never reaches.
local explicit = ARGV[6] ~= ''
local ttl = 31536000
if explicit then ttl = tonumber(ARGV[6]) end
redis.call('HSET', KEYS[1], 'status', ARGV[11], 'ended_at', ARGV[4])
-- A stopped job's dependents stay deferred (RQ 2.8+); a failed one's go on if they allow it.
if ARGV[11] == 'failed' then
  release_dependents(id, 'failed', ARGV[4], pieces(12))
end
add_result(KEYS[7], '2', worker, 'exc_string', ARGV[7], eid, ARGV[8], ARGV[9])
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
return 1

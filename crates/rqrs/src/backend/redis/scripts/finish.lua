-- Records a successful run: result, finished registry, TTLs, worker counters, the end of the
-- execution, the release of the dependents, and a repeat if one is due, in one step. Refused
-- (nothing written) when the execution is no longer in the started registry, i.e. the job was
-- recovered and handed out again: a late finisher must not overwrite a newer outcome.
-- (lib.lua is loaded in front of this script.)
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: worker hash; [6]: finished registry; [7]: result stream; [8]: dependents set;
-- [9]: dependencies set; [10]: the job's queue list; [11]: its scheduled registry
-- ARGV[1]: job id; [2]: execution id; [3]: worker name; [4]: now (ISO); [5]: now (whole
-- seconds); [6]: result_ttl (0 = do not keep, -1 = forever); [7]: return value, base64 JSON
-- ('' when the function returned nothing); [8]: execution start (epoch float); [9]: end
-- (epoch float); [10]: working time in seconds; [11]: seconds until the job repeats, or '';
-- [12]: how many results a job keeps; [13..20]: key pieces for release_dependents (job prefix,
-- dependents suffix, dependencies prefix and suffix, deferred prefix, queue prefix, set of
-- queues, key prefix)
-- A job of a rate limit gives its slot back (limit.lua, loaded in front of lib.lua), unless it
-- repeats at once (it stays queued, in its slot).
-- Returns: 1 when recorded, 2 when an earlier call recorded this execution (its reply was
-- lost), 0 when the execution was stale.
local id, eid, worker = ARGV[1], ARGV[2], ARGV[3]
local kept = tonumber(ARGV[12])
local p = pieces(13)
if not end_execution(KEYS[2], KEYS[3], KEYS[4], id, eid) then
  forget_current(KEYS[5], id, eid)
  if recorded_before(KEYS[7], eid, kept) then return 2 end
  release_if_idle(p.limits, KEYS[1], id, ARGV[4])
  return 0
end
count_run(KEYS[5], 'successful_job_count', ARGV[10], id, eid)
-- One read for the job's existence and its rate limit (a job hash always has a status).
local found = redis.call('HMGET', KEYS[1], 'status', 'rate_limit_key', 'rate_limit_concurrency')
if not found[1] and redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local limit = limit_in(found[2], found[3])
release_dependents(id, 'finished', ARGV[4], p)
local ttl = tonumber(ARGV[6])
local repeating = ARGV[11] ~= ''
if ttl == 0 and not repeating then
  -- RQ deletes the job at once and records no result.
  redis.call('DEL', KEYS[1], KEYS[8], KEYS[9])
  if limit then release_slot(p.limits, limit, id, ARGV[4]) end
  return 1
end
redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', ARGV[4], 'last_heartbeat', ARGV[4])
if ttl ~= 0 then
  add_result(KEYS[7], '1', worker, 'return_value', ARGV[7], eid, ARGV[8], ARGV[9], kept)
end
if ttl > 0 then
  redis.call('EXPIRE', KEYS[7], ttl)
  redis.call('ZADD', KEYS[6], tonumber(ARGV[5]) + ttl, id)
  -- A repeating job keeps no TTL, as in RQ.
  if not repeating then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[8], ttl)
    redis.call('EXPIRE', KEYS[9], ttl)
  end
elseif ttl < 0 then
  redis.call('PERSIST', KEYS[7])
  redis.call('ZADD', KEYS[6], '+inf', id)
end
if repeating then
  local wait = tonumber(ARGV[11])
  decrement(KEYS[1], 'repeats_left')
  if wait > 0 then
    redis.call('HSET', KEYS[1], 'status', 'scheduled')
    redis.call('ZADD', KEYS[11], tonumber(ARGV[5]) + wait, id)
  else
    redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[4])
    redis.call('RPUSH', KEYS[10], id)
    redis.call('SADD', ARGV[19], KEYS[10])
    return 1
  end
end
if limit then release_slot(p.limits, limit, id, ARGV[4]) end
return 1

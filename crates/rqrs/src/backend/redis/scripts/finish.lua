-- Records a successful run: result, finished registry, TTLs, worker counters, and the end of
-- the execution, in one step. Refused (nothing written) when the execution is no longer in the
-- started registry, i.e. the job was recovered and handed out again: a late finisher must not
-- overwrite a newer outcome.
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: worker hash; [6]: finished registry; [7]: result stream; [8]: dependents set;
-- [9]: dependencies set
-- ARGV[1]: job id; [2]: execution id; [3]: worker name; [4]: now (ISO); [5]: now (whole
-- seconds); [6]: result_ttl (0 = do not keep, -1 = forever); [7]: return value, base64 JSON
-- ('' when the function returned nothing); [8]: execution start (epoch float); [9]: end
-- (epoch float); [10]: working time in seconds
-- Returns: 1 when recorded, 0 when the execution was stale.
local id, eid, worker = ARGV[1], ARGV[2], ARGV[3]
local member = id .. ':' .. eid
if not redis.call('ZSCORE', KEYS[2], member) then return 0 end
redis.call('ZREM', KEYS[2], member)
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], eid)
-- Only a live worker hash is updated: a counter written into an expired one would leave a
-- hash without `birth`, which Python's worker readers cannot parse.
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[5], 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], 'total_working_time', ARGV[10])
  if redis.call('HGET', KEYS[5], 'current_job') == id then
    redis.call('HDEL', KEYS[5], 'current_job')
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local ttl = tonumber(ARGV[6])
if ttl == 0 then
  -- RQ deletes the job at once and records no result.
  redis.call('DEL', KEYS[1], KEYS[8], KEYS[9])
  return 1
end
redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', ARGV[4], 'last_heartbeat', ARGV[4])
local entry = {'type', '1', 'worker_name', worker}
if ARGV[7] ~= '' then
  entry[#entry + 1] = 'return_value'
  entry[#entry + 1] = ARGV[7]
end
entry[#entry + 1] = 'execution_id'
entry[#entry + 1] = eid
entry[#entry + 1] = 'execution_started_at'
entry[#entry + 1] = ARGV[8]
entry[#entry + 1] = 'execution_ended_at'
entry[#entry + 1] = ARGV[9]
redis.call('XADD', KEYS[7], 'MAXLEN', '~', '10', '*', unpack(entry))
if ttl > 0 then
  redis.call('EXPIRE', KEYS[7], ttl)
  redis.call('ZADD', KEYS[6], tonumber(ARGV[5]) + ttl, id)
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[8], ttl)
  redis.call('EXPIRE', KEYS[9], ttl)
else
  redis.call('PERSIST', KEYS[7])
  redis.call('ZADD', KEYS[6], '+inf', id)
end
return 1

-- Puts a running job back at the head of its queue, ending its execution (cold shutdown: the
-- job did not finish, and must not wait for abandoned-job recovery).
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: queue list; [6]: worker hash
-- ARGV[1]: job id; [2]: execution id; [3]: now (ISO)
-- Returns: 1 when released, 0 when the execution was stale (nothing is written).
local id, eid = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', KEYS[2], id .. ':' .. eid) then
  if redis.call('HGET', KEYS[6], 'current_job') == id then
    redis.call('HDEL', KEYS[6], 'current_job')
  end
  return 0
end
redis.call('ZREM', KEYS[2], id .. ':' .. eid)
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], eid)
if redis.call('HGET', KEYS[6], 'current_job') == id then
  redis.call('HDEL', KEYS[6], 'current_job')
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[3], 'started_at', '')
  redis.call('LPUSH', KEYS[5], id)
end
return 1

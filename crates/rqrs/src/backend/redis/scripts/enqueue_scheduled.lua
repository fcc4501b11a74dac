-- Enqueues a batch of due jobs of one queue's scheduled registry, as RQ's scheduler does, but
-- only while this scheduler holds the queue's lock: a scheduler whose lock expired and was taken
-- over while it was stalled promotes nothing. Each job is queued with a new enqueued_at and
-- pushed at the head if it asks to be (enqueue_at_front, or enqueue_at_front_on_retry once it
-- has run), else at the tail; its ttl, if any, starts again (RQ's job.cleanup(ttl)). An id whose
-- job is gone is just taken off the registry.
-- KEYS[1]: the queue's scheduler lock; [2]: the scheduled registry; [3]: the queue list;
-- [4]: the set of queues
-- ARGV[1]: the scheduler's name; [2]: now (whole seconds); [3]: now (ISO); [4]: the queue key
-- (member of KEYS[4]); [5]: job key prefix; [6]: dependents suffix; [7]: dependencies key prefix;
-- [8]: dependencies suffix; [9]: the most ids to take; [10]: the longest ttl to set; [11]: the
-- key prefix. A job of a rate limit waits for a slot instead of going onto the queue (limit.lua
-- is loaded in front of this script).
-- Returns: {-1, 0} when another scheduler (or none) holds the lock; otherwise {jobs enqueued,
-- ids taken off the registry}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1, 0}
end
local job_prefix = ARGV[5]
local L = limits(ARGV[11])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], 0, ARGV[2], 'LIMIT', 0, ARGV[9])
local enqueued = 0
for _, id in ipairs(ids) do
  local key = job_prefix .. id
  if redis.call('EXISTS', key) == 1 then
    local job = redis.call('HMGET', key, 'enqueue_at_front', 'enqueue_at_front_on_retry',
      'ended_at', 'ttl')
    redis.call('HSET', key, 'status', 'queued', 'enqueued_at', ARGV[3])
    local has_run = job[3] and job[3] ~= ''
    local at_front = job[1] == '1' or (job[2] == '1' and has_run)
    local limit, concurrency = limit_of(key)
    if limit then
      wait_for_slot(L, key, id, limit, concurrency, at_front and '1' or '', ARGV[3])
    elseif at_front then
      redis.call('LPUSH', KEYS[3], id)
    else
      redis.call('RPUSH', KEYS[3], id)
    end
    local ttl = tonumber(job[4])
    -- A ttl past EXPIRE's range would stop the script half-way: such a job keeps no TTL.
    if ttl and ttl > 0 and ttl <= tonumber(ARGV[10]) then
      redis.call('EXPIRE', key, ttl)
      redis.call('EXPIRE', key .. ARGV[6], ttl)
      redis.call('EXPIRE', ARGV[7] .. id .. ARGV[8], ttl)
    end
    enqueued = enqueued + 1
  end
  redis.call('ZREM', KEYS[2], id)
end
if enqueued > 0 then
  redis.call('SADD', KEYS[4], ARGV[4])
end
return {enqueued, #ids}

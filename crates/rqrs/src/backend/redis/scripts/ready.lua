-- Recovers RQ 3.0's ready registry of a queue (`<p>:ready:<q>`): the dependents a Python 3.0
-- process released (status `ready_to_enqueue`) and died before it put them on their queue. Each
-- goes onto the queue (at the head when it asks to be, `enqueue_at_front`), status `queued`, or
-- in line for a slot when it has a rate limit; an entry whose job is gone or no longer
-- `ready_to_enqueue` is dropped. Taking the entry off is the claim a Python process checks
-- before it enqueues the job itself, so the job is enqueued once. (limit.lua is loaded in front
-- of this script.)
-- KEYS[1]: the ready registry; [2]: the queue list; [3]: the set of queues
-- ARGV[1]: the key prefix; [2]: now (ISO); [3]: the queue key (member of KEYS[3])
-- Returns: the number of jobs enqueued.
local L = limits(ARGV[1])
local enqueued = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('ZREM', KEYS[1], id)
  local job = L.job .. id
  local fields = redis.call('HMGET', job, 'status', 'enqueue_at_front')
  if fields[1] == 'ready_to_enqueue' then
    local limit, concurrency = limit_of(job)
    if limit then
      wait_for_slot(L, job, id, limit, concurrency, '', ARGV[2])
    else
      redis.call('HSET', job, 'status', 'queued', 'enqueued_at', ARGV[2])
      if fields[2] == '1' then
        redis.call('LPUSH', KEYS[2], id)
      else
        redis.call('RPUSH', KEYS[2], id)
      end
      redis.call('SADD', KEYS[3], ARGV[3])
    end
    enqueued = enqueued + 1
  end
end
return enqueued

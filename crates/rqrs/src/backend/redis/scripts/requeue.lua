-- Moves a job from the failed registry back to its queue (the job's origin, as RQ's requeue
-- does), at the tail or the head: started_at and ended_at are cleared and exc_info is set to
-- zlib of "".
-- KEYS[1]: failed registry; [2]: job hash; [3]: the set of queues
-- ARGV[1]: job id; [2]: now (ISO); [3]: zlib of ""; [4]: the queue key prefix;
-- [5]: the registry's queue name, for a job without origin; [6]: '1' to requeue at the head;
-- [7]: the key prefix. A job of a rate limit waits for a slot instead (limit.lua is loaded in
-- front of this script).
-- Returns: 1 when requeued, 0 when the job is not in the registry, -1 when its hash is gone
-- (it is then dropped from the registry too).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local origin = redis.call('HGET', KEYS[2], 'origin')
if not origin or origin == '' then origin = ARGV[5] end
local queue = ARGV[4] .. origin
redis.call('HSET', KEYS[2], 'status', 'queued', 'started_at', '', 'ended_at', '',
  'exc_info', ARGV[3], 'enqueued_at', ARGV[2])
local limit, concurrency = limit_of(KEYS[2])
if limit then
  wait_for_slot(limits(ARGV[7]), KEYS[2], ARGV[1], limit, concurrency, ARGV[6], ARGV[2])
elseif ARGV[6] == '1' then
  redis.call('LPUSH', queue, ARGV[1])
else
  redis.call('RPUSH', queue, ARGV[1])
end
redis.call('SADD', KEYS[3], queue)
return 1

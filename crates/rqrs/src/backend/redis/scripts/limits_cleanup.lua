-- Keeps the rate limits right, as RQ 3.0's RateLimitRegistry.cleanup does, for every limit in
-- `<p>:rl-keys`: a slot held by a job that neither waits on its queue nor runs (its status is
-- another, or it is gone) and has no live run is given back, the free slots are filled with the
-- waiting jobs, and a limit with neither slots held nor jobs waiting is dropped. Slots leak
-- only when a process dies between two steps of its own (a Python worker's outcome and its
-- release are separate calls); rqrs's own steps give them back in the same script.
-- (limit.lua is loaded in front of this script.)
-- KEYS[1]: the set of limit keys
-- ARGV[1]: the key prefix; [2]: now (ISO); [3]: now (epoch float)
-- Returns: the number of slots given back.
local L = limits(ARGV[1])
local executions = ARGV[1] .. 'executions:'
local freed = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rl = L.rl .. key
  local allowed = rl .. ':allowed'
  for _, id in ipairs(redis.call('ZRANGE', allowed, 0, -1)) do
    local status = redis.call('HGET', L.job .. id, 'status')
    if status ~= 'queued' and status ~= 'started'
        and redis.call('ZCOUNT', executions .. id, '(' .. ARGV[3], '+inf') == 0 then
      redis.call('ZREM', allowed, id)
      freed = freed + 1
    end
  end
  fill_slots(L, key, ARGV[2])
  if redis.call('ZCARD', allowed) == 0 and redis.call('ZCARD', rl .. ':rate_limited') == 0 then
    redis.call('SREM', KEYS[1], key)
    redis.call('DEL', rl, allowed, rl .. ':rate_limited')
  end
end
return freed

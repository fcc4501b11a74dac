-- Takes or keeps scheduler locks with RQ's acquire-or-refresh rule, one lock per queue: a free
-- lock is taken, one this scheduler holds is extended, one another scheduler holds (rqrs's or
-- Python's) is left alone.
-- KEYS[1..n]: the locks (one per queue)
-- ARGV[1]: the scheduler's name; [2]: the lock's TTL in seconds
-- Returns: per lock, 1 taken (SET name EX ttl), 2 extended (EXPIRE ttl), 0 held by another.
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
    out[i] = 1
  elseif holder == ARGV[1] then
    redis.call('EXPIRE', key, ARGV[2])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out

-- Releases the scheduler locks this scheduler holds (compare and delete); a lock another
-- scheduler has taken meanwhile is left alone.
-- KEYS[1..n]: the locks
-- ARGV[1]: the scheduler's name
-- Returns: how many locks were released.
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    released = released + redis.call('DEL', key)
  end
end
return released

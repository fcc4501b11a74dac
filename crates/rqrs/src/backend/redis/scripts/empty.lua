-- Empties a queue and deletes its jobs, as RQ's Queue.empty() does (registries and result
-- streams are left alone, as there).
-- KEYS[1]: the queue list
-- ARGV[1]: the job key prefix; ARGV[2]: the suffix of dependents sets
-- Returns: the number of ids removed.
local count = 0
while true do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  redis.call('DEL', ARGV[1] .. id, ARGV[1] .. id .. ARGV[2])
  count = count + 1
end
return count

-- Empties a queue and deletes its jobs with their dependents sets and result streams, as RQ
-- 3.0's Queue.empty() does (2.12's left the streams); registries are left alone, as there.
-- KEYS[1]: the queue list
-- ARGV[1]: the job key prefix; ARGV[2]: the suffix of dependents sets; ARGV[3]: the result
-- stream key prefix
-- Returns: the number of ids removed.
local count = 0
while true do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  redis.call('DEL', ARGV[1] .. id, ARGV[1] .. id .. ARGV[2], ARGV[3] .. id)
  count = count + 1
end
return count

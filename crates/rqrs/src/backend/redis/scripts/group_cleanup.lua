-- Prunes a group, as RQ's Group.cleanup() and Group.clean_registries() do together: the ids
-- whose job hash is gone (deleted, or expired by its TTL) leave the group's set, and a group
-- left with no job leaves the set of groups.
-- KEYS[1]: the group's set; [2]: the set of groups
-- ARGV[1]: the group's name; [2]: the job key prefix
-- Returns: {the number of ids pruned, the ids of the group's jobs that exist}.
local live, pruned = {}, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. id) == 1 then
    live[#live + 1] = id
  else
    redis.call('SREM', KEYS[1], id)
    pruned = pruned + 1
  end
end
if #live == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return {pruned, live}

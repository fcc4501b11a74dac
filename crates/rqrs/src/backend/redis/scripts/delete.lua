-- Deletes a job and every trace of it, as RQ's Job.delete() does: off its queue list and out of
-- the registries of its queue (see unlist.lua, loaded in front of this script), its executions,
-- its membership of its group, its hash, its dependents and dependencies sets, its id in the
-- dependents sets of the jobs it waits on, and its result stream. RQ 2.12 leaves the result
-- stream until its TTL; RQ 3.0 deletes it, and so does this script.
-- With dependents, the jobs in its dependents set are deleted the same way, and theirs in turn
-- (RQ 2.12 goes one level down only); without, they stay deferred, as in RQ.
-- KEYS[1]: job hash
-- ARGV[1]: job id; [2]: '1' to delete the dependents too; [3]: the queue name to use when the
-- hash is gone or has no origin; [4..19]: key pieces (see job_pieces in unlist.lua); [20]: the
-- key prefix; [21]: now (ISO). A deleted job of a rate limit gives its slot back (limit.lua is
-- loaded in front of this script).
-- Returns: the number of job hashes deleted.
local p = job_pieces(4)
local L = limits(ARGV[20])
local with_dependents = ARGV[2] == '1'
local pending = {ARGV[1]}
local seen = {[ARGV[1]] = true}
local deleted = 0
while #pending > 0 do
  local id = table.remove(pending)
  local key = p.job .. id
  local fields = redis.call('HMGET', key, 'origin', 'group_id')
  local origin = fields[1]
  if (not origin or origin == '') and id == ARGV[1] then origin = ARGV[3] end
  if origin and origin ~= '' then unlist(id, origin, p) end
  local executions = p.executions .. id
  for _, eid in ipairs(redis.call('ZRANGE', executions, 0, -1)) do
    redis.call('DEL', p.execution .. id .. ':' .. eid)
  end
  local group = fields[2]
  if group and group ~= '' then
    redis.call('SREM', p.group .. group, id)
    if redis.call('EXISTS', p.group .. group) == 0 then
      redis.call('SREM', p.groups, group)
    end
  end
  local dependencies = p.dependencies_prefix .. id .. p.dependencies_suffix
  for _, parent in ipairs(redis.call('SMEMBERS', dependencies)) do
    redis.call('SREM', p.job .. parent .. p.dependents_suffix, id)
  end
  local dependents = key .. p.dependents_suffix
  if with_dependents then
    for _, dependent in ipairs(redis.call('SMEMBERS', dependents)) do
      if not seen[dependent] then
        seen[dependent] = true
        pending[#pending + 1] = dependent
      end
    end
  end
  local limit = limit_of(key)
  deleted = deleted + redis.call('DEL', key)
  if limit then release_slot(L, limit, id, ARGV[21]) end
  redis.call('DEL', dependents, dependencies, executions, p.results .. id)
end
return deleted

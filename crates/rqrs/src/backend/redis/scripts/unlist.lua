-- Functions shared by cancel.lua and delete.lua; the loader puts this file in front of each of
-- them, since a Redis script cannot call another.

-- The key pieces of a job's keys, from ARGV[first..first+15], in the order of `JOB_PIECES` in
-- job_ops.rs.
local function job_pieces(first)
  return {queue = ARGV[first], started = ARGV[first + 1], finished = ARGV[first + 2],
    failed = ARGV[first + 3], deferred = ARGV[first + 4], scheduled = ARGV[first + 5],
    canceled = ARGV[first + 6], job = ARGV[first + 7], dependents_suffix = ARGV[first + 8],
    dependencies_prefix = ARGV[first + 9], dependencies_suffix = ARGV[first + 10],
    execution = ARGV[first + 11], executions = ARGV[first + 12], results = ARGV[first + 13],
    group = ARGV[first + 14], groups = ARGV[first + 15]}
end

-- Whether job `id` has a run in the started registry of queue `origin`.
local function running(id, origin, p)
  local wip = p.started .. origin
  for _, eid in ipairs(redis.call('ZRANGE', p.executions .. id, 0, -1)) do
    if redis.call('ZSCORE', wip, id .. ':' .. eid) then return true end
  end
  return false
end

-- Takes job `id` off the list of queue `origin` and out of every registry of that queue. RQ
-- looks only in the registry its status names; every one is cleared here, so that no stale
-- entry survives a status that disagrees with it. Started-registry members are
-- `<id>:<execution id>`, found through the job's execution set.
local function unlist(id, origin, p)
  redis.call('LREM', p.queue .. origin, 0, id)
  for _, registry in ipairs({p.finished, p.failed, p.deferred, p.scheduled, p.canceled}) do
    redis.call('ZREM', registry .. origin, id)
  end
  local wip = p.started .. origin
  for _, eid in ipairs(redis.call('ZRANGE', p.executions .. id, 0, -1)) do
    redis.call('ZREM', wip, id .. ':' .. eid)
  end
end


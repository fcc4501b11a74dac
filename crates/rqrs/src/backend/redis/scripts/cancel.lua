-- Cancels a job, as RQ's Job.cancel() does: status `canceled`, off its queue list and out of the
-- registries of its queue (see unlist.lua, loaded in front of this script), into the canceled
-- registry. A running job is not stopped; its run leaves the started registry, so the worker's
-- outcome is refused as stale. Its dependents stay deferred (RQ's default).
-- KEYS[1]: job hash
-- ARGV[1]: job id; [2]: now (whole seconds); [3]: the queue name to use when the hash has no
-- origin; [4..19]: key pieces (see job_pieces in unlist.lua); [20]: the key prefix; [21]: now (ISO)
-- A job of a rate limit leaves the line, and gives its slot back unless it is running: then the
-- run's end gives it back (limit.lua is loaded in front of this script).
-- Returns: 1 when canceled, 0 when the job was canceled already, -1 when it does not exist.
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local fields = redis.call('HMGET', KEYS[1], 'status', 'origin')
if fields[1] == 'canceled' then return 0 end
local origin = fields[2]
if not origin or origin == '' then origin = ARGV[3] end
redis.call('HSET', KEYS[1], 'status', 'canceled')
-- A job that was never enqueued has no queue, and so no registry either.
if origin ~= '' then
  local p = job_pieces(4)
  local limit = limit_of(KEYS[1])
  if limit then
    local L = limits(ARGV[20])
    if fields[1] == 'started' and running(id, origin, p) then
      redis.call('ZREM', L.rl .. limit .. ':rate_limited', id)
    else
      release_slot(L, limit, id, ARGV[21])
    end
  end
  unlist(id, origin, p)
  redis.call('ZADD', p.canceled .. origin, ARGV[2], id)
end
return 1

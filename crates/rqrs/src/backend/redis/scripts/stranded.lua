-- Recovers the jobs a Python worker took off a queue (its BLMOVE into `<queue>:intermediate`)
-- and left there: it died before it started them, or their run was recovered before the worker
-- took the id off that list. Per id on the intermediate list:
-- - the job is gone, or no longer queued (its run was recovered, or has ended): the entry goes;
-- - it has a run in the started registry: left to that run (its worker takes the id off, or its
--   recovery does);
-- - it is queued and nowhere else: the first time it is seen, the time goes into RQ's
--   `first_seen` key (shared with Python's cleanup, which reads it the same way); once it has
--   waited there longer than the grace, it goes back to the head of its queue. It never started,
--   so it does not run twice; RQ's cleanup fails it instead.
-- KEYS[1]: the intermediate list; [2]: the queue list; [3]: the started registry
-- ARGV[1]: job key prefix; [2]: execution set prefix; [3]: now (epoch float); [4]: grace in
-- seconds; [5]: the first-seen key's ttl in seconds; [6]: the first-seen key of the list, less
-- the id
-- Returns: {stale entries removed, jobs put back on the queue}
local job_prefix, executions_prefix = ARGV[1], ARGV[2]
local now, grace = tonumber(ARGV[3]), tonumber(ARGV[4])
local first_seen_prefix = ARGV[6]
local removed, put_back = 0, 0
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
-- Newest first, each pushed on the head: the oldest ends up next in line.
for i = #ids, 1, -1 do
  local id = ids[i]
  local status = redis.call('HGET', job_prefix .. id, 'status')
  local running = false
  for _, eid in ipairs(redis.call('ZRANGE', executions_prefix .. id, 0, -1)) do
    if redis.call('ZSCORE', KEYS[3], id .. ':' .. eid) then running = true end
  end
  if not running then
    local first_seen = first_seen_prefix .. id
    if status ~= 'queued' then
      redis.call('LREM', KEYS[1], 0, id)
      redis.call('DEL', first_seen)
      removed = removed + 1
    else
      local seen = tonumber(redis.call('GET', first_seen))
      if not seen then
        redis.call('SET', first_seen, ARGV[3], 'NX', 'EX', ARGV[5])
      elseif now - seen > grace then
        redis.call('LREM', KEYS[1], 0, id)
        redis.call('DEL', first_seen)
        redis.call('LPUSH', KEYS[2], id)
        put_back = put_back + 1
      end
    end
  end
end
return {removed, put_back}

-- Puts a running job back at the head of its queue, ending its execution (cold shutdown, or a
-- dequeue whose reply was lost: the job did not finish, and must not wait for abandoned-job
-- recovery). (lib.lua is loaded in front of this script.)
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: queue list; [6]: worker hash
-- ARGV[1]: job id; [2]: execution id; [3]: now (ISO)
-- Returns: 1 when released, 0 when the execution was stale (nothing is written).
local id, eid = ARGV[1], ARGV[2]
local ended = end_execution(KEYS[2], KEYS[3], KEYS[4], id, eid)
forget_current(KEYS[6], id, eid)
if not ended then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[3], 'started_at', '')
  redis.call('LPUSH', KEYS[5], id)
end
return 1

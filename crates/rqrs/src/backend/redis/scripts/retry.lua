-- Records a failed (or, with worker name '', abandoned) run that will run again: the execution ends, the worker counts a failure,
-- the error goes to the result stream as RETRIED (type 4), `retries_left` goes down by one,
-- and the job goes back on its queue (head or tail) or, with a delay, to its scheduled
-- registry. Refused when the execution is stale. (lib.lua is loaded in front of this script.)
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: worker hash; [6]: result stream; [7]: the job's queue list; [8]: its scheduled registry;
-- [9]: the set of queues
-- ARGV[1]: job id; [2]: execution id; [3]: worker name; [4]: now (ISO); [5]: now (whole
-- seconds); [6]: error text, base64 of zlib; [7]: execution start (epoch float, '' for an
-- abandoned run); [8]: end
-- (epoch float); [9]: working time in seconds; [10]: seconds until the retry; [11]: '1' to
-- retry at the head of the queue; [12]: the queue key (member of KEYS[9])
-- Returns: 1 when recorded, 2 when an earlier call recorded this run (its reply was lost), 0
-- when the execution was stale, -1 when the job does not exist.
local id, eid, worker = ARGV[1], ARGV[2], ARGV[3]
-- An abandoned run (worker '') is retried only if its deadline is still past: a late heartbeat
-- saves it.
local deadline = redis.call('ZSCORE', KEYS[2], id .. ':' .. eid)
if worker == '' and deadline and tonumber(deadline) > tonumber(ARGV[5]) then return 0 end
if not end_execution(KEYS[2], KEYS[3], KEYS[4], id, eid) then
  forget_current(KEYS[5], id)
  if worker ~= '' and recorded_before(KEYS[6], eid) then return 2 end
  return 0
end
count_run(KEYS[5], 'failed_job_count', ARGV[9], id)
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
decrement(KEYS[1], 'retries_left')
redis.call('HSET', KEYS[1], 'ended_at', ARGV[4])
-- An abandoned run has no start time: nobody knows when it ran (as RQ's abandoned failures).
add_result(KEYS[6], '4', worker, 'exc_string', ARGV[6], eid, ARGV[7], ARGV[8])
local wait = tonumber(ARGV[10])
if wait > 0 then
  redis.call('HSET', KEYS[1], 'status', 'scheduled')
  redis.call('ZADD', KEYS[8], tonumber(ARGV[5]) + wait, id)
else
  redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[4])
  if ARGV[11] == '1' then
    redis.call('LPUSH', KEYS[7], id)
  else
    redis.call('RPUSH', KEYS[7], id)
  end
  redis.call('SADD', KEYS[9], ARGV[12])
end
return 1

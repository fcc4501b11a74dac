-- Records a failed run that will run again: the execution ends, the worker counts a failure,
-- the error goes to the result stream as RETRIED (type 4), `retries_left` goes down by one,
-- and the job goes back on its queue (head or tail) or, with a delay, to its scheduled
-- registry. Who ends it (ARGV[2]): 'worker', for a run that failed; 'abandoned', for a run whose
-- worker stopped heartbeating (no execution times in its result, and a late heartbeat saves
-- it). Refused when the execution is stale. (lib.lua is loaded in front of this script.)
-- KEYS[1]: job hash; [2]: started registry; [3]: execution hash; [4]: execution set;
-- [5]: worker hash (touched for 'worker' only); [6]: result stream; [7]: the job's queue list;
-- [8]: its scheduled registry; [9]: the set of queues
-- ARGV[1]: job id; [2]: who ends it; [3]: execution id; [4]: worker name ('' unless 'worker');
-- [5]: now (ISO); [6]: now (whole seconds); [7]: error text, base64 of zlib; [8]: execution
-- start (epoch float, 'worker' only); [9]: end (epoch float); [10]: working time in seconds;
-- [11]: seconds until the retry; [12]: '1' to retry at the head of the queue; [13]: the queue
-- key (member of KEYS[9]); [14]: how many results a job keeps; [15]: the key prefix
-- A job of a rate limit keeps its slot when it goes back on its queue, and gives it back when it
-- waits for a later retry (limit.lua, loaded in front of lib.lua); the scheduler puts it in
-- line again when it is due.
-- Returns: 1 when recorded, 2 when an earlier call recorded this run (its reply was lost), 0
-- when the execution was stale, -1 when the job does not exist.
local id, by, eid, worker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local kept = tonumber(ARGV[14])
-- An abandoned run is retried only if its deadline is still past: a late heartbeat saves it.
local deadline = redis.call('ZSCORE', KEYS[2], id .. ':' .. eid)
if by == 'abandoned' then
  if not deadline or tonumber(deadline) > tonumber(ARGV[6]) then return 0 end
  if not end_abandoned(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], id, eid) then
    return 0
  end
else
  if not end_execution(KEYS[2], KEYS[3], KEYS[4], id, eid) then
    forget_current(KEYS[5], id, eid)
    if recorded_before(KEYS[6], eid, kept) then return 2 end
    return 0
  end
  count_run(KEYS[5], 'failed_job_count', ARGV[10], id, eid)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
decrement(KEYS[1], 'retries_left')
redis.call('HSET', KEYS[1], 'ended_at', ARGV[5])
local started = ''
if by == 'worker' then started = ARGV[8] end
add_result(KEYS[6], '4', worker, 'exc_string', ARGV[7], eid, started, ARGV[9], kept)
local wait = tonumber(ARGV[11])
if wait > 0 then
  redis.call('HSET', KEYS[1], 'status', 'scheduled')
  redis.call('ZADD', KEYS[8], tonumber(ARGV[6]) + wait, id)
  release_slot_of(limits(ARGV[15]), KEYS[1], id, ARGV[5])
else
  redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[5])
  if ARGV[12] == '1' then
    redis.call('LPUSH', KEYS[7], id)
  else
    redis.call('RPUSH', KEYS[7], id)
  end
  redis.call('SADD', KEYS[9], ARGV[13])
end
return 1

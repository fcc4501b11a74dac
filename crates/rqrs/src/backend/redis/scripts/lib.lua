-- Functions shared by the scripts that end a run (finish, fail, retry); the loader puts this
-- file in front of each of them, since a Redis script cannot call another.

-- Ends a run: its started-registry entry, execution hash and execution-set member go. False
-- when the run is no longer in the started registry (it was recovered and handed out again).
local function end_execution(wip, execution, executions, id, eid)
  local member = id .. ':' .. eid
  if not redis.call('ZSCORE', wip, member) then return false end
  redis.call('ZREM', wip, member)
  redis.call('DEL', execution)
  redis.call('ZREM', executions, eid)
  return true
end

-- Whether the result stream holds an entry of execution `eid`: the run's outcome was recorded
-- by an earlier call whose reply was lost (the stream keeps the last `kept` entries or so).
local function recorded_before(stream, eid, kept)
  for _, entry in ipairs(redis.call('XREVRANGE', stream, '+', '-', 'COUNT', kept)) do
    local fields = entry[2]
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'execution_id' and fields[i + 1] == eid then return true end
    end
  end
  return false
end

-- Takes one off the count in hash field `field`, never below 0. Not HINCRBY: a producer may
-- have written the count as ` 1` or `01`, which the worker reads but HINCRBY refuses, and an
-- error there would leave the run ended with the job nowhere.
local function decrement(key, field)
  local left = tonumber(redis.call('HGET', key, field)) or 0
  redis.call('HSET', key, field, math.max(math.floor(left) - 1, 0))
end

-- Takes run `eid` of job `id` off its worker: the worker's current_job when it names this job
-- (RQ 2.12's field), and the member of the worker's set of executions (RQ 3.0's index, the
-- worker hash's key and `:executions`). The run ended, or was taken away by a cancel or a
-- recovery, so its outcome is not recorded.
local function forget_current(worker, id, eid)
  if redis.call('HGET', worker, 'current_job') == id then
    redis.call('HDEL', worker, 'current_job')
  end
  redis.call('SREM', worker .. ':executions', id .. ':' .. eid)
end

-- Takes an abandoned run off the worker that ran it (the job's `worker_name`, under the worker
-- key prefix `worker_prefix`), which is dead or has lost it.
local function forget_abandoned(worker_prefix, job, id, eid)
  local ran_by = redis.call('HGET', job, 'worker_name')
  if ran_by and ran_by ~= '' then forget_current(worker_prefix .. ran_by, id, eid) end
end

-- Ends an abandoned run (its deadline passed without a heartbeat) of job `id` (hash `job`),
-- taken from the queue whose list is `queue`: its entries go as in `end_execution`, it leaves the
-- worker that ran it, and the id leaves the queue's intermediate list (`<queue>:intermediate`),
-- where a Python worker that died right after taking the job leaves it (a Python worker's
-- cleanup would otherwise fail the job a minute later, or run it again). True when the job was
-- running (status `started`, or a hash that is gone): the caller records the failure or retry.
-- Otherwise nothing is recorded (RQ 3.0's rule: only a started job is abandoned); a job still
-- `queued` (taken by a Python worker that died before it started the job) goes back to the head
-- of its queue, unless the queue or the intermediate list holds it already.
local function end_abandoned(job, wip, execution, executions, worker_prefix, queue, id, eid)
  local status = redis.call('HGET', job, 'status')
  end_execution(wip, execution, executions, id, eid)
  forget_abandoned(worker_prefix, job, id, eid)
  local intermediate = queue .. ':intermediate'
  if status == 'queued' then
    if not redis.call('LPOS', queue, id) and not redis.call('LPOS', intermediate, id) then
      redis.call('LPUSH', queue, id)
    end
    return false
  end
  redis.call('LREM', intermediate, 0, id)
  return status == false or status == 'started'
end

-- Counts a run on the worker that ran it. Only a live worker hash is updated: counters written
-- into an expired one would leave a hash without `birth`, which Python's readers cannot parse.
local function count_run(worker, counter, working_time, id, eid)
  forget_current(worker, id, eid)
  if redis.call('EXISTS', worker) == 0 then return end
  redis.call('HINCRBY', worker, counter, 1)
  redis.call('HINCRBYFLOAT', worker, 'total_working_time', working_time)
end

-- Adds a result entry to a job's stream (capped at about `kept`, as RQ's): its type, the worker,
-- `value_field`/`value` (return_value or exc_string) when `value` is not '', and the
-- execution's id and times when `started` is not '' (an abandoned run has none).
local function add_result(stream, type, worker, value_field, value, eid, started, ended, kept)
  local entry = {'type', type, 'worker_name', worker}
  if value ~= '' then
    entry[#entry + 1] = value_field
    entry[#entry + 1] = value
  end
  if started ~= '' then
    entry[#entry + 1] = 'execution_id'
    entry[#entry + 1] = eid
    entry[#entry + 1] = 'execution_started_at'
    entry[#entry + 1] = started
    entry[#entry + 1] = 'execution_ended_at'
    entry[#entry + 1] = ended
  end
  redis.call('XADD', stream, 'MAXLEN', '~', kept, '*', unpack(entry))
end

-- Enqueues the deferred dependents of job `id`, which ended with `status`, whose other
-- dependencies are done too (RQ's rule: each one that still exists is finished, or failed when
-- the dependent allows failures). A failed parent releases only dependents that allow failures.
-- A dependent of a rate limit waits for a slot instead of going onto its queue.
-- `p` holds the key pieces: job, dependents_suffix, dependencies_prefix, dependencies_suffix,
-- deferred, queue, queues, limits. Returns whether the job had dependents (its set of them may
-- still exist, holding those not released).
local function release_dependents(id, status, now_iso, p)
  local dependents_key = p.job .. id .. p.dependents_suffix
  local dependents = redis.call('SMEMBERS', dependents_key)
  for _, dependent in ipairs(dependents) do
    local key = p.job .. dependent
    local fields = redis.call('HMGET', key, 'status', 'origin', 'allow_dependency_failures',
      'enqueue_at_front')
    local allow = fields[3] == '1'
    if fields[1] == 'deferred' and (status == 'finished' or (status == 'failed' and allow)) then
      local ready = true
      local dependencies = p.dependencies_prefix .. dependent .. p.dependencies_suffix
      for _, other in ipairs(redis.call('SMEMBERS', dependencies)) do
        if other ~= id then
          local other_status = redis.call('HGET', p.job .. other, 'status')
          if other_status and other_status ~= 'finished'
              and not (allow and other_status == 'failed') then
            ready = false
          end
        end
      end
      if ready then
        local queue = p.queue .. fields[2]
        redis.call('ZREM', p.deferred .. fields[2], dependent)
        local limit, concurrency = limit_of(key)
        if limit then
          wait_for_slot(p.limits, key, dependent, limit, concurrency, '', now_iso)
        else
          redis.call('HSET', key, 'status', 'queued', 'enqueued_at', now_iso)
          if fields[4] == '1' then
            redis.call('LPUSH', queue, dependent)
          else
            redis.call('RPUSH', queue, dependent)
          end
          redis.call('SADD', p.queues, queue)
        end
        redis.call('SREM', dependents_key, dependent)
      end
    end
  end
  return #dependents > 0
end

-- The key pieces of release_dependents, from ARGV[first..first+7] (the last is the key prefix,
-- for the limiter's keys).
local function pieces(first)
  return {job = ARGV[first], dependents_suffix = ARGV[first + 1],
    dependencies_prefix = ARGV[first + 2], dependencies_suffix = ARGV[first + 3],
    deferred = ARGV[first + 4], queue = ARGV[first + 5], queues = ARGV[first + 6],
    limits = limits(ARGV[first + 7])}
end


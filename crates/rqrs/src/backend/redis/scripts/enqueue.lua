-- Enqueues a batch of jobs of one queue in one step. Each job is pushed on the queue, put in
-- the scheduled registry for later, or started at once by the batch's worker (test mode: the
-- job never waits where another worker could take it), or deferred until the jobs it depends on
-- have ended (RQ's rule: every dependency that still exists is finished, or failed when
-- failures are allowed). A unique job whose id is taken refuses the whole batch before anything
-- is written. Jobs of a group (RQ's Group.enqueue_many) join the group's set, and the group the
-- set of groups, in the same step. A job of a rate limit (its `rate_limit_key` and
-- `rate_limit_concurrency` fields) that would be queued waits for a slot instead (status
-- `rate_limited`, limit.lua). (start.lua and limit.lua are loaded in front of this script.)
-- KEYS[1]: the set of queues; [2]: the queue list; [3]: the deferred registry;
-- [4]: the scheduled registry; with a group only: [5]: the group's set; [6]: the set of groups;
-- with a starting worker only, last: the started registry, then the worker's set of executions
-- ARGV[1]: the queue key (member of KEYS[1]); [2]: now (ISO); [3]: now (whole seconds);
-- [4]: job key prefix; [5]: dependents suffix; [6]: dependencies key prefix; [7]: dependencies
-- suffix; [8]: the group's name, or '' for none; [9]: the worker that starts the jobs placed
-- 'X' (test mode), or ''; [10]: the key prefix; with such a worker only: [11]: now (epoch
-- float); [12]: execution key prefix; [13]: execution set prefix; [14]: its heartbeat ttl;
-- [15]: the ttl of a job's set of executions
-- Then per job: id; placement ('R' tail, 'L' head, 'S' scheduled, 'X' started); for 'S' the due
-- time (whole seconds), for 'X' the execution id, else ''; unique ('1' or ''); ttl (seconds, or
-- ''); failures allowed ('1' or ''); the number of dependencies, then their ids; the number of
-- fields, then (field, value) pairs.
-- Returns: {'duplicate', id} when a unique id is taken; otherwise the status of each job.
local iso, now = ARGV[2], tonumber(ARGV[3])
local job_prefix, dependents_suffix = ARGV[4], ARGV[5]
local dependencies_prefix, dependencies_suffix = ARGV[6], ARGV[7]
local group = ARGV[8]
local starter = ARGV[9]
local jobs = {}
-- The starting worker's arguments are there only when it is (they cost every call otherwise).
local L = limits(ARGV[10])
local i = 11
if starter ~= '' then i = 16 end
while i <= #ARGV do
  -- One constructor with every field: a table that grows rehashes.
  local job = {id = ARGV[i], placement = ARGV[i + 1], at = ARGV[i + 2], unique = ARGV[i + 3],
    ttl = ARGV[i + 4], allow_failure = ARGV[i + 5] == '1'}
  local count = tonumber(ARGV[i + 6])
  job.dependencies = {}
  for d = 1, count do job.dependencies[d] = ARGV[i + 6 + d] end
  i = i + 7 + count
  count = tonumber(ARGV[i])
  job.fields = {}
  for f = 1, 2 * count do job.fields[f] = ARGV[i + f] end
  i = i + 1 + 2 * count
  if job.unique == '1' and redis.call('EXISTS', job_prefix .. job.id) == 1 then
    return {'duplicate', job.id}
  end
  jobs[#jobs + 1] = job
end

redis.call('SADD', KEYS[1], ARGV[1])
-- The ids bound for the tail of the queue, pushed with one RPUSH per thousand.
local tail = {}
local function push_tail()
  if #tail > 0 then
    redis.call('RPUSH', KEYS[2], unpack(tail))
    tail = {}
  end
end
local out = {}
for _, job in ipairs(jobs) do
  local key = job_prefix .. job.id
  local waiting = false
  for _, dependency in ipairs(job.dependencies) do
    local status = redis.call('HGET', job_prefix .. dependency, 'status')
    if status and status ~= 'finished' and not (job.allow_failure and status == 'failed') then
      waiting = true
    end
  end
  local status = 'queued'
  if waiting then
    status = 'deferred'
  elseif job.placement == 'S' then
    status = 'scheduled'
  elseif job.placement == 'X' then
    status = 'started'
  end
  -- The job's rate limit, read from its own fields: a queued job of a limit waits for a slot.
  local limit, concurrency
  if status == 'queued' then limit, concurrency = limit_in_fields(job.fields) end
  -- One write of the hash, status and enqueue time with the fields.
  local fields = job.fields
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = status
  if status == 'started' or (status == 'queued' and not limit) then
    fields[#fields + 1] = 'enqueued_at'
    fields[#fields + 1] = iso
  end
  redis.call('HSET', key, unpack(fields))
  if job.ttl ~= '' then
    redis.call('EXPIRE', key, job.ttl)
    redis.call('EXPIRE', key .. dependents_suffix, job.ttl)
    redis.call('EXPIRE', dependencies_prefix .. job.id .. dependencies_suffix, job.ttl)
  end
  if status == 'deferred' then
    for _, dependency in ipairs(job.dependencies) do
      redis.call('SADD', job_prefix .. dependency .. dependents_suffix, job.id)
      redis.call('SADD', dependencies_prefix .. job.id .. dependencies_suffix, dependency)
    end
    redis.call('ZADD', KEYS[3], now, job.id)
  elseif status == 'scheduled' then
    redis.call('ZADD', KEYS[4], job.at, job.id)
  elseif status == 'started' then
    local run = start_run(key, job.id, job.at, starter, iso, ARGV[11], now, tonumber(ARGV[14]),
      tonumber(ARGV[15]), ARGV[12], ARGV[13])
    redis.call('ZADD', KEYS[#KEYS - 1], now + tonumber(ARGV[14]), run)
    redis.call('SADD', KEYS[#KEYS], run)
  elseif limit then
    -- In line after the jobs before it: the limiter may push jobs onto the queue.
    push_tail()
    status = wait_for_slot(L, key, job.id, limit, concurrency,
      job.placement == 'L' and '1' or '', iso)
  elseif job.placement == 'L' then
    redis.call('LPUSH', KEYS[2], job.id)
  else
    tail[#tail + 1] = job.id
    -- (Lua's unpack takes a few thousand values at most.)
    if #tail == 1000 then push_tail() end
  end
  if group ~= '' then
    redis.call('SADD', KEYS[5], job.id)
  end
  out[#out + 1] = status
end
push_tail()
if group ~= '' then
  redis.call('SADD', KEYS[6], group)
end
if starter ~= '' then redis.call('EXPIRE', KEYS[#KEYS], tonumber(ARGV[15])) end
return out

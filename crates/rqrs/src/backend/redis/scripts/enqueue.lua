-- Enqueues a batch of jobs of one queue in one step. Each job is pushed on the queue, put in
-- the scheduled registry for later, or started at once by a given worker (test mode: the job
-- never waits where another worker could take it), or deferred until the jobs it depends on
-- have ended (RQ's rule: every dependency that still exists is finished, or failed when
-- failures are allowed). A unique job whose id is taken refuses the whole batch before anything
-- is written. Jobs of a group (RQ's Group.enqueue_many) join the group's set, and the group the
-- set of groups, in the same step. (start.lua is loaded in front of this script.)
-- KEYS[1]: the set of queues; [2]: the queue list; [3]: the deferred registry;
-- [4]: the scheduled registry; [5]: the started registry; with a group only: [6]: the group's
-- set; [7]: the set of groups
-- ARGV[1]: the queue key (member of KEYS[1]); [2]: now (ISO); [3]: now (epoch float);
-- [4]: now (whole seconds); [5]: job key prefix; [6]: dependents suffix; [7]: dependencies key
-- prefix; [8]: dependencies suffix; [9]: execution key prefix; [10]: execution set prefix;
-- [11]: the group's name, or '' for none
-- Then per job: id; placement ('R' tail, 'L' head, 'S' scheduled, 'X' started); for 'S' the due
-- time (whole seconds), for 'X' the worker's name, the execution id, the heartbeat ttl and the
-- ttl of the set of executions (four values), else ''; unique ('1' or ''); ttl (seconds, or
-- ''); failures allowed ('1' or ''); the number of dependencies, then their ids; the number of
-- fields, then (field, value) pairs.
-- Returns: {'duplicate', id} when a unique id is taken; otherwise the status of each job.
local job_prefix, dependents_suffix = ARGV[5], ARGV[6]
local dependencies_prefix, dependencies_suffix = ARGV[7], ARGV[8]
local prefixes = {execution = ARGV[9], executions = ARGV[10]}
local group = ARGV[11]
local at = {iso = ARGV[2], float = ARGV[3], seconds = tonumber(ARGV[4])}
local jobs = {}
local i = 12
while i <= #ARGV do
  local job = {id = ARGV[i], placement = ARGV[i + 1]}
  i = i + 2
  if job.placement == 'X' then
    job.worker, job.eid = ARGV[i], ARGV[i + 1]
    job.run_ttl, job.executions_ttl = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    i = i + 4
  else
    job.due = ARGV[i]
    i = i + 1
  end
  job.unique, job.ttl, job.allow_failure = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1'
  local count = tonumber(ARGV[i + 3])
  job.dependencies = {}
  for d = 1, count do job.dependencies[d] = ARGV[i + 3 + d] end
  i = i + 4 + count
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
  redis.call('HSET', key, unpack(job.fields))
  redis.call('HSET', key, 'status', status)
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
    redis.call('ZADD', KEYS[3], at.seconds, job.id)
  elseif status == 'scheduled' then
    redis.call('ZADD', KEYS[4], job.due, job.id)
  elseif status == 'started' then
    redis.call('HSET', key, 'enqueued_at', at.iso)
    start_run(key, job.id, job.eid, job.worker, at, job.run_ttl, job.executions_ttl, KEYS[5],
      prefixes)
  else
    redis.call('HSET', key, 'enqueued_at', at.iso)
    if job.placement == 'L' then
      redis.call('LPUSH', KEYS[2], job.id)
    else
      redis.call('RPUSH', KEYS[2], job.id)
    end
  end
  if group ~= '' then
    redis.call('SADD', KEYS[6], job.id)
  end
  out[#out + 1] = status
end
if group ~= '' then
  redis.call('SADD', KEYS[7], group)
end
return out

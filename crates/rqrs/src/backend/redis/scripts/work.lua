-- A worker's round trip: records the successes its runs reached since its last call, then takes
-- its next jobs, in one step. A slot whose run ended asks for its next job in the same call, and
-- every success that came meanwhile is recorded with it. (limit.lua, lib.lua and start.lua are
-- loaded in front of this script.)
--
-- A success is refused (nothing written) when its run is no longer in the started registry: the
-- job was recovered and handed out again, and a late finisher must not overwrite a newer
-- outcome. Otherwise its run's entries go; the job gets its result (stream entry), the finished
-- registry and its result_ttl (with a result_ttl of 0 it is deleted, as RQ does), its dependents
-- are released, it repeats if due, and a job of a rate limit gives its slot back (unless it
-- repeats at once: it stays queued, in its slot). A job deleted while it ran is left deleted.
--
-- The take: up to `want` jobs from the queues in priority order, each started in the same
-- step: the id leaves the queue list and enters the started registry with an execution record
-- and a deadline, so a job is never held only in a worker's memory. Ids whose job hash is gone
-- (expired by its ttl, or deleted) are dropped, as RQ's workers drop them. So is a second copy
-- of an id (two cleanups that recovered one run at once each put the job back): the job runs
-- already (`started`, with a run in the started registry), or has ended and is in the registry
-- of its status; it would run twice. Nothing is taken while workers are suspended
-- (`rq suspend`); the successes are recorded all the same.
--
-- KEYS[1..n]: the queue lists (rq:queue:<q>), highest priority first; KEYS[n+1]: the worker
-- hash; KEYS[n+2]: its set of executions; KEYS[n+3]: the suspension flag (rq:suspended)
-- ARGV[1]: how many jobs to take at most; [2]: worker name; [3]: now (ISO); [4]: now (epoch
-- float); [5]: now (whole epoch seconds); [6]: heartbeat ttl in seconds (a started run's
-- deadline is now + ttl); [7]: the ttl of a job's set of executions; [8]: how many results a
-- job keeps; [9]: the number of successes; [10..17]: key pieces for release_dependents (see
-- lib.lua); [18..25]: key prefixes of started registries, executions, execution sets, the
-- finished, failed, canceled and scheduled registries, and result streams
-- ARGV[26..25+n]: the queue names of KEYS[1..n]; then per success 11 fields: job id, execution
-- id, queue name, result_ttl (0 = do not keep, -1 = forever), return value as base64 JSON (''
-- when the function returned nothing), execution start (epoch float), working time in seconds,
-- seconds until the job repeats (or ''), its rate limit's key and concurrency (or '' ''), and
-- whether it has dependencies ('1' or ''); then one execution id per job wanted.
-- Returns: {codes, taken}. codes: per success 1 when recorded, 2 when an earlier call recorded
-- it (its reply was lost), 0 when its run was stale. taken: {'suspended'} while suspended, else
-- a flat list of (queue index, job id, execution id, the job's fields as HGETALL gives them)
-- per job taken.
local want, worker = tonumber(ARGV[1]), ARGV[2]
local iso, nowf, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
local ttl, executions_ttl, kept = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local successes = tonumber(ARGV[9])
local p = pieces(10)
local wip_prefix, execution_prefix, executions_prefix = ARGV[18], ARGV[19], ARGV[20]
local finished_prefix, scheduled_prefix, results_prefix = ARGV[21], ARGV[24], ARGV[25]
-- The registry prefix of each ended status.
local ended = {finished = ARGV[21], failed = ARGV[22], stopped = ARGV[22], canceled = ARGV[23]}
local queues = #KEYS - 3
local worker_key, worker_executions = KEYS[queues + 1], KEYS[queues + 2]
local FIELDS = 11
local first_success = 26 + queues
local first_execution_id = first_success + successes * FIELDS
local worker_exists = redis.call('EXISTS', worker_key) == 1

-- Where the fields of success `i` start in ARGV.
local function base_of(i)
  return first_success + (i - 1) * FIELDS
end

-- The list kept for `queue` in `groups`, made (and `queue` added to `order`) on first use: the
-- per-queue batches, in the order their queues came.
local function group(groups, order, queue)
  if not groups[queue] then
    groups[queue] = {}
    order[#order + 1] = queue
  end
  return groups[queue]
end

-- The runs that ended, taken off the worker's set of executions with one command.
local ended_runs = {}
-- The execution hashes of the runs recorded, deleted with one command.
local execution_keys = {}
-- The finished-registry entries (score, id) to add, by queue name, in `queue_order`.
local finished_entries, queue_order = {}, {}

-- Whether each success's run is still in its started registry: one ZMSCORE and one ZREM per
-- queue, for all its successes.
local live = {}
do
  local by_queue, names = {}, {}
  for i = 1, successes do
    local list = group(by_queue, names, ARGV[base_of(i) + 2])
    list[#list + 1] = i
  end
  for _, queue in ipairs(names) do
    local list, members = by_queue[queue], {}
    for n, i in ipairs(list) do
      local base = base_of(i)
      members[n] = ARGV[base] .. ':' .. ARGV[base + 1]
    end
    local wip = wip_prefix .. queue
    local scores = redis.call('ZMSCORE', wip, unpack(members))
    local present = {}
    for n, i in ipairs(list) do
      if scores[n] then
        live[i] = true
        present[#present + 1] = members[n]
      end
    end
    if #present > 0 then redis.call('ZREM', wip, unpack(present)) end
  end
end

-- Records the success whose fields start at ARGV[base] (its run was live).
local function record_success(base)
  local id, eid, queue = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local job = p.job .. id
  local result_ttl = tonumber(ARGV[base + 3])
  local repeating = ARGV[base + 7] ~= ''
  local limit = limit_in(ARGV[base + 8], ARGV[base + 9])
  local dependents_key = job .. p.dependents_suffix
  local dependencies_key = p.dependencies_prefix .. id .. p.dependencies_suffix
  execution_keys[#execution_keys + 1] = execution_prefix .. id .. ':' .. eid
  redis.call('ZREM', executions_prefix .. id, eid)
  -- Whether the job still exists: in the common case, EXPIRE's reply as it gets its result's
  -- TTL (a repeating job keeps no TTL, as in RQ).
  local expires = result_ttl > 0 and not repeating
  local exists
  if expires then
    exists = redis.call('EXPIRE', job, result_ttl) == 1
  else
    exists = redis.call('EXISTS', job) == 1
  end
  if not exists then return end
  local had_dependents = release_dependents(id, 'finished', iso, p)
  if result_ttl == 0 and not repeating then
    -- RQ deletes the job at once and records no result.
    redis.call('DEL', job, dependents_key, dependencies_key)
    if limit then release_slot(p.limits, limit, id, iso) end
    return
  end
  redis.call('HSET', job, 'status', 'finished', 'ended_at', iso, 'last_heartbeat', iso)
  local results = results_prefix .. id
  if result_ttl ~= 0 then
    add_result(results, '1', worker, 'return_value', ARGV[base + 4], eid, ARGV[base + 5], nowf,
      kept)
  end
  local score
  if result_ttl > 0 then
    redis.call('EXPIRE', results, result_ttl)
    score = now + result_ttl
    if expires then
      if had_dependents then redis.call('EXPIRE', dependents_key, result_ttl) end
      if ARGV[base + 10] == '1' then redis.call('EXPIRE', dependencies_key, result_ttl) end
    end
  elseif result_ttl < 0 then
    redis.call('PERSIST', results)
    score = '+inf'
  end
  if score then
    local entries = group(finished_entries, queue_order, queue)
    entries[#entries + 1] = score
    entries[#entries + 1] = id
  end
  if repeating then
    local wait = tonumber(ARGV[base + 7])
    decrement(job, 'repeats_left')
    if wait > 0 then
      redis.call('HSET', job, 'status', 'scheduled')
      redis.call('ZADD', scheduled_prefix .. queue, now + wait, id)
    else
      local queue_key = p.queue .. queue
      redis.call('HSET', job, 'status', 'queued', 'enqueued_at', iso)
      redis.call('RPUSH', queue_key, id)
      redis.call('SADD', p.queues, queue_key)
      return
    end
  end
  if limit then release_slot(p.limits, limit, id, iso) end
end

local codes = {}
local recorded, working_time = 0, 0
for i = 1, successes do
  local base = base_of(i)
  local id, eid = ARGV[base], ARGV[base + 1]
  ended_runs[#ended_runs + 1] = id .. ':' .. eid
  if live[i] then
    record_success(base)
    recorded = recorded + 1
    working_time = working_time + tonumber(ARGV[base + 6])
    codes[i] = 1
  elseif recorded_before(results_prefix .. id, eid, kept) then
    codes[i] = 2
  else
    release_if_idle(p.limits, p.job .. id, id, iso)
    codes[i] = 0
  end
end
if #execution_keys > 0 then redis.call('DEL', unpack(execution_keys)) end
for _, queue in ipairs(queue_order) do
  redis.call('ZADD', finished_prefix .. queue, unpack(finished_entries[queue]))
end
if #ended_runs > 0 then redis.call('SREM', worker_executions, unpack(ended_runs)) end
-- Only a live worker hash is counted in: counters written into an expired one would leave a
-- hash without `birth`, which Python's readers cannot parse.
if worker_exists and recorded > 0 then
  redis.call('HINCRBY', worker_key, 'successful_job_count', recorded)
  redis.call('HINCRBYFLOAT', worker_key, 'total_working_time', working_time)
end

-- Whether job `id` (of queue `name`), whose status is `status`, is already in its place: a run
-- in the started registry, or the registry of its ended status.
local function placed(id, status, name)
  if status == 'started' then
    local wip = wip_prefix .. name
    for _, eid in ipairs(redis.call('ZRANGE', executions_prefix .. id, 0, -1)) do
      if redis.call('ZSCORE', wip, id .. ':' .. eid) then return true end
    end
    return false
  end
  local registry = ended[status]
  return registry ~= nil and redis.call('ZSCORE', registry .. name, id) ~= false
end

local taken = {}
-- The ids started by this call: a second copy among them is dropped here, since their
-- started-registry entries are added queue by queue, after the ids are read.
local started_ids = {}
local started_runs = {}
local last_id = nil
if want > 0 then
  if redis.call('EXISTS', KEYS[queues + 3]) == 1 then
    taken = {'suspended'}
    want = 0
  end
  local count = 0
  for q = 1, queues do
    if count >= want then break end
    local name = ARGV[25 + q]
    local deadlines = {}
    while count < want do
      local ids = redis.call('LPOP', KEYS[q], want - count)
      if not ids then break end
      for _, id in ipairs(ids) do
        local job_key = p.job .. id
        local fields = redis.call('HGETALL', job_key)
        local status = field_of(fields, 'status')
        local waiting
        if #fields == 0 or started_ids[id] then
          waiting = false
        elseif status == 'queued' then
          waiting = true
        elseif status then
          waiting = not placed(id, status, name)
        else
          -- A hash without a status is taken, and fails as malformed.
          waiting = true
        end
        if waiting then
          count = count + 1
          started_ids[id] = true
          local eid = ARGV[first_execution_id + count - 1]
          local run = start_run(job_key, id, eid, worker, iso, nowf, now, ttl, executions_ttl,
            execution_prefix, executions_prefix)
          started_runs[#started_runs + 1] = run
          deadlines[#deadlines + 1] = now + ttl
          deadlines[#deadlines + 1] = run
          -- The fields as the start left them (read before it, once).
          for _, value in ipairs({'status', 'started', 'started_at', iso, 'ended_at', '',
              'worker_name', worker, 'last_heartbeat', iso}) do
            fields[#fields + 1] = value
          end
          taken[#taken + 1] = q
          taken[#taken + 1] = id
          taken[#taken + 1] = eid
          taken[#taken + 1] = fields
          last_id = id
        end
      end
    end
    if #deadlines > 0 then redis.call('ZADD', wip_prefix .. name, unpack(deadlines)) end
  end
end
if #started_runs > 0 then
  redis.call('SADD', worker_executions, unpack(started_runs))
  redis.call('EXPIRE', worker_executions, executions_ttl)
end
if worker_exists then
  if last_id then
    redis.call('HSET', worker_key, 'state', 'busy', 'current_job', last_id,
      'current_job_working_time', '0', 'last_heartbeat', iso)
  elseif successes > 0 then
    -- RQ 2.12's current_job goes when it names a job whose run ended here.
    local current = redis.call('HGET', worker_key, 'current_job')
    for i = 1, successes do
      if ARGV[base_of(i)] == current then
        redis.call('HDEL', worker_key, 'current_job')
        break
      end
    end
  end
end
return {codes, taken}

-- Rate limits, as RQ 3.0's RateLimit(key, concurrency): at most `concurrency` jobs of a key are
-- queued or running at once. A job of a limit waits in `<p>:rl:<key>:rate_limited` (status
-- `rate_limited`, scored by when it came) until a slot is free; a job holding a slot is in
-- `<p>:rl:<key>:allowed`. `<p>:rl:<key>` holds the limit's `concurrency`, `<p>:rl-keys` the
-- keys. Shared by the scripts that put a job on a queue or end its run; the loader puts this
-- file in front of each of them (before lib.lua), since a Redis script cannot call another.
-- Every key is built from the key prefix `<p>:` (its hash tag keeps them in one Cluster slot).

-- The keys the limiter builds, from the key prefix with its colon.
local function limits(prefix)
  return {rl = prefix .. 'rl:', rl_keys = prefix .. 'rl-keys', job = prefix .. 'job:',
    queue = prefix .. 'queue:', queues = prefix .. 'queues'}
end

-- Now, as the epoch float the limiter scores by.
local function limit_time()
  local time = redis.call('TIME')
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end

-- The limit that a job's `rate_limit_key` and `rate_limit_concurrency` fields name: its key
-- and concurrency, or nil when they name none.
local function limit_in(key, concurrency)
  concurrency = tonumber(concurrency)
  if key and key ~= '' and concurrency and concurrency >= 1 then return key, concurrency end
  return nil
end

-- The value of field `name` in `fields`, a flat list of (field, value) pairs as HGETALL gives
-- it; nil when absent.
local function field_of(fields, name)
  for i = 1, #fields - 1, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- The limit that a job's `fields` (a flat list of pairs) name, as `limit_in`.
local function limit_in_fields(fields)
  return limit_in(field_of(fields, 'rate_limit_key'), field_of(fields, 'rate_limit_concurrency'))
end

-- The limit of job hash `job`: its key and concurrency, or nil when it has none.
local function limit_of(job)
  local fields = redis.call('HMGET', job, 'rate_limit_key', 'rate_limit_concurrency')
  return limit_in(fields[1], fields[2])
end

-- Fills the free slots of limit `key` with its waiting jobs, oldest first: each takes a slot
-- and goes onto its queue (at the head when it asks to be, `enqueue_at_front`), status
-- `queued` at `iso`. Entries whose job is gone or no longer `rate_limited` are dropped.
local function fill_slots(L, key, iso)
  local rl = L.rl .. key
  local allowed, waiting = rl .. ':allowed', rl .. ':rate_limited'
  local concurrency = tonumber(redis.call('HGET', rl, 'concurrency')) or 0
  local now = limit_time()
  while redis.call('ZCARD', allowed) < concurrency do
    local popped = redis.call('ZPOPMIN', waiting)
    if #popped == 0 then break end
    local id = popped[1]
    local job = L.job .. id
    local fields = redis.call('HMGET', job, 'origin', 'status', 'enqueue_at_front')
    if fields[1] and fields[2] == 'rate_limited' then
      redis.call('ZADD', allowed, now, id)
      local queue = L.queue .. fields[1]
      if fields[3] == '1' then
        redis.call('LPUSH', queue, id)
      else
        redis.call('RPUSH', queue, id)
      end
      redis.call('SADD', L.queues, queue)
      redis.call('HSET', job, 'status', 'queued', 'enqueued_at', iso)
    end
  end
end

-- Puts job `id` (hash `job`) in line for a slot of limit `key` (of `concurrency`) instead of
-- straight onto its queue, then fills the free slots. `at_front` ('1' or '') is kept on the
-- job for the promotion. Returns the job's status after: `queued` when it got a slot,
-- `rate_limited` when it waits.
local function wait_for_slot(L, job, id, key, concurrency, at_front, iso)
  local rl = L.rl .. key
  redis.call('SADD', L.rl_keys, key)
  redis.call('HSET', rl, 'concurrency', concurrency)
  if at_front == '1' then redis.call('HSET', job, 'enqueue_at_front', '1') end
  redis.call('HSET', job, 'status', 'rate_limited')
  redis.call('ZADD', rl .. ':rate_limited', limit_time(), id)
  fill_slots(L, key, iso)
  return redis.call('HGET', job, 'status')
end

-- Gives back the slot of job `id` of limit `key` (its run has ended for good, or it left its
-- queue), takes it out of the line too, and fills the free slots.
local function release_slot(L, key, id, iso)
  redis.call('ZREM', L.rl .. key .. ':allowed', id)
  redis.call('ZREM', L.rl .. key .. ':rate_limited', id)
  fill_slots(L, key, iso)
end

-- Gives back the slot of job hash `job` (id `id`), if it has a limit.
local function release_slot_of(L, job, id, iso)
  local key = limit_of(job)
  if key then release_slot(L, key, id, iso) end
end

-- Gives back the slot of job hash `job` (id `id`) if it no longer needs one: it is neither
-- waiting on its queue, nor running, nor in line. For a run that ended stale (canceled while it
-- ran, say): the slot is free once the run is over.
local function release_if_idle(L, job, id, iso)
  local status = redis.call('HGET', job, 'status')
  if status ~= 'queued' and status ~= 'started' and status ~= 'rate_limited' then
    release_slot_of(L, job, id, iso)
  end
end

-- Sets a worker's state, clearing current_job unless it is busy. An expired worker hash is
-- left alone (a hash without `birth` breaks Python's readers); the heartbeat registers the
-- worker again in full.
-- KEYS[1]: the worker hash
-- ARGV[1]: the state
-- Returns: 1 when set, 0 when the hash is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if ARGV[1] ~= 'busy' then
  redis.call('HDEL', KEYS[1], 'current_job')
end
return 1

-- Writes a job's meta field, unless the job is gone (a plain HSET would create a stub hash).
-- KEYS[1]: job hash
-- ARGV[1]: meta, JSON
-- Returns: 1 when written, 0 when the job does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[1])
return 1

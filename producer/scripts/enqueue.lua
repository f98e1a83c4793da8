-- Store one job record and, when the queue lives in this Redis, its task message: atomically.
-- KEYS: record, idempotency key ('' for none), queue ('' when the broker is elsewhere),
--       unfinished jobs
-- ARGV: job id, message fingerprint, ttl seconds, task message, created_at, wire message,
--       phone id, recipient, idempotency key ('' for none)
-- Returns false for a new job, or "job_id fingerprint" of the job already under that key.
if KEYS[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return existing
  end
  redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0, 'message', ARGV[6],
           'phone_id', ARGV[7], 'to', ARGV[8], 'created_at', ARGV[5])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'idempotency_key', ARGV[9]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
if KEYS[3] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[4])
end
return false

-- Store many new job records and their task messages in one call.
-- KEYS: queue ('' when the broker is elsewhere), unfinished jobs
-- ARGV: ttl, created_at, record key prefix, job count, then per job: job id, wire message,
--       phone id, recipient; then the task messages.
local ttl, created_at, prefix, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local last = 4 + 4 * count
for at = 5, last, 4 do
  local key = prefix .. ARGV[at]
  redis.call('HSET', key, 'state', 'queued', 'attempts', 0, 'message', ARGV[at + 1],
             'phone_id', ARGV[at + 2], 'to', ARGV[at + 3], 'created_at', created_at)
  redis.call('EXPIRE', key, ttl)
  redis.call('ZADD', KEYS[2], created_at, ARGV[at])
end
if KEYS[1] ~= '' and last < #ARGV then
  redis.call('LPUSH', KEYS[1], unpack(ARGV, last + 1))
end
return count

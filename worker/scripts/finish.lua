-- Record the end of one send: sent, a retry on the schedule, or failed (and dead-lettered).
-- KEYS: record, leases, schedule, events, dead letters, dead-letter index, stats, unfinished
-- ARGV: job id, worker, verdict ('sent' | 'retry' | 'failed'), error, result JSON or '',
--       retry delay, ttl, dead-letter JSON, outcome kind
local state, owner = unpack(redis.call('HMGET', KEYS[1], 'state', 'worker'))
if not state then return 'missing' end
local verdict = ARGV[3]
if state == 'sent' then
  if verdict == 'sent' then
    redis.call('HINCRBY', KEYS[1], 'duplicates', 1)
    redis.call('HINCRBY', KEYS[7], 'duplicates', 1)
  end
  return 'already sent'
end
-- Another worker took the job over after this one's claim ran out: it decides, unless this
-- send went through, which is a fact worth keeping.
if verdict ~= 'sent' and (state ~= 'sending' or owner ~= ARGV[2]) then return 'not owner' end

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'updated_at', tostring(now), 'outcome', ARGV[9])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
redis.call('HINCRBY', KEYS[7], verdict, 1)
if verdict ~= 'retry' then redis.call('ZREM', KEYS[8], ARGV[1]) end
if verdict == 'sent' then
  redis.call('HSET', KEYS[1], 'state', 'sent', 'sent_at', tostring(now))
  redis.call('HDEL', KEYS[1], 'error', 'due_at', 'lease_until')
  return 'sent'
end
local event = {at = now, event = verdict, detail = ARGV[4]}
redis.call('HSET', KEYS[1], 'error', ARGV[4])
redis.call('HDEL', KEYS[1], 'lease_until')
if verdict == 'retry' then
  local due = now + tonumber(ARGV[6])
  redis.call('HSET', KEYS[1], 'state', 'retrying', 'due_at', tostring(due))
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  event.due_at = due
else
  redis.call('HSET', KEYS[1], 'state', 'failed')
  redis.call('HDEL', KEYS[1], 'due_at')
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[8])
  redis.call('ZADD', KEYS[6], now, ARGV[1])
end
redis.call('RPUSH', KEYS[4], cjson.encode(event))
redis.call('EXPIRE', KEYS[4], ARGV[7])
return verdict

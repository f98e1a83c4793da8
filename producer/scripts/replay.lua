-- Put a dead-lettered job back in the queue under its own id, keeping its history.
-- KEYS: record, events, dead letters, dead-letter index, unfinished jobs. ARGV: job id, now.
-- Returns 1 when replayed, 0 when the record has expired.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
-- A replay starts a fresh attempt budget; `attempts` keeps counting the whole history.
local attempts = redis.call('HGET', KEYS[1], 'attempts') or '0'
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2], 'attempt_base', attempts)
redis.call('HDEL', KEYS[1], 'due_at', 'lease_until')
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), event = 'replayed'}))
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
return 1

-- Cancel a job that has not started sending: it becomes final and is never sent.
-- Returns the state the job is in afterwards ('canceled' when this call canceled it), or
-- 'missing' for no record.
local record, history, schedule, unfinished = unpack(KEYS)
local id, now, ttl = unpack(ARGV)

local state = redis.call('HGET', record, 'state')
if not state then return 'missing' end
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'retrying' then return state end
redis.call('HSET', record, 'state', 'canceled', 'updated_at', now)
redis.call('HDEL', record, 'due_at')
redis.call('ZREM', schedule, id)
redis.call('ZREM', unfinished, id)
redis.call('RPUSH', history, cjson.encode({at = tonumber(now), event = 'canceled'}))
redis.call('EXPIRE', history, ttl)
return 'canceled'

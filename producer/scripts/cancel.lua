-- Cancel a job that has not started sending: it becomes final and is never sent.
-- Returns 1 when this call canceled the job; 0 when there is no record or the job was already
-- canceled, sending or finished.
local record, history, schedule, unfinished = unpack(KEYS)
local id, now, ttl = unpack(ARGV)

local state = redis.call('HGET', record, 'state')
if not state then return 0 end
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'retrying' then return 0 end
redis.call('HSET', record, 'state', 'canceled', 'updated_at', now)
redis.call('HDEL', record, 'due_at')
redis.call('ZREM', schedule, id)
redis.call('ZREM', unfinished, id)
redis.call('RPUSH', history, cjson.encode({at = tonumber(now), event = 'canceled'}))
redis.call('EXPIRE', history, ttl)
return 1

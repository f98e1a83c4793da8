-- Cancel a job that has not started sending: it becomes final, is never sent, and its status
-- event is queued.
-- Returns 1 when this call canceled the job; 0 when there is no record or the job was already
-- canceled, sending or finished.
local record, history, schedule, unfinished, stats, events_ready = unpack(KEYS)
local id, now, ttl, callback_url, event_prefix = unpack(ARGV)

local state = redis.call('HGET', record, 'state')
if not state then return 0 end
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'retrying' then return 0 end
redis.call('HSET', record, 'state', 'canceled', 'updated_at', now)
redis.call('HDEL', record, 'due_at')
redis.call('EXPIRE', record, ttl)
redis.call('ZREM', schedule, id)
redis.call('ZREM', unfinished, id)
redis.call('RPUSH', history, cjson.encode({at = tonumber(now), event = 'canceled'}))
redis.call('EXPIRE', history, ttl)
redis.call('HINCRBY', stats, 'canceled', 1)
local url = redis.call('HGET', record, 'callback_url') or callback_url
emit(id, 'message.canceled', id .. '.message.canceled', url, event_prefix, events_ready, ttl,
     tonumber(now))
return 1

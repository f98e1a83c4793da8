-- Record how deliveries of status events ended: delivered (the event is done with), to be
-- retried (on the events' schedule), or failed for good (kept, in the failed set). Every event
-- leaves the worker's held set.
local held, schedule, failed, stats = unpack(KEYS)
local event_prefix, ttl = ARGV[1], ARGV[2]
local FIRST, SIZE = 3, 4  -- per event: id, ending ('delivered' | 'retry' | 'failed'), delay, error

local now = clock()
for at = FIRST, #ARGV, SIZE do
  local id, ending, delay, error = unpack(ARGV, at, at + SIZE - 1)
  local event = event_prefix .. id
  redis.call('ZREM', held, id)
  redis.call('HINCRBY', stats, 'events:' .. ending, 1)
  if ending == 'delivered' then
    redis.call('DEL', event)
  elseif redis.call('EXISTS', event) == 1 then
    redis.call('HINCRBY', event, 'attempts', 1)
    redis.call('HSET', event, 'error', error)
    if ending == 'retry' then
      redis.call('ZADD', schedule, now + tonumber(delay), id)
    else
      redis.call('ZADD', failed, now, id)
      redis.call('EXPIRE', event, ttl)
    end
  end
end
return 1

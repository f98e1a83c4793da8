-- Move jobs whose claim ran out (their worker died mid-send) back onto the schedule.
-- KEYS: leases, schedule. ARGV: limit. Returns the ids moved.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], 'NX', now, id)
end
return expired

-- Take up to N due job ids off the schedule by pushing their due time `hold` seconds ahead:
-- if the taker dies before publishing them, they come due again instead of being lost.
-- KEYS: schedule. ARGV: limit, hold seconds. Returns {held score, id, id, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local held = math.ceil(now + tonumber(ARGV[2]))  -- whole seconds: exact in Lua and Redis alike
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], held, id) end
return {tostring(held), unpack(due)}

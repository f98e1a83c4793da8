-- Take up to `count` status events to deliver into this worker's held set.
-- Returns the event ids taken.
local ready, held = unpack(KEYS)
local count = tonumber(ARGV[1])

local now = clock()
local taken = {}
for _, id in ipairs(redis.call('RPOP', ready, count) or {}) do
  if redis.call('ZADD', held, 'NX', now, id) == 1 then taken[#taken + 1] = id end
end
return taken

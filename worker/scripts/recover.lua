-- Give the jobs and status events of workers whose heartbeat ran out (killed, or cut off from
-- Redis) back to the front of their ready lists. A job one of them was sending is taken over
-- by the next claim, which counts it as a reclaim: that send may have gone out.
-- Returns {wake-up due (0 or 1), workers recovered, jobs given back}.
local workers, ready, wakeup, queue, events_ready = unpack(KEYS)
local held_prefix, events_held_prefix, limit, wakeup_ttl, template, ids = unpack(ARGV)

local function give_back(held, to)
  local ids = redis.call('ZRANGE', held, 0, -1)
  for _, id in ipairs(ids) do redis.call('RPUSH', to, id) end
  redis.call('DEL', held)
  return #ids
end

local dead = redis.call('ZRANGEBYSCORE', workers, '-inf', clock(), 'LIMIT', 0, tonumber(limit))
local given = 0
for _, worker in ipairs(dead) do
  given = given + give_back(held_prefix .. worker, ready)
  give_back(events_held_prefix .. worker, events_ready)
  redis.call('ZREM', workers, worker)
end
local woken = 0
if given > 0 then woken = wake(wakeup, 1, wakeup_ttl, queue, template, ids) end
return {woken, #dead, given}

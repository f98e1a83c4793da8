-- A worker's regular tick: renew its heartbeat, move jobs and status events whose time has
-- come from their schedules to their ready lists, and make sure a wake-up waits whenever
-- ready jobs do (one lost with a killed worker is replaced once its flag runs out).
-- Returns {wake-up due (0 or 1), jobs moved}.
local workers, schedule, ready, wakeup, queue, events_schedule, events_ready = unpack(KEYS)
local worker, heartbeat, limit, wakeup_ttl, template, ids = unpack(ARGV)

local now = clock()
local function move_due(from, to)
  local due = redis.call('ZRANGEBYSCORE', from, '-inf', now, 'LIMIT', 0, tonumber(limit))
  if #due > 0 then
    redis.call('ZREM', from, unpack(due))
    redis.call('LPUSH', to, unpack(due))
  end
  return #due
end

redis.call('ZADD', workers, now + tonumber(heartbeat), worker)
local moved = move_due(schedule, ready)
move_due(events_schedule, events_ready)
local woken = 0
if redis.call('LLEN', ready) > 0 then woken = wake(wakeup, 1, wakeup_ttl, queue, template, ids) end
return {woken, moved}

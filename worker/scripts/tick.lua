-- A worker's regular tick: renew its heartbeat, move jobs whose time has come from the
-- schedule to the ready list, and make sure a wake-up waits whenever ready jobs do (one lost
-- with a killed worker is replaced once its flag runs out).
-- Returns {wake-up due (0 or 1), jobs moved}.
local workers, schedule, ready, wakeup, queue = unpack(KEYS)
local worker, heartbeat, limit, wakeup_ttl, task = unpack(ARGV)

local now = clock()
redis.call('ZADD', workers, now + tonumber(heartbeat), worker)
local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', now, 'LIMIT', 0, tonumber(limit))
if #due > 0 then
  redis.call('ZREM', schedule, unpack(due))
  redis.call('LPUSH', ready, unpack(due))
end
local woken = 0
if redis.call('LLEN', ready) > 0 then woken = wake(wakeup, wakeup_ttl, queue, task) end
return {woken, #due}

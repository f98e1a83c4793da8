-- Take up to `count` ready jobs for one delivery task of this worker. Each goes into the
-- worker's held set until it is sent, retried, deferred or given back (a job id seen twice is
-- taken once). Starting a task uses up the wake-up that started it, so when more jobs wait,
-- another wake-up is published for the next task.
-- Returns {wake-up due (0 or 1), id, id, ...}.
local ready, held, workers, wakeup, queue = unpack(KEYS)
local worker, count, heartbeat, wakeup_ttl, task = unpack(ARGV)

local now = clock()
redis.call('DEL', wakeup)
redis.call('ZADD', workers, now + tonumber(heartbeat), worker)
local taken = {}
for _, id in ipairs(redis.call('RPOP', ready, tonumber(count)) or {}) do
  if redis.call('ZADD', held, 'NX', now, id) == 1 then taken[#taken + 1] = id end
end
local woken = 0
if redis.call('LLEN', ready) > 0 then woken = wake(wakeup, wakeup_ttl, queue, task) end
return {woken, unpack(taken)}

-- Take up to `count` ready jobs for one delivery task of this worker. Each goes into the
-- worker's held set until it is sent, retried, deferred or given back (a job id seen twice is
-- taken once). Starting a task uses up one waiting wake-up; when more jobs wait, enough
-- wake-ups are published for them to be taken by as many tasks at once (one per `count`
-- jobs, up to `most`), so a backlog spreads over workers and threads.
-- Returns {wake-ups due, id, id, ...}.
local ready, held, workers, wakeup, queue = unpack(KEYS)
local worker, count, heartbeat, wakeup_ttl, most, template, ids = unpack(ARGV)

local now = clock()
count = tonumber(count)
if tonumber(redis.call('GET', wakeup) or '0') > 0 then redis.call('DECR', wakeup) end
redis.call('ZADD', workers, now + tonumber(heartbeat), worker)
local taken = {}
for _, id in ipairs(redis.call('RPOP', ready, count) or {}) do
  if redis.call('ZADD', held, 'NX', now, id) == 1 then taken[#taken + 1] = id end
end
local waiting = redis.call('LLEN', ready)
local woken = 0
if waiting > 0 then
  local wanted = math.min(math.ceil(waiting / count), tonumber(most))
  woken = wake(wakeup, wanted, wakeup_ttl, queue, template, ids)
end
return {woken, unpack(taken)}

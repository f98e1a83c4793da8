-- Shared by every script of the project: prepended to each one when it is loaded.

-- Redis's clock, in seconds, with microseconds.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Publish a wake-up for the workers unless one is waiting already. Returns 1 when one is due:
-- pushed onto `queue` here, or, when the broker is another Redis (`queue` is ''), by the caller.
local function wake(wakeup, wakeup_ttl, queue, task)
  if not redis.call('SET', wakeup, '1', 'NX', 'PX', wakeup_ttl) then return 0 end
  if queue ~= '' then redis.call('LPUSH', queue, task) end
  return 1
end

-- Give held jobs (or status events) that were not started back to the front of their ready
-- list (the worker is stopping, or lost track of them); for jobs, wake the workers.
-- Returns {wake-up due (0 or 1), given back}.
local held, ready, wakeup, queue = unpack(KEYS)  -- wakeup is '' for status events
local wakeup_ttl, template, ids = unpack(ARGV, 1, 3)
local FIRST_ID = 4

local given = 0
for at = FIRST_ID, #ARGV do
  if redis.call('ZREM', held, ARGV[at]) == 1 then
    redis.call('RPUSH', ready, ARGV[at])
    given = given + 1
  end
end
local woken = 0
if given > 0 and wakeup ~= '' then woken = wake(wakeup, 1, wakeup_ttl, queue, template, ids) end
return {woken, given}

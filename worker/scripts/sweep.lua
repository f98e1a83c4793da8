-- The last resort: find unfinished jobs that no script has moved for `stale` seconds and that
-- are not on the schedule, and put them on the ready list again (a second copy is harmless:
-- claims let one delivery send). Finished or expired jobs leave the unfinished set.
-- Returns {wake-up due (0 or 1), jobs put back}.
local unfinished, schedule, ready, wakeup, queue = unpack(KEYS)
local stale, limit, record_prefix, wakeup_ttl, template, ids = unpack(ARGV)

local now = clock()
local old = redis.call('ZRANGEBYSCORE', unfinished, '-inf', now - tonumber(stale),
                       'LIMIT', 0, tonumber(limit))
local lost = 0
for _, id in ipairs(old) do
  local state = redis.call('HGET', record_prefix .. id, 'state')
  if not state or state == 'sent' or state == 'failed' or state == 'canceled' then
    redis.call('ZREM', unfinished, id)
  else
    redis.call('ZADD', unfinished, now, id)
    if not redis.call('ZSCORE', schedule, id) then
      redis.call('LPUSH', ready, id)
      lost = lost + 1
    end
  end
end
local woken = 0
if lost > 0 then woken = wake(wakeup, 1, wakeup_ttl, queue, template, ids) end
return {woken, lost}

-- Remove published job ids from the schedule, unless they were rescheduled meanwhile.
-- KEYS: schedule. ARGV: held score, id, id, ...
local held = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '-1') == held then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed

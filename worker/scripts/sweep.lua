-- Find unfinished jobs that nothing will deliver: no queue message was seen for them for
-- `stale` seconds, and they are neither scheduled nor claimed. (kombu's Redis transport can
-- lose a message it had just popped when Redis dies.) Their time is reset, so each is
-- republished at most once per `stale` seconds; finished or expired jobs are dropped.
-- KEYS: unfinished, schedule, leases. ARGV: stale seconds, limit, key prefix.
-- Returns the ids to publish again.
local now = tonumber(redis.call('TIME')[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]),
                      'LIMIT', 0, tonumber(ARGV[2]))
local lost = {}
for _, id in ipairs(old) do
  local state = redis.call('HGET', ARGV[3] .. ':job:' .. id, 'state')
  if not state or state == 'sent' or state == 'failed' then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], now, id)
    if not redis.call('ZSCORE', KEYS[2], id) and not redis.call('ZSCORE', KEYS[3], id) then
      table.insert(lost, id)
    end
  end
end
return lost

-- Replay or purge status events that failed for good, each in one step: an event leaves the
-- failed set and, replayed, goes back on the ready list with a fresh budget of attempts (its
-- body and webhook-id unchanged, so the app sees the same event again), or, purged, is deleted.
-- An event whose hash has expired only leaves the failed set.
-- ARGV: 'replay' | 'purge', 'all' | 'some', the event hashes' prefix, their ttl, then the ids.
-- Returns the ids replayed or purged.
local failed, ready = unpack(KEYS)
local action, scope, event_prefix, ttl = unpack(ARGV, 1, 4)

local ids = {}
if scope == 'all' then
  ids = redis.call('ZRANGE', failed, 0, -1)
else
  for at = 5, #ARGV do ids[#ids + 1] = ARGV[at] end
end

local done = {}
for _, id in ipairs(ids) do
  local event = event_prefix .. id
  if redis.call('ZREM', failed, id) == 1 then
    if action == 'purge' then
      redis.call('DEL', event)
      done[#done + 1] = id
    elseif redis.call('EXISTS', event) == 1 then
      redis.call('HSET', event, 'attempts', 0)
      redis.call('HDEL', event, 'error')
      redis.call('EXPIRE', event, ttl)
      redis.call('LPUSH', ready, id)
      done[#done + 1] = id
    end
  end
end
return done

-- Put failed jobs back on the ready list under their own ids, keeping their history, and drop
-- their dead letters. A dead letter whose job has been sent since is dropped, not replayed.
-- Returns the ids of the jobs replayed.
local ready, wakeup, queue, dead, dead_index, unfinished = unpack(KEYS)
local now, ttl, wakeup_ttl, template, ids, record_prefix, history_prefix = unpack(ARGV, 1, 7)
local FIRST_ID = 8

local replayed = {}
for at = FIRST_ID, #ARGV do
  local id = ARGV[at]
  local record, history = record_prefix .. id, history_prefix .. id
  local state = redis.call('HGET', record, 'state')
  if state == 'failed' then
    -- A replay starts a fresh attempt budget; `attempts` keeps counting the whole history.
    local attempts = redis.call('HGET', record, 'attempts') or '0'
    redis.call('HSET', record, 'state', 'queued', 'updated_at', now, 'attempt_base', attempts)
    redis.call('HDEL', record, 'due_at')
    redis.call('HINCRBY', record, 'replays', 1)
    redis.call('EXPIRE', record, ttl)
    redis.call('RPUSH', history, cjson.encode({at = tonumber(now), event = 'replayed'}))
    redis.call('EXPIRE', history, ttl)
    redis.call('ZADD', unfinished, now, id)
    redis.call('LPUSH', ready, id)
    replayed[#replayed + 1] = id
  end
  if state == 'failed' or state == 'sent' then
    redis.call('HDEL', dead, id)
    redis.call('ZREM', dead_index, id)
  end
end
if #replayed > 0 then wake(wakeup, 1, wakeup_ttl, queue, template, ids) end
return replayed

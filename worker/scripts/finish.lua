-- Record the end of sends: each one sent, a retry on the schedule, or failed (and
-- dead-lettered).
-- KEYS: leases, schedule, dead letters, dead-letter index, stats, unfinished
-- ARGV: worker, ttl, key prefix, then per send eight values: job id, the claim's attempt,
--       verdict ('sent' | 'retry' | 'failed'), error, result JSON or '', retry delay,
--       dead-letter JSON or '', outcome kind.
-- Returns what each record said: the verdict, 'already sent', 'not owner' or 'missing'.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local worker, ttl, prefix = ARGV[1], ARGV[2], ARGV[3]

local function finish(id, attempt, verdict, error, result, delay, dead_letter, outcome)
  local record, events = prefix .. ':job:' .. id, prefix .. ':job:' .. id .. ':events'
  local state, owner, sent_attempt = unpack(redis.call('HMGET', record, 'state', 'worker',
                                                       'sent_attempt'))
  if not state then return 'missing' end
  if state == 'sent' then
    -- The same verdict again: this write went through before, but its reply was lost.
    if verdict == 'sent' and owner == worker and sent_attempt == attempt then return 'sent' end
    if verdict == 'sent' then
      redis.call('HINCRBY', record, 'duplicates', 1)
      redis.call('HINCRBY', KEYS[5], 'duplicates', 1)
    end
    return 'already sent'
  end
  -- Another worker took the job over after this one's claim ran out: it decides, unless this
  -- send went through, which is a fact worth keeping.
  if verdict ~= 'sent' and (state ~= 'sending' or owner ~= worker) then return 'not owner' end

  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', record, 'updated_at', tostring(now), 'outcome', outcome)
  if result ~= '' then redis.call('HSET', record, 'result', result) end
  redis.call('HINCRBY', KEYS[5], verdict, 1)
  if verdict ~= 'retry' then redis.call('ZREM', KEYS[6], id) end
  if verdict == 'sent' then
    redis.call('HSET', record, 'state', 'sent', 'sent_at', tostring(now), 'sent_attempt', attempt)
    redis.call('HDEL', record, 'error', 'due_at', 'lease_until')
    return 'sent'
  end
  local event = {at = now, event = verdict, detail = error}
  redis.call('HSET', record, 'error', error)
  redis.call('HDEL', record, 'lease_until')
  if verdict == 'retry' then
    local due = now + tonumber(delay)
    redis.call('HSET', record, 'state', 'retrying', 'due_at', tostring(due))
    redis.call('ZADD', KEYS[2], due, id)
    event.due_at = due
  else
    redis.call('HSET', record, 'state', 'failed')
    redis.call('HDEL', record, 'due_at')
    redis.call('HSET', KEYS[3], id, dead_letter)
    redis.call('ZADD', KEYS[4], now, id)
  end
  redis.call('RPUSH', events, cjson.encode(event))
  redis.call('EXPIRE', events, ttl)
  return verdict
end

local replies = {}
for i = 4, #ARGV, 8 do
  replies[#replies + 1] = finish(unpack(ARGV, i, i + 7))
end
return replies

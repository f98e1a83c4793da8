-- Record the end of sends: each one sent, a retry on the schedule, or failed (and
-- dead-lettered). Every job leaves the worker's held set.
-- Returns what each record said: the verdict, 'already sent', 'not owner' or 'missing'.
local held, schedule, dead, dead_index, stats, unfinished = unpack(KEYS)
local worker, ttl, record_prefix, history_prefix = unpack(ARGV, 1, 4)
local FIRST_SEND, SEND_SIZE = 5, 8
-- per send: job id, the claim's attempt, verdict ('sent' | 'retry' | 'failed'), error,
-- result JSON or '', retry delay, dead-letter JSON or '', outcome kind

local now = clock()

local function finish(id, attempt, verdict, error, result, delay, dead_letter, outcome)
  local record, history = record_prefix .. id, history_prefix .. id
  redis.call('ZREM', held, id)
  local state, owner, sent_attempt = unpack(redis.call('HMGET', record, 'state', 'worker',
                                                       'sent_attempt'))
  if not state then return 'missing' end
  if state == 'sent' then
    -- The same verdict again: this write went through before, but its reply was lost.
    if verdict == 'sent' and owner == worker and sent_attempt == attempt then return 'sent' end
    if verdict == 'sent' then
      redis.call('HINCRBY', record, 'duplicates', 1)
      redis.call('HINCRBY', stats, 'duplicates', 1)
    end
    return 'already sent'
  end
  -- Another worker took the job over after this one stopped: it decides, unless this send went
  -- through, which is a fact worth keeping.
  if verdict ~= 'sent' and (state ~= 'sending' or owner ~= worker) then return 'not owner' end

  redis.call('HSET', record, 'updated_at', tostring(now), 'outcome', outcome)
  if result ~= '' then redis.call('HSET', record, 'result', result) end
  redis.call('HINCRBY', stats, verdict, 1)
  if verdict ~= 'retry' then
    redis.call('ZREM', unfinished, id)
    redis.call('EXPIRE', record, ttl)  -- a final record is kept ZQ_RECORD_TTL from now
  end
  if verdict == 'sent' then
    redis.call('HSET', record, 'state', 'sent', 'sent_at', tostring(now), 'sent_attempt', attempt)
    redis.call('HDEL', record, 'error', 'due_at')
    redis.call('HDEL', dead, id)  -- a send that went through after all ends its dead letter
    redis.call('ZREM', dead_index, id)
    return 'sent'
  end
  local event = {at = now, event = verdict, detail = error}
  redis.call('HSET', record, 'error', error)
  if verdict == 'retry' then
    local due = now + tonumber(delay)
    redis.call('HSET', record, 'state', 'retrying', 'due_at', tostring(due))
    redis.call('ZADD', schedule, due, id)
    event.due_at = due
  else
    redis.call('HSET', record, 'state', 'failed')
    redis.call('HDEL', record, 'due_at')
    redis.call('HSET', dead, id, dead_letter)
    redis.call('ZADD', dead_index, now, id)
  end
  redis.call('RPUSH', history, cjson.encode(event))
  redis.call('EXPIRE', history, ttl)
  return verdict
end

local replies = {}
for at = FIRST_SEND, #ARGV, SEND_SIZE do
  replies[#replies + 1] = finish(unpack(ARGV, at, at + SEND_SIZE - 1))
end
return replies

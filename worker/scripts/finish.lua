-- Record the end of sends: each one sent, a retry on the schedule, or failed (and
-- dead-lettered). Every job leaves the worker's held set. A final verdict queues the job's
-- status event; a sent job's buttons become the offers a reply is matched against; and each
-- send is counted for the deployment's metrics (once per counter for the whole batch).
-- Returns what each record said: the verdict, 'already sent', 'not owner' or 'missing'.
local held, schedule, dead, dead_index, stats, unfinished, events_ready = unpack(KEYS)
local worker, ttl, record_prefix, history_prefix = unpack(ARGV, 1, 4)
local callback_url, event_prefix, offers_prefix = unpack(ARGV, 5, 7)
local histogram_prefix, series_prefix, send_buckets, latency_buckets = unpack(ARGV, 8, 11)
local FIRST_SEND, SEND_SIZE = 12, 9
-- per send: job id, the claim's attempt, verdict ('sent' | 'retry' | 'failed'), error,
-- result JSON or '', retry delay, dead-letter JSON or '', outcome kind, send seconds

local now = clock()
send_buckets, latency_buckets = cjson.decode(send_buckets), cjson.decode(latency_buckets)
local series = series_prefix .. tostring(math.floor(now / 10) * 10)
local counts = {}

-- Remember which buttons the recipient was offered, so that a tap is matched to this job.
local function offer(id, phone_id, to, buttons)
  local offers = offers_prefix .. phone_id .. ':' .. to
  for _, button in ipairs(cjson.decode(buttons or '[]')) do
    redis.call('HSET', offers, button, id)
  end
  redis.call('EXPIRE', offers, ttl)
end

local function tally(verdict, outcome, seconds)
  count(counts, stats, verdict, 1)
  count(counts, stats, 'attempt:' .. outcome, 1)
  if seconds ~= '' then
    observe(counts, histogram_prefix .. 'send_seconds', send_buckets, tonumber(seconds))
  end
  if verdict ~= 'retry' then count(counts, series, verdict, 1) end
end

local function finish(id, attempt, verdict, error, result, delay, dead_letter, outcome, seconds)
  local record, history = record_prefix .. id, history_prefix .. id
  redis.call('ZREM', held, id)
  local state, owner, sent_attempt, created_at, phone_id, to, buttons, url, replays = unpack(
    redis.call('HMGET', record, 'state', 'worker', 'sent_attempt', 'created_at', 'phone_id',
               'to', 'buttons', 'callback_url', 'replays'))
  if not state then return 'missing' end
  url = url or callback_url
  if state == 'sent' then
    -- The same verdict again: this write went through before, but its reply was lost.
    if verdict == 'sent' and owner == worker and sent_attempt == attempt then return 'sent' end
    if verdict == 'sent' then
      redis.call('HINCRBY', record, 'duplicates', 1)
      count(counts, stats, 'duplicates', 1)
    end
    return 'already sent'
  end
  -- Another worker took the job over after this one stopped: it decides, unless this send went
  -- through, which is a fact worth keeping.
  if verdict ~= 'sent' and (state ~= 'sending' or owner ~= worker) then return 'not owner' end

  redis.call('HSET', record, 'updated_at', tostring(now), 'outcome', outcome)
  if result ~= '' then redis.call('HSET', record, 'result', result) end
  tally(verdict, outcome, seconds)
  if verdict ~= 'retry' then
    redis.call('ZREM', unfinished, id)
    redis.call('EXPIRE', record, ttl)  -- a final record is kept ZQ_RECORD_TTL from now
  end
  if verdict == 'sent' then
    redis.call('HSET', record, 'state', 'sent', 'sent_at', tostring(now), 'sent_attempt', attempt)
    redis.call('HDEL', record, 'error', 'due_at')
    if state == 'failed' or replays then  -- it had a dead letter: sent after all, it ends
      redis.call('HDEL', dead, id)
      redis.call('ZREM', dead_index, id)
    end
    local waited = now - tonumber(created_at or now)
    observe(counts, histogram_prefix .. 'latency_seconds', latency_buckets, waited)
    offer(id, phone_id, to, buttons)
    emit(id, 'message.sent', id .. '.message.sent', url, event_prefix, events_ready, ttl, now)
    return 'sent'
  end
  local entry = {at = now, event = verdict, detail = error}
  redis.call('HSET', record, 'error', error)
  if verdict == 'retry' then
    local due = now + tonumber(delay)
    redis.call('HSET', record, 'state', 'retrying', 'due_at', tostring(due))
    redis.call('ZADD', schedule, due, id)
    entry.due_at = due
  else
    redis.call('HSET', record, 'state', 'failed')
    redis.call('HDEL', record, 'due_at')
    redis.call('HSET', dead, id, dead_letter)
    redis.call('ZADD', dead_index, now, id)
    local attempts = redis.call('HGET', record, 'attempts')
    emit(id, 'message.failed', id .. '.message.failed.' .. attempts, url, event_prefix,
         events_ready, ttl, now)
  end
  redis.call('RPUSH', history, cjson.encode(entry))
  redis.call('EXPIRE', history, ttl)
  return verdict
end

local replies = {}
for at = FIRST_SEND, #ARGV, SEND_SIZE do
  replies[#replies + 1] = finish(unpack(ARGV, at, at + SEND_SIZE - 1))
end
flush(counts)
if counts[series] then redis.call('EXPIRE', series, 3600) end
return replies

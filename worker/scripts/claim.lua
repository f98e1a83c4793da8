-- Claim held jobs for one send each, in order, just before they are sent. A job is claimed if
-- it is due, not final, not being sent by another live worker, within its attempt budget,
-- and within its phone id's rate and its recipient's pace. A wait for a rate-limit slot short
-- enough is reserved and returned; a longer one puts the job on the schedule without counting
-- an attempt. A job whose claim fails (a broken record) fails alone.
-- Returns one reply per job: {'claimed', message, attempt, wait, reclaimed, trace or ''},
-- {'exhausted', attempt}, or {ending} for 'missing', 'finished', 'busy', 'later', 'deferred',
-- 'broken'.
local schedule, held, workers, unfinished, dead, dead_index, stats, deferrals = unpack(KEYS)
local worker, max_attempts, ttl, record_prefix, history_prefix = unpack(ARGV, 1, 5)
local phone_interval, phone_burst, phone_intervals = unpack(ARGV, 6, 8)
local recipient_interval, recipient_burst, max_wait = unpack(ARGV, 9, 11)
local phone_pace, phone_deferred, recipient_pace, recipient_deferred = unpack(ARGV, 12, 15)
local held_prefix = ARGV[16]
local FIRST_ID = 17

local now = clock()
phone_interval, phone_burst = tonumber(phone_interval), tonumber(phone_burst)
phone_intervals = cjson.decode(phone_intervals)
recipient_interval, recipient_burst = tonumber(recipient_interval), tonumber(recipient_burst)
max_wait, max_attempts = tonumber(max_wait), tonumber(max_attempts)

-- Generic cell rate algorithm: `tat` is when the next send would be exactly on pace.
local function pace(key, interval, burst)
  if interval <= 0 then return nil, 0 end
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
  return tat, math.max(0, tat - interval * (burst - 1) - now)
end
local function push(key, at, interval)
  if interval > 0 then
    redis.call('SET', key, tostring(at), 'PX', math.ceil((at - now) * 1000) + 1000)
  end
end

local function history(id, event, detail)
  local key = history_prefix .. id
  redis.call('RPUSH', key, cjson.encode({at = now, event = event, detail = detail}))
  redis.call('EXPIRE', key, ttl)
end

-- Wait for a rate-limit slot: reserve it when short, else put the job back on the schedule at
-- the limits' own pace, so deferred jobs do not all return at once to find it taken again.
local function within_limits(id, record, phone_id, to)
  local interval = tonumber(phone_intervals[phone_id] or phone_interval)
  local phone_key, to_key = phone_pace .. phone_id, recipient_pace .. to
  local phone_tat, phone_wait = pace(phone_key, interval, phone_burst)
  local to_tat, to_wait = pace(to_key, recipient_interval, recipient_burst)
  local wait = math.max(phone_wait, to_wait)
  if wait <= max_wait then
    if phone_tat then push(phone_key, math.max(phone_tat, now + wait) + interval, interval) end
    if to_tat then
      push(to_key, math.max(to_tat, now + wait) + recipient_interval, recipient_interval)
    end
    return wait
  end
  local later = {phone_deferred .. phone_id, recipient_deferred .. to}
  local due = now + wait
  for _, key in ipairs(later) do due = math.max(due, tonumber(redis.call('GET', key) or '0')) end
  push(later[1], due + interval, interval)
  push(later[2], due + recipient_interval, recipient_interval)
  redis.call('HSET', record, 'due_at', tostring(due))
  redis.call('ZADD', schedule, due, id)
  redis.call('HINCRBY', deferrals, phone_id, 1)
  return nil
end

local function claim(id)
  local record = record_prefix .. id
  local f = redis.call('HMGET', record, 'state', 'worker', 'due_at', 'phone_id', 'to',
                       'message', 'attempts', 'attempt_base', 'trace')
  local state, owner, due_at, phone_id, to, message = f[1], f[2], f[3], f[4], f[5], f[6]
  if not state then return {'missing'} end
  if state == 'sent' or state == 'failed' or state == 'canceled' then return {'finished'} end
  local reclaimed = 0
  if state == 'sending' then
    if owner ~= worker then
      -- Busy while its live worker holds it; a job its worker gave back (a claim's answer
      -- lost, a verdict not written) is no longer that worker's to send.
      local alive = tonumber(redis.call('ZSCORE', workers, owner) or '0') > now
      if alive and redis.call('ZSCORE', held_prefix .. owner, id) then return {'busy'} end
      reclaimed = 1  -- its worker stopped or gave it back mid-send: it may have gone out
    end
  elseif tonumber(due_at or '0') > now then
    return {'later'}
  end
  local attempt = tonumber(f[7] or '0') - tonumber(f[8] or '0')
  if attempt >= max_attempts then
    redis.call('HSET', record, 'state', 'sending', 'worker', worker, 'updated_at', tostring(now))
    return {'exhausted', attempt}
  end
  local wait = within_limits(id, record, phone_id, to)
  if not wait then return {'deferred'} end
  if reclaimed == 1 then
    redis.call('HINCRBY', record, 'reclaims', 1)
    redis.call('HINCRBY', stats, 'reclaims', 1)
    history(id, 'reclaimed', 'previous worker ' .. tostring(owner) .. ' stopped mid-send')
  end
  redis.call('HINCRBY', record, 'attempts', 1)
  redis.call('HSET', record, 'state', 'sending', 'worker', worker, 'updated_at', tostring(now))
  redis.call('ZADD', unfinished, 'XX', now, id)
  return {'claimed', message, attempt + 1, tostring(wait), reclaimed, f[9] or ''}
end

-- A record no claim can read fails alone, with the reason, in the dead letters.
local function broken(id, problem)
  local reason = 'broken job record: ' .. tostring(problem)
  redis.pcall('HSET', record_prefix .. id, 'state', 'failed', 'error', reason,
              'updated_at', tostring(now))
  redis.call('ZREM', unfinished, id)
  redis.call('HSET', dead, id, cjson.encode({id = id, job_id = id, reason = reason, at = now}))
  redis.call('ZADD', dead_index, now, id)
  return {'broken'}
end

local replies = {}
for at = FIRST_ID, #ARGV do
  local id = ARGV[at]
  local ok, reply = pcall(claim, id)
  if not ok then reply = broken(id, reply) end
  if reply[1] ~= 'claimed' and reply[1] ~= 'exhausted' then redis.call('ZREM', held, id) end
  replies[#replies + 1] = reply
end
return replies

-- Claim jobs for one send each, in order: a job is taken if it is due, not final, not held by
-- a live worker, and within its phone id's rate and its recipient's pace. A wait short enough
-- is reserved and returned; a longer one puts the job back on the schedule without counting
-- an attempt.
-- KEYS: leases, schedule
-- ARGV: worker, lease seconds, phone rate, phone burst, phone rate overrides (JSON),
--       recipient interval, recipient burst, max wait, key prefix, ttl, then the job ids.
-- Returns one reply per job: {result, ...} (see worker/jobs.py).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local worker, lease, prefix, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[9], ARGV[10]
local default_rate, phone_burst = tonumber(ARGV[3]), tonumber(ARGV[4])
local overrides = cjson.decode(ARGV[5])
local to_interval, to_burst, max_wait = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

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

local function claim(id)
  local record, events = prefix .. ':job:' .. id, prefix .. ':job:' .. id .. ':events'
  local f = redis.call('HMGET', record, 'state', 'lease_until', 'due_at', 'phone_id', 'to',
                       'message', 'attempt_base')
  local state = f[1]
  if not state then return {'missing'} end
  if state == 'sent' or state == 'failed' then return {'done', state} end
  if state == 'sending' and tonumber(f[2] or '0') > now then return {'busy', f[2]} end
  if state ~= 'sending' and tonumber(f[3] or '0') > now then return {'later', f[3]} end

  local rate = tonumber(overrides[f[4]] or default_rate)
  local phone_key = prefix .. ':rate:phone:' .. f[4]
  local to_key = prefix .. ':rate:to:' .. f[5]
  local phone_interval = 1 / rate
  local phone_tat, phone_wait = pace(phone_key, phone_interval, phone_burst)
  local to_tat, to_wait = pace(to_key, to_interval, to_burst)
  local wait = math.max(phone_wait, to_wait)
  if wait > max_wait then
    -- Too long to hold a worker: come back later. Deferred jobs are spread out at the limit's
    -- own pace, so they do not all return at once and find the limit taken again.
    local due = now + wait
    for _, k in ipairs({phone_key, to_key}) do
      due = math.max(due, tonumber(redis.call('GET', k .. ':deferred') or '0'))
    end
    push(phone_key .. ':deferred', due + phone_interval, phone_interval)
    push(to_key .. ':deferred', due + to_interval, to_interval)
    redis.call('HSET', record, 'due_at', tostring(due))
    redis.call('ZADD', KEYS[2], due, id)
    return {'deferred', tostring(due - now)}
  end
  -- Reserve the slot: the send happens `wait` seconds from now.
  if phone_tat then push(phone_key, math.max(phone_tat, now + wait) + phone_interval, phone_interval) end
  if to_tat then push(to_key, math.max(to_tat, now + wait) + to_interval, to_interval) end

  local lease_until = now + wait + lease
  local reclaimed = 0
  if state == 'sending' then
    -- The last worker died or stalled mid-send: the message may already have gone out.
    reclaimed = 1
    redis.call('HINCRBY', record, 'reclaims', 1)
    redis.call('RPUSH', events, cjson.encode({at = now, event = 'reclaimed',
      detail = 'previous worker ' .. tostring(redis.call('HGET', record, 'worker')) .. ' stopped mid-send'}))
    redis.call('EXPIRE', events, ttl)
  end
  local attempts = redis.call('HINCRBY', record, 'attempts', 1)
  redis.call('HSET', record, 'state', 'sending', 'worker', worker,
             'lease_until', tostring(lease_until), 'updated_at', tostring(now))
  redis.call('ZADD', KEYS[1], lease_until, id)
  return {'claimed', f[6], attempts - tonumber(f[7] or '0'), tostring(wait), reclaimed}
end

local replies = {}
for i = 11, #ARGV do replies[#replies + 1] = claim(ARGV[i]) end
return replies

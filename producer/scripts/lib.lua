-- Shared by every script of the project: prepended to each one when it is loaded.

-- Redis's clock, in seconds, with microseconds.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Publish a wake-up for the workers unless one is waiting already. Returns 1 when one is due:
-- pushed onto `queue` here, or, when the broker is another Redis (`queue` is ''), by the caller.
local function wake(wakeup, wakeup_ttl, queue, task)
  if not redis.call('SET', wakeup, '1', 'NX', 'PX', wakeup_ttl) then return 0 end
  if queue ~= '' then redis.call('LPUSH', queue, task) end
  return 1
end

-- Queue a status event about a job for the app, once per event id: to the job's callback URL,
-- else to the deployment's (`default_url`); with neither, no event.
local function emit(record, job_id, kind, event_id, default_url, event_prefix, events_ready,
                    ttl, now)
  local url = redis.call('HGET', record, 'callback_url') or default_url
  if url == '' then return end
  local event = event_prefix .. event_id
  if redis.call('HSETNX', event, 'type', kind) == 0 then return end
  redis.call('HSET', event, 'job_id', job_id, 'url', url, 'created_at', tostring(now),
             'attempts', 0)
  redis.call('EXPIRE', event, ttl)
  redis.call('LPUSH', events_ready, event_id)
end

-- Count one measurement into a histogram hash: its bucket, the sum and the count.
local function observe(histogram, bounds, value)
  local bucket = '+Inf'
  for _, bound in ipairs(bounds) do
    if value <= bound then bucket = tostring(bound); break end
  end
  redis.call('HINCRBY', histogram, bucket, 1)
  redis.call('HINCRBYFLOAT', histogram, 'sum', value)
  redis.call('HINCRBY', histogram, 'count', 1)
end

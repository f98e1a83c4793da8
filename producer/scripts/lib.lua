-- Shared by every script of the project: prepended to each one when it is loaded.

-- Redis's clock, in seconds, with microseconds.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Make sure `wanted` wake-ups wait for the workers (`wakeup` counts those published and not
-- started yet; it expires, so that wake-ups lost with a killed worker stop counting). Returns
-- how many more are due: pushed onto `queue` here (one task message each, from `tasks`), or,
-- when the broker is another Redis (`queue` is ''), by the caller.
local function wake(wakeup, wanted, wakeup_ttl, queue, tasks)
  local more = wanted - tonumber(redis.call('GET', wakeup) or '0')
  if more <= 0 then return 0 end
  redis.call('INCRBY', wakeup, more)
  redis.call('PEXPIRE', wakeup, wakeup_ttl)
  if queue ~= '' then redis.call('LPUSH', queue, unpack(tasks, 1, more)) end
  return more
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

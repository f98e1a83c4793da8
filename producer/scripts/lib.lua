-- Shared by every script of the project: prepended to each one when it is loaded.

-- Redis's clock, in seconds, with microseconds.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Make sure `wanted` wake-ups wait for the workers (`wakeup` counts those published and not
-- started yet; it expires, so that wake-ups lost with a killed worker stop counting). Returns
-- how many more are due: pushed onto `queue` here, each a task message made from `template`
-- with an id of its own (`ids` and four hex digits), or, when the broker is another Redis
-- (`queue` is ''), pushed by the caller.
local function wake(wakeup, wanted, wakeup_ttl, queue, template, ids)
  local more = wanted - tonumber(redis.call('GET', wakeup) or '0')
  if more <= 0 then return 0 end
  redis.call('INCRBY', wakeup, more)
  redis.call('PEXPIRE', wakeup, wakeup_ttl)
  if queue ~= '' then
    for n = 1, more do
      redis.call('LPUSH', queue, (string.gsub(template, '@@id@@', ids .. string.format('%04x', n))))
    end
  end
  return more
end

-- Queue a status event about a job for the app, once per event id, to `url` (the job's
-- callback URL, else the deployment's); with no URL, no event.
local function emit(job_id, kind, event_id, url, event_prefix, events_ready, ttl, now)
  if not url or url == '' then return end
  local event = event_prefix .. event_id
  if redis.call('HSETNX', event, 'type', kind) == 0 then return end
  redis.call('HSET', event, 'job_id', job_id, 'url', url, 'created_at', tostring(now),
             'attempts', 0)
  redis.call('EXPIRE', event, ttl)
  redis.call('LPUSH', events_ready, event_id)
end

-- Counts gathered over one call (hash key → field → amount), written once per field by
-- `flush`: a batch of sends adds to each counter once, not once per send.
local function count(counts, key, field, amount)
  local fields = counts[key]
  if not fields then fields = {}; counts[key] = fields end
  fields[field] = (fields[field] or 0) + amount
end

-- Count one measurement into a histogram hash: its bucket, the sum and the count.
local function observe(counts, histogram, bounds, value)
  local bucket = '+Inf'
  for _, bound in ipairs(bounds) do
    if value <= bound then bucket = tostring(bound); break end
  end
  count(counts, histogram, bucket, 1)
  count(counts, histogram, 'sum', value)
  count(counts, histogram, 'count', 1)
end

local function flush(counts)
  for key, fields in pairs(counts) do
    for field, amount in pairs(fields) do
      if amount == math.floor(amount) then
        redis.call('HINCRBY', key, field, amount)
      else
        redis.call('HINCRBYFLOAT', key, field, amount)
      end
    end
  end
end

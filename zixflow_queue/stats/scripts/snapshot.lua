-- The deployment's numbers at this moment, in one call: counters, backlogs, workers, events,
-- rate-limit deferrals, duration histograms and the recent sent/failed series.
-- Returns {now, counters (flat field/value list), waiting, scheduled, in flight, live workers,
--          dead letters, events pending, events failed, deferrals (flat), send histogram
--          (flat), latency histogram (flat), oldest waiting job's created_at or '',
--          series (flat: slot, sent, failed, ...)}.
local stats, ready, schedule, workers, dead_index, events_ready, events_schedule, events_dead,
      deferrals = unpack(KEYS)
local held_prefix, events_held_prefix, record_prefix, histogram_prefix, series_prefix,
      slot_seconds, slots = unpack(ARGV)

local now = clock()
local live = redis.call('ZRANGEBYSCORE', workers, now, '+inf')
local in_flight, events_held = 0, 0
for _, worker in ipairs(live) do
  in_flight = in_flight + redis.call('ZCARD', held_prefix .. worker)
  events_held = events_held + redis.call('ZCARD', events_held_prefix .. worker)
end
local oldest = redis.call('LINDEX', ready, -1)
local created = oldest and redis.call('HGET', record_prefix .. oldest, 'created_at') or ''
local series, step = {}, tonumber(slot_seconds)
local current = math.floor(now / step) * step
for slot = current - step * (tonumber(slots) - 1), current, step do
  local counts = redis.call('HMGET', series_prefix .. tostring(slot), 'sent', 'failed')
  series[#series + 1] = tostring(slot)
  series[#series + 1] = counts[1] or '0'
  series[#series + 1] = counts[2] or '0'
end
return {
  tostring(now),
  redis.call('HGETALL', stats),
  redis.call('LLEN', ready),
  redis.call('ZCARD', schedule),
  in_flight,
  #live,
  redis.call('ZCARD', dead_index),
  redis.call('LLEN', events_ready) + redis.call('ZCARD', events_schedule) + events_held,
  redis.call('ZCARD', events_dead),
  redis.call('HGETALL', deferrals),
  redis.call('HGETALL', histogram_prefix .. 'send_seconds'),
  redis.call('HGETALL', histogram_prefix .. 'latency_seconds'),
  created or '',
  series,
}

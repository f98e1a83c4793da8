-- Keep a Zixflow event once (by its eventId: Zixflow retries) and, when it is a button tap,
-- put the reply on the job that offered that button: the latest job sent from that phone id
-- to that sender, which then gets its message.replied status event.
-- Returns the outcome: 'duplicate', 'matched', 'unmatched', 'other' or 'unknown'.
local inbound, index, stats, events_ready = unpack(KEYS)
local event_id, now, ttl, raw, kind, phone_id, sender, button_id, title, reply = unpack(ARGV, 1, 10)
local offers_prefix, record_prefix, history_prefix, callback_url, event_prefix = unpack(ARGV, 11, 15)

if redis.call('EXISTS', inbound) == 1 then
  redis.call('HINCRBY', stats, 'inbound:duplicate', 1)
  return 'duplicate'
end
local function keep(outcome, job_id)
  redis.call('HSET', inbound, 'event', raw, 'kind', kind, 'outcome', outcome, 'job_id', job_id,
             'received_at', now, 'phone_id', phone_id, 'sender', sender,
             'button_id', button_id, 'title', title)
  redis.call('EXPIRE', inbound, ttl)
  redis.call('ZADD', index, now, event_id)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', tonumber(now) - tonumber(ttl))  -- expired
  redis.call('HINCRBY', stats, 'inbound:' .. outcome, 1)
  return outcome
end

if kind ~= 'button' then return keep(kind, '') end
local job_id = redis.call('HGET', offers_prefix .. phone_id .. ':' .. sender, button_id)
local record = record_prefix .. (job_id or '')
if not job_id or redis.call('EXISTS', record) == 0 then return keep('unmatched', '') end
redis.call('HSET', record, 'reply', reply, 'updated_at', now)
local history = history_prefix .. job_id
redis.call('RPUSH', history, cjson.encode({at = tonumber(now), event = 'replied', detail = title}))
redis.call('EXPIRE', history, ttl)
local url = redis.call('HGET', record, 'callback_url') or callback_url
emit(job_id, 'message.replied', job_id .. '.message.replied.' .. event_id, url, event_prefix,
     events_ready, ttl, tonumber(now))
return keep('matched', job_id)

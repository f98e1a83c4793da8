-- Store new jobs in one atomic call: each record, then the ready list (or the schedule, for a
-- later send time), its place in its recipient's list of jobs (for search), and a wake-up for
-- the workers unless one is waiting already.
-- With an idempotency key, the caller derives the job ids from it, jobs already stored are
-- skipped, and a key already used for other messages is refused.
-- Returns {'stored', wake-up due (0 or 1), jobs stored} or {'conflict', stored fingerprint}.
local ready, schedule, unfinished, wakeup, queue, idempotency = unpack(KEYS)
local ttl, now, wakeup_ttl, template, ids = unpack(ARGV, 1, 5)
local record_prefix, recipient_prefix, fingerprint = unpack(ARGV, 6, 8)
local FIRST_JOB = 9  -- then per job: id, due ('' to send now), recipient, pair count n, n pairs

if idempotency ~= '' then
  local known = redis.call('GET', idempotency)
  if known and known ~= fingerprint then return {'conflict', known} end
  if not known then redis.call('SET', idempotency, fingerprint, 'EX', ttl) end
end

local ready_ids, unfinished_pairs, at = {}, {}, FIRST_JOB  -- one LPUSH and one ZADD for all
while at <= #ARGV do
  local id, due, to, pairs = ARGV[at], ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3])
  local record, last = record_prefix .. id, at + 3 + 2 * pairs
  if idempotency == '' or redis.call('EXISTS', record) == 0 then
    redis.call('HSET', record, unpack(ARGV, at + 4, last))
    redis.call('EXPIRE', record, ttl)
    unfinished_pairs[#unfinished_pairs + 1] = now
    unfinished_pairs[#unfinished_pairs + 1] = id
    local jobs_to = recipient_prefix .. to
    redis.call('ZADD', jobs_to, now, id)
    redis.call('EXPIRE', jobs_to, ttl)
    if due == '' then
      ready_ids[#ready_ids + 1] = id
    else
      redis.call('ZADD', schedule, due, id)
    end
  end
  at = last + 1
end
local woken = 0
if #unfinished_pairs > 0 then redis.call('ZADD', unfinished, unpack(unfinished_pairs)) end
if #ready_ids > 0 then
  redis.call('LPUSH', ready, unpack(ready_ids))
  woken = wake(wakeup, 1, wakeup_ttl, queue, template, ids)
end
return {'stored', woken, #unfinished_pairs / 2}

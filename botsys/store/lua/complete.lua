-- complete.lua — record an attempt's outcome; refused unless the caller holds the lease.
-- A failed or timed-out attempt with attempts left goes back to delayed (backoff); otherwise
-- the terminal state, result, counters, retention and the webhook delivery are written here,
-- in the same step, so a crash cannot lose a result or its delivery.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] job id;  ARGV[4] token
-- ARGV[5]  status: succeeded | failed | timed_out | cancelled
-- ARGV[6]  result (raw JSON text, '' = none);  ARGV[7] error ('' = none)
-- ARGV[8]  retry delay ms if this attempt is retried
-- ARGV[9]  how many jobs of this type the caller could start now (its slot is freeing), as
--          claim.lua's ARGV[3]; '' or 0: none
-- Returns  {0} lost (not the owner: nothing written) | {1, state, delivery id or ''} finished
--          | {2, due ms} retry scheduled; either of the last two with one more element, a
--          claim (the next job's HGETALL, as claim.lua), when the freed slot stayed with the
--          caller and it can take one: no wake-up and no claim round trip
local now = now_ms(ARGV[2])
local id, token, status = ARGV[3], ARGV[4], ARGV[5]
local jk = job_key(id)
local job = hgetall(jk)
if job.token ~= token or not redis.call('ZSCORE', K.active, id) then return {0} end
-- A freed slot matters only when the semaphore was full (dispatchers wait for it) and jobs
-- are waiting. It is handed to one replica: the one that has waited longest for a slot (see
-- claim.lua), else this one. Every replica racing for it cost N-1 empty claims per release;
-- this one always keeping it would pin the load where it started. When it stays here and the
-- caller can take it, the next job is leased to the caller at once.
local next_claim = nil
local meta = redis.call('HMGET', K.meta, 'limit', 'paused', 'heldUntil')
local limit = tonumber(meta[1]) or 0
local was_full = redis.call('ZCARD', K.active) >= limit
redis.call('ZREM', K.active, id)
if was_full and redis.call('ZCARD', K.queue) > 0 then
  local fresh, target = now - CTX.waiter_ttl_ms, CTX.replica
  for _, replica in ipairs(redis.call('ZRANGE', K.waiters, 0, -1)) do
    redis.call('ZREM', K.waiters, replica)  -- served, or gone: it leaves the line either way
    if tonumber(redis.call('HGET', K.waiters_seen, replica) or 0) >= fresh then
      target = replica
      break
    end
    redis.call('HDEL', K.waiters_seen, replica)
  end
  local want = tonumber(ARGV[9]) or 0
  if target == CTX.replica and want > 0 and meta[2] ~= '1' and (tonumber(meta[3]) or 0) <= now
      and redis.call('ZCARD', K.active) < limit  -- (a lowered limit: still over it)
      and cadence_room(now) > 0 then  -- (else our dispatcher, woken, learns when it may)
    local next_id = pop_waiting()
    if next_id then next_claim = admit(next_id, now) end
    -- The line, as claim.lua keeps it: wanting more while full keeps the caller waiting.
    if want > 1 and redis.call('ZCARD', K.queue) > 0 and redis.call('ZCARD', K.active) >= limit then
      redis.call('ZADD', K.waiters, 'NX', now, CTX.replica)
      redis.call('HSET', K.waiters_seen, CTX.replica, now)
    end
  else
    redis.call('PUBLISH', CTX.wake_channel, 'release:' .. target)
  end
end

local failures = tonumber(job.failures or 0)
if (status == 'failed' or status == 'timed_out') and job.cancelRequested ~= '1'
    and failures + 1 < tonumber(job.maxAttempts or 1) then
  local due = now + tonumber(ARGV[8])
  redis.call('HSET', jk, 'state', 'delayed', 'failures', failures + 1, 'runAt', due,
    'error', ARGV[7])
  redis.call('HDEL', jk, 'token', 'leaseUntil')
  redis.call('ZADD', K.delayed, due, id)
  count_queued(id, 1)
  publish_state(CTX.events_prefix, id, 'delayed', ',"retryAt":' .. due)
  return {2, due, next_claim}
end

if job.cancelRequested == '1' then status = 'cancelled' end
local opts = {now = now, result = ARGV[6], error = ARGV[7]}
for k, v in pairs(CTX) do opts[k] = v end
if status ~= 'failed' and status ~= 'timed_out' then
  redis.call('HSET', jk, 'failures', failures)
else
  redis.call('HSET', jk, 'failures', failures + 1)
end
local did = finish_job(id, job, status, opts)
return {1, status, did or '', next_claim}

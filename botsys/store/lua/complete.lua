-- complete.lua — record an attempt's outcome; refused unless the caller holds the lease.
-- A failed or timed-out attempt with attempts left goes back to delayed (backoff); otherwise
-- the terminal state, result, counters, retention and the webhook delivery are written here,
-- in the same step, so a crash cannot lose a result or its delivery.
-- KEYS: meta queue delayed active jobs deliveries waiters waiters_seen starts
-- ARGV: prefix now id token status result error retry_delay_ms take_next replica lease_ms waiter_ttl_ms events_prefix wake_channel cadence_max cadence_ms keep_finished retention_s failed_retention_s webhook_attempts endpoints deliveries_channel
-- now: ms ('' = Redis TIME); status: succeeded | failed | timed_out | cancelled; result: raw
-- JSON text ('' = none); error: '' = none; retry_delay_ms: if this attempt is retried;
-- take_next: how many jobs of this type the caller could start now (its slot is freeing), as
-- claim.lua's want ('' or 0: none).
-- Returns  {R.lost}: not the owner, nothing written | {R.finished, state, delivery id or ''}
--          | {R.retrying, due ms}; either of the last two with one more element, a claim (the
--          next job's HGETALL, as claim.lua), when the freed slot stayed with the caller and
--          it can take one: no wake-up and no claim round trip
local now = now_ms(A.now)
local id, token, status = A.id, A.token, A.status
local jk = key(KEY.job, id)
local job = hgetall(jk)
if job.token ~= token or not redis.call('ZSCORE', K.active, id) then return {R.lost} end
-- A freed slot matters only when the semaphore was full (dispatchers wait for it) and jobs
-- are waiting. It is handed to one replica: the one that has waited longest for a slot (see
-- claim.lua), else this one. Every replica racing for it cost N-1 empty claims per release;
-- this one always keeping it would pin the load where it started (re-measured for issue 20:
-- the line costs ~10 % more scripts and servers' CPU per job with 2-3 replicas on one host;
-- it is what spreads the slots over the replicas). When it stays here and the caller can
-- take it, the next job is leased to the caller at once.
local next_claim = nil
local meta = redis.call('HMGET', K.meta, 'limit', 'paused', 'heldUntil')
local limit = tonumber(meta[1]) or 0
local was_full = redis.call('ZCARD', K.active) >= limit
redis.call('ZREM', K.active, id)
if was_full and redis.call('ZCARD', K.queue) > 0 then
  local fresh, target = now - A.waiter_ttl_ms, A.replica
  for _, replica in ipairs(redis.call('ZRANGE', K.waiters, 0, -1)) do
    redis.call('ZREM', K.waiters, replica)  -- served, or gone: it leaves the line either way
    if tonumber(redis.call('HGET', K.waiters_seen, replica) or 0) >= fresh then
      target = replica
      break
    end
    redis.call('HDEL', K.waiters_seen, replica)
  end
  local want = tonumber(A.take_next) or 0
  if target == A.replica and want > 0 and meta[2] ~= '1' and (tonumber(meta[3]) or 0) <= now
      and redis.call('ZCARD', K.active) < limit  -- (a lowered limit: still over it)
      and cadence_room(now, A) > 0 then  -- (else our dispatcher, woken, learns when it may)
    local next_id = pop_waiting()
    if next_id then next_claim = admit(next_id, now, A) end
    -- The line, as claim.lua keeps it: wanting more while full keeps the caller waiting.
    if want > 1 and redis.call('ZCARD', K.queue) > 0 and redis.call('ZCARD', K.active) >= limit then
      redis.call('ZADD', K.waiters, 'NX', now, A.replica)
      redis.call('HSET', K.waiters_seen, A.replica, now)
    end
  else
    redis.call('PUBLISH', A.wake_channel, 'release:' .. target)
  end
end

local failures = tonumber(job.failures or 0)
if (status == S.failed or status == S.timed_out) and job.cancelRequested ~= '1'
    and failures + 1 < tonumber(job.maxAttempts or 1) then
  local due = now + tonumber(A.retry_delay_ms)
  redis.call('HSET', jk, 'state', S.delayed, 'failures', failures + 1, 'runAt', due,
    'error', A.error)
  redis.call('HDEL', jk, 'token', 'leaseUntil')
  redis.call('ZADD', K.delayed, due, id)
  count_queued(id, 1)
  publish_state(A.events_prefix, id, S.delayed, ',"retryAt":' .. due)
  return {R.retrying, due, next_claim}
end

if job.cancelRequested == '1' then status = S.cancelled end
if status ~= S.failed and status ~= S.timed_out then
  redis.call('HSET', jk, 'failures', failures)
else
  redis.call('HSET', jk, 'failures', failures + 1)
end
local did = finish_job(id, job, status, now, A.result, A.error, A)
return {R.finished, status, did or '', next_claim}

-- enqueue.lua — add a job: waiting (by priority, FIFO within one) or delayed until a start time.
-- KEYS: meta queue delayed active jobs waiters starts admits
-- ARGV: prefix now id fields delay_ms idempotency_ttl_s take replica lease_ms events_prefix wake_channel max_queued max_queued_bytes max_index cadence_max cadence_ms cadence_reject
-- now: ms ('' = Redis TIME). fields: JSON {botType, bot, payload, priority, webhookUrl,
-- timeoutMs, maxAttempts, idempotencyKey, ...}, strings or numbers. delay_ms: 0 = ready now.
-- take: '1' when the calling replica can start the job now: it is leased to the caller if a
-- slot is free, the cadence (lib.lua cadence_room) allows a start and the job is next in line
-- (saves the wake-up and claim round trips). cadence_reject: '1' refuses jobs over the cadence.
-- Returns  {R.created, id, position}: jobs waiting ahead of it (a delayed job: all that wait)
--          | {R.created, id, claim}: created and leased to the caller (its HGETALL, as claim.lua)
--          | {R.existing, id}: an earlier job with the same idempotency key
--          | {R.max_queued, cap} | {R.max_queued_bytes, cap}: refused (admission control: the
--          type's waiting + delayed jobs, or their payload bytes, at the cap)
--          | {R.deleted, 0}: refused, the type was deleted (a replica that did not know yet)
--          | {R.cadence, ms}: refused, a cadence in reject mode accepted its max in the
--          interval; ms until one more would be (a repeated Idempotency-Key is not refused)
if redis.call('HGET', K.meta, 'deleted') == '1' then return {R.deleted, 0} end
local now = now_ms(A.now)
local id = A.id
local f = cjson.decode(A.fields)
local delay = tonumber(A.delay_ms)
if f.idempotencyKey and f.idempotencyKey ~= '' then
  local ik = key(KEY.idem, f.idempotencyKey)
  local existing = redis.call('GET', ik)
  if existing then return {R.existing, existing} end
  redis.call('SET', ik, id, 'EX', tonumber(A.idempotency_ttl_s))
end
if A.cadence_reject == '1' then
  local wait = cadence_admit(now, A)
  if wait > 0 then
    if f.idempotencyKey and f.idempotencyKey ~= '' then redis.call('DEL', key(KEY.idem, f.idempotencyKey)) end
    return {R.cadence, wait}
  end
end
-- Admission control: nothing of a refused job stays (its idempotency key is taken back). The
-- byte count starts again from 0 whenever nothing is queued, so no drift (a job hash deleted
-- behind our back) can outlive a backlog.
local queued = redis.call('ZCARD', K.queue) + redis.call('ZCARD', K.delayed)
local size = string.len(f.payload or '')
local queued_bytes = 0
if queued > 0 then queued_bytes = math.max(0, tonumber(redis.call('HGET', K.meta, 'queuedBytes') or 0)) end
local refused = nil
local max_queued, max_bytes = tonumber(A.max_queued), tonumber(A.max_queued_bytes)
if max_queued > 0 and queued >= max_queued then
  refused = {R.max_queued, max_queued}
elseif max_bytes > 0 and queued_bytes + size > max_bytes then
  refused = {R.max_queued_bytes, max_bytes}
end
if refused then
  if f.idempotencyKey and f.idempotencyKey ~= '' then redis.call('DEL', key(KEY.idem, f.idempotencyKey)) end
  return refused
end
redis.call('HSET', K.meta, 'queuedBytes', queued_bytes + size)
if redis.call('HEXISTS', K.meta, 'seq') == 0 then restore_seq() end  -- lost with the record
local seq = redis.call('HINCRBY', K.meta, 'seq', 1)
local jk = key(KEY.job, id)
local fields = {'id', id, 'seq', seq, 'createdAt', now, 'attempt', 0, 'failures', 0, 'stalls', 0,
  'progress', 0}
for k, v in pairs(f) do
  if v ~= '' then table.insert(fields, k); table.insert(fields, v) end
end
if delay > 0 then
  table.insert(fields, 'state'); table.insert(fields, S.delayed)
  table.insert(fields, 'runAt'); table.insert(fields, now + delay)
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', K.delayed, now + delay, id)
else
  table.insert(fields, 'state'); table.insert(fields, S.queued)
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', K.queue, tonumber(f.priority) * TWO32 + seq, id)
end
redis.call('ZADD', K.jobs, now, id)
if redis.call('ZCARD', K.jobs) > tonumber(A.max_index) then
  redis.call('ZREMRANGEBYRANK', K.jobs, 0, -(A.max_index + 1))
end
-- Wake dispatchers only if one could take it now: with the semaphore full (or the type
-- paused) the wake-up comes from the release (or resume) instead, unless nobody waits in line.
local meta = redis.call('HMGET', K.meta, 'limit', 'paused', 'heldUntil')
local limit = tonumber(meta[1]) or 0
local held = (tonumber(meta[3]) or 0) > now  -- no leases yet after a lost record
local room = cadence_room(now, A)
if room == 0 and meta[2] ~= '1' then
  -- The cadence holds it: dispatchers already sleep until the next start may happen, unless
  -- it is the first to wait (they must then learn when that is).
  if delay == 0 and redis.call('ZCARD', K.queue) == 1 then
    redis.call('PUBLISH', A.wake_channel, 'enqueue')
  end
elseif meta[2] ~= '1' and not held and redis.call('ZCARD', K.active) < limit then
  if A.take == '1' and delay == 0 and redis.call('ZRANGE', K.queue, 0, 0)[1] == id then
    redis.call('ZREM', K.queue, id)
    local claim = admit(id, now, A)
    if redis.call('ZCARD', K.active) < limit and redis.call('ZCARD', K.queue) > 0 then
      redis.call('PUBLISH', A.wake_channel, 'enqueue')  -- more slots and work: wake others
    end
    return {R.created, id, claim}
  end
  redis.call('PUBLISH', A.wake_channel, 'enqueue')
elseif meta[2] ~= '1' and (redis.call('ZCARD', K.waiters) == 0 or not meta[1]) then
  -- Full, and no replica waits in line for a slot: complete.lua hands freed slots only to
  -- replicas in the line (else the completer keeps them), so wake the idle ones to join it.
  -- No record (Redis lost it): the claims this wakes re-create it.
  redis.call('PUBLISH', A.wake_channel, 'enqueue')
end
return {R.created, id, redis.call('ZRANK', K.queue, id) or redis.call('ZCARD', K.queue)}

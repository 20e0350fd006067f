-- enqueue.lua — add a job: waiting (by priority, FIFO within one) or delayed until a start time.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ms ('' = Redis TIME);  ARGV[3] job id
-- ARGV[4]  fields JSON: {botType, bot, payload, priority, webhookUrl, timeoutMs, maxAttempts,
--          idempotencyKey}, all strings or numbers
-- ARGV[5]  delay ms (0 = ready now);  ARGV[6] idempotency TTL s
-- ARGV[7]  '1': the calling replica can start the job now; claim it for it if a slot is free,
--          the cadence (lib.lua cadence_room) allows a start, and the job is next in line
--          (saves the wake-up and claim round trips)
-- Returns  {1, id, position} created: jobs waiting ahead of it (a delayed job: all that wait)
--          | {1, id, claim} created and claimed (the job's HGETALL, as claim.lua)
--          | {0, existing id} an earlier job with the same idempotency key
--          | {-1, 'max_queued', cap} | {-2, 'max_queued_bytes', cap} refused (admission
--          control: the type's waiting + delayed jobs, or their payload bytes, at the cap)
--          | {-3, 'deleted', 0} refused: the type was deleted (a replica that did not know yet)
--          | {-4, 'cadence', ms} refused: a cadence in reject mode accepted its max in the
--          interval; ms until one more would be (a repeated Idempotency-Key is not refused)
if redis.call('HGET', K.meta, 'deleted') == '1' then return {-3, 'deleted', 0} end
local now = now_ms(ARGV[2])
local id = ARGV[3]
local f = cjson.decode(ARGV[4])
local delay = tonumber(ARGV[5])
if f.idempotencyKey and f.idempotencyKey ~= '' then
  local ik = P .. 'idem:' .. f.idempotencyKey
  local existing = redis.call('GET', ik)
  if existing then return {0, existing} end
  redis.call('SET', ik, id, 'EX', tonumber(ARGV[6]))
end
if CTX.cadence_reject then
  local wait = cadence_admit(now)
  if wait > 0 then
    if f.idempotencyKey and f.idempotencyKey ~= '' then redis.call('DEL', P .. 'idem:' .. f.idempotencyKey) end
    return {-4, 'cadence', wait}
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
if CTX.max_queued > 0 and queued >= CTX.max_queued then
  refused = {-1, 'max_queued', CTX.max_queued}
elseif CTX.max_queued_bytes > 0 and queued_bytes + size > CTX.max_queued_bytes then
  refused = {-2, 'max_queued_bytes', CTX.max_queued_bytes}
end
if refused then
  if f.idempotencyKey and f.idempotencyKey ~= '' then redis.call('DEL', P .. 'idem:' .. f.idempotencyKey) end
  return refused
end
redis.call('HSET', K.meta, 'queuedBytes', queued_bytes + size)
if redis.call('HEXISTS', K.meta, 'seq') == 0 then restore_seq() end  -- lost with the record
local seq = redis.call('HINCRBY', K.meta, 'seq', 1)
local jk = job_key(id)
local fields = {'id', id, 'seq', seq, 'createdAt', now, 'attempt', 0, 'failures', 0, 'stalls', 0,
  'progress', 0}
for k, v in pairs(f) do
  if v ~= '' then table.insert(fields, k); table.insert(fields, v) end
end
if delay > 0 then
  table.insert(fields, 'state'); table.insert(fields, 'delayed')
  table.insert(fields, 'runAt'); table.insert(fields, now + delay)
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', K.delayed, now + delay, id)
else
  table.insert(fields, 'state'); table.insert(fields, 'queued')
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', K.queue, tonumber(f.priority) * TWO32 + seq, id)
end
redis.call('ZADD', K.jobs, now, id)
if redis.call('ZCARD', K.jobs) > CTX.max_index then
  redis.call('ZREMRANGEBYRANK', K.jobs, 0, -(CTX.max_index + 1))
end
-- Wake dispatchers only if one could take it now: with the semaphore full (or the type
-- paused) the wake-up comes from the release (or resume) instead, unless nobody waits in line.
local meta = redis.call('HMGET', K.meta, 'limit', 'paused', 'heldUntil')
local limit = tonumber(meta[1]) or 0
local held = (tonumber(meta[3]) or 0) > now  -- no leases yet after a lost record
local room = cadence_room(now)
if room == 0 and meta[2] ~= '1' then
  -- The cadence holds it: dispatchers already sleep until the next start may happen, unless
  -- it is the first to wait (they must then learn when that is).
  if delay == 0 and redis.call('ZCARD', K.queue) == 1 then
    redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
  end
elseif meta[2] ~= '1' and not held and redis.call('ZCARD', K.active) < limit then
  if ARGV[7] == '1' and delay == 0 and redis.call('ZRANGE', K.queue, 0, 0)[1] == id then
    redis.call('ZREM', K.queue, id)
    local claim = admit(id, now)
    if redis.call('ZCARD', K.active) < limit and redis.call('ZCARD', K.queue) > 0 then
      redis.call('PUBLISH', CTX.wake_channel, 'enqueue')  -- more slots and work: wake others
    end
    return {1, id, claim}
  end
  redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
elseif meta[2] ~= '1' and (redis.call('ZCARD', K.waiters) == 0 or not meta[1]) then
  -- Full, and no replica waits in line for a slot: complete.lua hands freed slots only to
  -- replicas in the line (else the completer keeps them), so wake the idle ones to join it.
  -- No record (Redis lost it): the claims this wakes re-create it.
  redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
end
return {1, id, redis.call('ZRANK', K.queue, id) or redis.call('ZCARD', K.queue)}

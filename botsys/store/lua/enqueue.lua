-- enqueue.lua — add a job: waiting (by priority, FIFO within one) or delayed until a start time.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ms ('' = Redis TIME);  ARGV[3] job id
-- ARGV[4]  fields JSON: {botType, bot, payload, priority, webhookUrl, timeoutMs, maxAttempts,
--          idempotencyKey}, all strings or numbers
-- ARGV[5]  delay ms (0 = ready now);  ARGV[6] idempotency TTL s
-- ARGV[7]  '1': the calling replica can start the job now; claim it for it if a slot is free
--          and the job is next in line (saves the wake-up and claim round trips)
-- Returns  {1, id, position} created: jobs waiting ahead of it (a delayed job: all that wait)
--          | {1, id, claim} created and claimed (the job's HGETALL, as claim.lua)
--          | {0, existing id} an earlier job with the same idempotency key
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
local meta = redis.call('HMGET', K.meta, 'limit', 'paused')
local limit = tonumber(meta[1]) or 0
if meta[2] ~= '1' and redis.call('ZCARD', K.active) < limit then
  if ARGV[7] == '1' and delay == 0 and redis.call('ZRANGE', K.queue, 0, 0)[1] == id then
    redis.call('ZREM', K.queue, id)
    local claim = admit(id, now)
    if redis.call('ZCARD', K.active) < limit and redis.call('ZCARD', K.queue) > 0 then
      redis.call('PUBLISH', CTX.wake_channel, 'enqueue')  -- more slots and work: wake others
    end
    return {1, id, claim}
  end
  redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
elseif meta[2] ~= '1' and redis.call('ZCARD', K.waiters) == 0 then
  -- Full, and no replica waits in line for a slot: complete.lua hands freed slots only to
  -- replicas in the line (else the completer keeps them), so wake the idle ones to join it.
  redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
end
return {1, id, redis.call('ZRANK', K.queue, id) or redis.call('ZCARD', K.queue)}

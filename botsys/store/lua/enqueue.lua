-- enqueue.lua — add a job: waiting (by priority, FIFO within one) or delayed until a start time.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ms ('' = Redis TIME);  ARGV[3] job id
-- ARGV[4]  fields JSON: {botType, bot, payload, priority, webhookUrl, timeoutMs, maxAttempts,
--          idempotencyKey}, all strings or numbers
-- ARGV[5]  delay ms (0 = ready now);  ARGV[6] idempotency TTL s
-- Returns  {1, id} created | {0, existing id} an earlier job with the same idempotency key
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
-- paused) the wake-up comes from the release (or resume) instead.
local meta = redis.call('HMGET', K.meta, 'limit', 'paused')
if meta[2] ~= '1' and redis.call('ZCARD', K.active) < (tonumber(meta[1]) or 0) then
  redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
end
return {1, id}

-- redeliver.lua — send a delivered or dead-lettered delivery again (same webhook-id), with a
-- fresh budget of attempts.
-- KEYS: deliveries
-- ARGV: prefix now id webhook_attempts deliveries_channel
-- now: ms ('' = Redis TIME)
-- Returns  {R.unknown} | {R.pending, 'pending'}: still pending | {R.redelivered, 'pending'}
local now = now_ms(A.now)
local did = A.id
local dk = key(KEY.delivery, did)
local d = hgetall(dk)
if not d.state then return {R.unknown} end
if d.state == S.pending then return {R.pending, S.pending} end
redis.call('ZREM', key(KEY.dlv, d.state), did)
redis.call('HSET', dk, 'state', S.pending, 'maxAttempts', tonumber(d.attempt) + A.webhook_attempts,
  'nextAt', now)
redis.call('HDEL', dk, 'finishedAt', 'token')
redis.call('PERSIST', dk)
redis.call('PERSIST', key(KEY.attempts, did))
redis.call('ZADD', K.deliveries, now, did)
local jk = key(KEY.job, d.jobId)
if redis.call('EXISTS', jk) == 1 then redis.call('HSET', jk, 'webhookState', S.pending) end
redis.call('PUBLISH', A.deliveries_channel, A.prefix)
return {R.redelivered, S.pending}

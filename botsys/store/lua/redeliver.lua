-- redeliver.lua — send a delivered or dead-lettered delivery again (same webhook-id), with a
-- fresh budget of attempts.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] delivery id
-- Returns  {-1} unknown | {0, state} still pending | {1, 'pending'}
local now = now_ms(ARGV[2])
local did = ARGV[3]
local dk = key(KEY.delivery, did)
local d = hgetall(dk)
if not d.state then return {-1} end
if d.state == 'pending' then return {0, 'pending'} end
redis.call('ZREM', key(KEY.dlv, d.state), did)
redis.call('HSET', dk, 'state', 'pending', 'maxAttempts', tonumber(d.attempt) + CTX.webhook_attempts,
  'nextAt', now)
redis.call('HDEL', dk, 'finishedAt', 'token')
redis.call('PERSIST', dk)
redis.call('PERSIST', key(KEY.attempts, did))
redis.call('ZADD', K.deliveries, now, did)
local jk = key(KEY.job, d.jobId)
if redis.call('EXISTS', jk) == 1 then redis.call('HSET', jk, 'webhookState', 'pending') end
redis.call('PUBLISH', CTX.deliveries_channel, P)
return {1, 'pending'}

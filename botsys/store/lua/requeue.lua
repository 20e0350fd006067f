-- requeue.lua — give a running job back without charging an attempt (graceful shutdown).
-- KEYS: meta queue active
-- ARGV: prefix id token wake_channel events_prefix
-- Returns  R.requeued | R.lost: not the owner (nothing written)
local id, token = A.id, A.token
local jk = key(KEY.job, id)
local job = hgetall(jk)
if job.token ~= token or not redis.call('ZSCORE', K.active, id) then return R.lost end
redis.call('ZREM', K.active, id)
redis.call('HINCRBY', jk, 'attempt', -1)
redis.call('HSET', jk, 'state', S.queued)
redis.call('HDEL', jk, 'token', 'owner', 'leaseUntil')
redis.call('ZADD', K.queue, queue_score(job), id)
count_queued(id, 1)
redis.call('PUBLISH', A.wake_channel, 'requeue')
publish_state(A.events_prefix, id, S.queued, ',"reason":"requeued"')
return R.requeued

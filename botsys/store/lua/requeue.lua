-- requeue.lua — give a running job back without charging an attempt (graceful shutdown).
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] job id;  ARGV[4] token
-- Returns  1 requeued | 0 not the owner (nothing written)
local id, token = ARGV[3], ARGV[4]
local jk = job_key(id)
local job = hgetall(jk)
if job.token ~= token or not redis.call('ZSCORE', K.active, id) then return 0 end
redis.call('ZREM', K.active, id)
redis.call('HINCRBY', jk, 'attempt', -1)
redis.call('HSET', jk, 'state', 'queued')
redis.call('HDEL', jk, 'token', 'owner', 'leaseUntil')
redis.call('ZADD', K.queue, queue_score(job), id)
count_queued(id, 1)
redis.call('PUBLISH', CTX.wake_channel, 'requeue')
publish_state(CTX.events_prefix, id, 'queued', ',"reason":"requeued"')
return 1

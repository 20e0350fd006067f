-- release_delivery.lua — hand a claimed delivery back unsent (its host is saturated, or this
-- replica is shutting down): due again after a delay, and the attempt is not counted.
-- KEYS: deliveries
-- ARGV: prefix now id token delay_ms
-- now: ms ('' = Redis TIME)
-- Returns  R.lost: another replica owns it now | R.done: released
local now = now_ms(A.now)
local did, token = A.id, A.token
local dk = key(KEY.delivery, did)
local d = hgetall(dk)
if d.token ~= token or d.state ~= S.pending then return R.lost end
redis.call('HINCRBY', dk, 'attempt', -1)
redis.call('HDEL', dk, 'token', 'leaseUntil')
redis.call('HSET', dk, 'nextAt', now + tonumber(A.delay_ms))
redis.call('ZADD', K.deliveries, now + tonumber(A.delay_ms), did)
return R.done

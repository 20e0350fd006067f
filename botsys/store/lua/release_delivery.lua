-- release_delivery.lua — hand a claimed delivery back unsent (its host is saturated, or this
-- replica is shutting down): due again after a delay, and the attempt is not counted.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] delivery id;  ARGV[4] token
-- ARGV[5]  delay ms
-- Returns  0 lost (another replica owns it now) | 1 released
local now = now_ms(ARGV[2])
local did, token = ARGV[3], ARGV[4]
local dk = key(KEY.delivery, did)
local d = hgetall(dk)
if d.token ~= token or d.state ~= 'pending' then return 0 end
redis.call('HINCRBY', dk, 'attempt', -1)
redis.call('HDEL', dk, 'token', 'leaseUntil')
redis.call('HSET', dk, 'nextAt', now + tonumber(ARGV[5]))
redis.call('ZADD', K.deliveries, now + tonumber(ARGV[5]), did)
return 1

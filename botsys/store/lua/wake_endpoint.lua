-- wake_endpoint.lua — a re-enabled endpoint: its held deliveries (pending, not leased) of one
-- slot are due now, so what piled up while it was disabled goes out at once.
-- KEYS[1]  type prefix (or the ad-hoc slot's)
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] endpoint id
-- Returns  how many were made due
local now = now_ms(ARGV[2])
local n = 0
for _, did in ipairs(redis.call('ZRANGEBYSCORE', K.deliveries, '(' .. now, '+inf')) do
  local d = redis.call('HMGET', key(KEY.delivery, did), 'endpoint', 'leaseUntil', 'state')
  if d[1] == ARGV[3] and not d[2] and d[3] == 'pending' then
    redis.call('HSET', key(KEY.delivery, did), 'nextAt', now)
    redis.call('ZADD', K.deliveries, now, did)
    n = n + 1
  end
end
if n > 0 then redis.call('PUBLISH', CTX.deliveries_channel, P) end
return n

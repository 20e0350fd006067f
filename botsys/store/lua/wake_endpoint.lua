-- wake_endpoint.lua — a re-enabled endpoint: its held deliveries (pending, not leased) of one
-- slot are due now, so what piled up while it was disabled goes out at once.
-- KEYS: deliveries
-- ARGV: prefix now endpoint deliveries_channel
-- now: ms ('' = Redis TIME); endpoint: the endpoint's id.
-- Returns  how many were made due
local now = now_ms(A.now)
local n = 0
for _, did in ipairs(redis.call('ZRANGEBYSCORE', K.deliveries, '(' .. now, '+inf')) do
  local d = redis.call('HMGET', key(KEY.delivery, did), 'endpoint', 'leaseUntil', 'state')
  if d[1] == A.endpoint and not d[2] and d[3] == S.pending then
    redis.call('HSET', key(KEY.delivery, did), 'nextAt', now)
    redis.call('ZADD', K.deliveries, now, did)
    n = n + 1
  end
end
if n > 0 then redis.call('PUBLISH', A.deliveries_channel, A.prefix) end
return n

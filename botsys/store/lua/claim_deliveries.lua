-- claim_deliveries.lua — lease due webhook deliveries of one bot type for sending.
-- The lease is the delivery's score itself: a claimed delivery is re-due at now + lease, so a
-- replica that dies mid-send loses nothing — another one sends it again after the lease.
-- KEYS: meta deliveries
-- ARGV: prefix now max delivery_lease_ms
-- now: ms ('' = Redis TIME); max: how many to claim at most.
-- Returns  {wait_ms, d1, d2, ...}: wait_ms until the next one is due (-1: none);
--          dN = the delivery's HGETALL (with the new token and attempt number)
local now = now_ms(A.now)
local lease = tonumber(A.delivery_lease_ms)
local out = {-1}
local due = redis.call('ZRANGEBYSCORE', K.deliveries, '-inf', now, 'LIMIT', 0, tonumber(A.max))
for _, did in ipairs(due) do
  local dk = key(KEY.delivery, did)
  local state = redis.call('HGET', dk, 'state')
  if state ~= S.pending then
    redis.call('ZREM', K.deliveries, did)
  else
    local token = next_token('dtoken', now)
    redis.call('HINCRBY', dk, 'attempt', 1)
    redis.call('HSET', dk, 'token', token, 'leaseUntil', now + lease)
    redis.call('ZADD', K.deliveries, now + lease, did)
    table.insert(out, redis.call('HGETALL', dk))
  end
end
local nxt = redis.call('ZRANGE', K.deliveries, 0, 0, 'WITHSCORES')
if #nxt > 0 then out[1] = math.max(1, tonumber(nxt[2]) - now) end
return out

-- cadence_admit.lua — a type's cadence in "reject" mode, checked at the door (/invoke): at most
-- CTX.cadence_max jobs accepted in any CTX.cadence_ms (sliding window, Redis time). The jobs it
-- admits still start under the cadence (claim.lua), so retries cannot exceed it either.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME)
-- Returns  {1} admitted | {0, ms until one more would be}
local now = now_ms(ARGV[2])
local most = tonumber(CTX.cadence_max) or 0
if most <= 0 then return {1} end
local key = K.admits
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - CTX.cadence_ms)
local n = redis.call('ZCARD', key)
if n >= most then
  local oldest = redis.call('ZRANGE', key, n - most, n - most, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + CTX.cadence_ms - now)}
end
redis.call('ZADD', key, now, now .. ':' .. redis.call('HINCRBY', K.meta, 'admitSeq', 1))
redis.call('PEXPIRE', key, CTX.cadence_ms)
return {1}

-- endpoint_probe.lua — may this replica send to an endpoint whose circuit it last saw open?
-- Once the open time has passed, one half-open probe at a time cluster-wide (SET NX, leased).
-- KEYS: breaker probe
-- ARGV: token lease_ms
-- Returns {R.send: closed | R.open: wait ms | R.probe: half-open, send it as the probe
--          | R.probing: half-open, another replica's probe is out: wait ms, ms}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', K.breaker, 'openUntil') or '0')
if open_until == 0 then return {R.send, 0} end
if open_until > now then return {R.open, open_until - now} end
if redis.call('SET', K.probe, A.token, 'NX', 'PX', tonumber(A.lease_ms)) then
  return {R.probe, 0}
end
return {R.probing, math.max(1, redis.call('PTTL', K.probe))}

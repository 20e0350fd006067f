-- endpoint_probe.lua — may this replica send to an endpoint whose circuit it last saw open?
-- Once the open time has passed, one half-open probe at a time cluster-wide (SET NX, leased).
-- KEYS: breaker probe
-- ARGV: token lease_ms
-- Returns {0 closed: send | 1 open: wait ms | 2 half-open, probe taken: send it as the probe
--          | 3 half-open, another replica's probe is out: wait ms, ms}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if open_until == 0 then return {0, 0} end
if open_until > now then return {1, open_until - now} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then return {2, 0} end
return {3, math.max(1, redis.call('PTTL', KEYS[2]))}

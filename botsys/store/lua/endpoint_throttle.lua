-- endpoint_throttle.lua — reserve send slots of an endpoint's cluster-wide throttle: a GCRA
-- with no burst (one key holds the theoretical arrival time, TAT), by Redis time. A replica
-- reserves a few slots at once so most sends need no round trip.
-- KEYS: tat
-- ARGV: interval_us want horizon_us
-- Returns {µs from now to the first slot reserved, slots reserved}; {µs until the TAT comes
-- within the horizon, 0} when it is further ahead (nothing reserved: ask again then).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, want, horizon = tonumber(A.interval_us), tonumber(A.want), tonumber(A.horizon_us)
local tat = tonumber(redis.call('GET', K.tat) or '0')
if tat < now then tat = now end
local ahead = tat - now
if ahead > horizon then return {ahead - horizon, 0} end
local n = math.min(want, math.floor((horizon - ahead) / interval) + 1)
local next_tat = tat + n * interval
redis.call('SET', K.tat, string.format('%d', next_tat), 'PX',
  math.floor((next_tat - now) / 1000) + 1000)
return {ahead, n}

-- endpoint_record.lua — add a replica's attempt outcomes to an endpoint's cluster-wide circuit
-- breaker; open it when the failure ratio over the last `window` attempts reaches the limit.
-- The window is a pair of decayed counts (older attempts fade once `window` are counted), so a
-- replica may report its outcomes in batches.
-- KEYS: breaker probe
-- ARGV: ok failed probe window failure_ratio open_ms
--   probe: '' for ordinary outcomes; else the token of the half-open probe this replica held,
--   whose outcome (ok 1: closes, failed 1: opens again, both 0: not sent) ends the probe.
-- Returns {R.closed | R.open | R.half_open, ms it stays open (0 unless open)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ok, failed, probe = tonumber(A.ok), tonumber(A.failed), A.probe
local window, ratio, open_ms = tonumber(A.window), tonumber(A.failure_ratio), tonumber(A.open_ms)
local b = K.breaker
local DAY_MS = 86400000

local function open()
  redis.call('HSET', b, 'openUntil', now + open_ms, 'oks', 0, 'fails', 0)
  redis.call('HINCRBY', b, 'trips', 1)
  redis.call('PEXPIRE', b, open_ms + DAY_MS)
  return {R.open, open_ms}
end

if probe ~= '' then
  if redis.call('GET', K.probe) ~= probe then  -- its lease ran out: another probe decides
    probe = ''
  else
    redis.call('DEL', K.probe)
    if failed > 0 then return open() end
    if ok > 0 then
      redis.call('HSET', b, 'openUntil', 0, 'oks', 0, 'fails', 0)
      redis.call('PEXPIRE', b, DAY_MS)
      return {R.closed, 0}
    end
  end
end
local open_until = tonumber(redis.call('HGET', b, 'openUntil') or '0')
if open_until > 0 then  -- open or half-open: sends admitted before it opened are judged already
  if open_until > now then return {R.open, open_until - now} end
  return {R.half_open, 0}
end
if ok + failed == 0 then return {R.closed, 0} end
local counts = redis.call('HMGET', b, 'oks', 'fails')
ok = ok + tonumber(counts[1] or '0')
failed = failed + tonumber(counts[2] or '0')
local total = ok + failed
if total > window then  -- keep `window` attempts' worth, in the same proportion
  ok, failed, total = ok * window / total, failed * window / total, window
end
if total >= window - 1e-9 and failed >= ratio * window - 1e-9 then return open() end
redis.call('HSET', b, 'oks', ok, 'fails', failed)
redis.call('PEXPIRE', b, DAY_MS)
return {R.closed, 0}

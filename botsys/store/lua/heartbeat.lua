-- heartbeat.lua — renew the leases of running attempts, each only with its current token.
-- KEYS: meta active
-- ARGV: prefix now lease_ms leases...
-- now: ms ('' = Redis TIME); leases: pairs job id, token.
-- Returns  {lease_until, s1, s2, ...}: sN = R.renewed | R.lost (reclaimed, expired or gone)
--          | R.cancel_requested: renewed, but the owner should stop the bot
writes_on_full_redis()  -- a renewal rewrites, never grows: it must work on a full Redis
local now = now_ms(A.now)
local lease_until = now + tonumber(A.lease_ms)
local out = {lease_until}
for i = REST, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = key(KEY.job, id)
  local score = redis.call('ZSCORE', K.active, id)
  local fields = redis.call('HMGET', jk, 'token', 'cancelRequested')
  if score and tonumber(score) >= now and fields[1] == token then
    redis.call('ZADD', K.active, 'XX', lease_until, id)
    redis.call('HSET', jk, 'leaseUntil', lease_until)
    table.insert(out, fields[2] == '1' and R.cancel_requested or R.renewed)
  else
    table.insert(out, R.lost)
  end
end
return out

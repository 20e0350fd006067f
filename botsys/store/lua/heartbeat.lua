-- heartbeat.lua — renew the leases of running attempts, each only with its current token.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON (lease_ms);  ARGV[2] now ('' = TIME);  ARGV[3..] pairs: job id, token
-- Returns  {lease_until, s1, s2, ...}: sN = 1 renewed | 0 lost (reclaimed, expired or gone)
--          | 2 renewed but a cancel was requested (the owner should stop the bot)
writes_on_full_redis()  -- a renewal rewrites, never grows: it must work on a full Redis
local now = now_ms(ARGV[2])
local lease_until = now + CTX.lease_ms
local out = {lease_until}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = job_key(id)
  local score = redis.call('ZSCORE', K.active, id)
  local fields = redis.call('HMGET', jk, 'token', 'cancelRequested')
  if score and tonumber(score) >= now and fields[1] == token then
    redis.call('ZADD', K.active, 'XX', lease_until, id)
    redis.call('HSET', jk, 'leaseUntil', lease_until)
    table.insert(out, fields[2] == '1' and 2 or 1)
  else
    table.insert(out, 0)
  end
end
return out

-- seed_limit.lua — create or update a bot type's record ({T}:meta) from configuration.
-- At start-up the configured limit is set; a limit changed live (PATCH /queues) survives
-- restarts until the configured value itself changes. A record found missing (Redis restarted
-- empty, FLUSHALL, a failover that lost writes; claim.lua reports it) is re-created: the
-- configured limit, not paused, the waiting-job sequence continued above the queued jobs. After
-- such a loss (hold_ms > 0) no lease is given for hold_ms: attempts of the lost state may
-- still run until their owners find their leases gone and stop them (self-fencing, within one
-- lease), and the limit must hold meanwhile.
-- KEYS: meta queue
-- ARGV: now limit hold_ms
-- now: ms ('' = Redis TIME); limit: the configured one; hold_ms: how long to hold new leases
-- if the record is re-created ('' or 0: none, at start-up).
-- Returns  {the limit in force, 1 the record was (re-)created | 0 it existed}
local created = 0
if redis.call('HEXISTS', K.meta, 'limit') == 0 then
  created = 1
  if redis.call('HEXISTS', K.meta, 'seq') == 0 then restore_seq() end
  local hold = tonumber(A.hold_ms) or 0
  if hold > 0 then redis.call('HSET', K.meta, 'heldUntil', now_ms(A.now) + hold) end
  redis.call('HSET', K.meta, 'limit', A.limit, 'configLimit', A.limit)
elseif redis.call('HGET', K.meta, 'configLimit') ~= A.limit then
  redis.call('HSET', K.meta, 'limit', A.limit, 'configLimit', A.limit)
end
return {tonumber(redis.call('HGET', K.meta, 'limit')), created}

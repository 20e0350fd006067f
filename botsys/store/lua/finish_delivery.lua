-- finish_delivery.lua — record one delivery attempt; refused unless the caller holds the lease.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] delivery id;  ARGV[4] token
-- ARGV[5]  attempt record JSON;  ARGV[6] outcome: delivered | retry | failed
-- ARGV[7]  next attempt at (ms; only for retry);  ARGV[8] HTTP status ('' = none)
-- Returns  0 lost (another replica owns it now) | 1 recorded
-- A dead-lettered delivery creates delivery.dead events for the slot's subscribed endpoints.
local now = now_ms(ARGV[2])
local did, token, outcome = ARGV[3], ARGV[4], ARGV[6]
local dk = key(KEY.delivery, did)
local d = hgetall(dk)
if d.token ~= token or d.state ~= 'pending' then return 0 end
local ak = key(KEY.attempts, did)
redis.call('RPUSH', ak, ARGV[5])
redis.call('LTRIM', ak, -100, -1)
redis.call('HSET', dk, 'lastStatus', ARGV[8], 'lastAttemptAt', now)
redis.call('HDEL', dk, 'token', 'leaseUntil')
local state = 'pending'
if outcome == 'retry' then
  redis.call('ZADD', K.deliveries, tonumber(ARGV[7]), did)
  redis.call('HSET', dk, 'nextAt', ARGV[7])
else
  state = (outcome == 'delivered') and 'delivered' or 'dead'
  redis.call('ZREM', K.deliveries, did)
  redis.call('HSET', dk, 'state', state, 'finishedAt', now)
  redis.call('HDEL', dk, 'nextAt')
  redis.call('HINCRBY', K.meta, 'webhook_' .. state, 1)
  redis.call('ZADD', key(KEY.dlv, state), now, did)
  if redis.call('ZCARD', key(KEY.dlv, state)) > CTX.max_index then
    redis.call('ZREMRANGEBYRANK', key(KEY.dlv, state), 0, -(CTX.max_index + 1))
  end
  redis.call('EXPIRE', dk, CTX.failed_retention_s)
  redis.call('EXPIRE', ak, CTX.failed_retention_s)
  -- Dead-lettered: a delivery.dead event to each subscribed endpoint, in this slot (never
  -- about an event that is itself delivery.dead: no loops).
  if state == 'dead' and d.eventType ~= 'delivery.dead' then
    local body = nil
    local run = nil
    for _, ep in ipairs(CTX.endpoints or {}) do
      if ep.events['delivery.dead'] then
        run = run or redis.call('HINCRBY', dk, 'deadRuns', 1)
        local eid = did .. '_dead_' .. ep.id .. (run > 1 and ('_' .. run) or '')
        body = body or ('{"type":"delivery.dead","timestamp":' .. json_str(iso(now)) ..
          ',"data":{"deliveryId":' .. cjson.encode(did) .. ',"jobId":' .. json_str(d.jobId) ..
          ',"endpointId":' .. json_str(d.endpoint) .. ',"eventType":' .. json_str(d.eventType) ..
          ',"attempts":' .. json_num(d.attempt) .. ',"lastStatus":' .. json_num(ARGV[8]) .. '}}')
        redis.call('HSET', key(KEY.delivery, eid), 'id', eid, 'jobId', '', 'botType', d.botType or '',
          'url', ep.url, 'body', body, 'eventType', 'delivery.dead', 'endpoint', ep.id,
          'attempt', 0, 'maxAttempts', CTX.webhook_attempts, 'state', 'pending',
          'createdAt', now, 'nextAt', now)
        redis.call('ZADD', K.deliveries, now, eid)
      end
    end
    if run then redis.call('PUBLISH', CTX.deliveries_channel, P) end
  end
end
local jk = key(KEY.job, d.jobId)
if redis.call('EXISTS', jk) == 1 and redis.call('HGET', jk, 'deliveryId') == did then
  redis.call('HSET', jk, 'webhookState', state, 'webhookAttempts', d.attempt,
    'webhookLastStatus', ARGV[8])
  if state == 'delivered' then redis.call('HSET', jk, 'webhookDeliveredAt', now) end
end
return 1

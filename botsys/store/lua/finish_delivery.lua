-- finish_delivery.lua — record one delivery attempt; refused unless the caller holds the lease.
-- KEYS: meta deliveries
-- ARGV: prefix now id token record outcome next_at status max_index failed_retention_s webhook_attempts endpoints deliveries_channel
-- now: ms ('' = Redis TIME); record: the attempt's JSON; outcome: delivered | retry | failed;
-- next_at: ms of the next attempt (retry only); status: the HTTP status ('' = none);
-- endpoints: the slot's subscribed endpoints (JSON).
-- Returns  R.lost: another replica owns it now | R.done: recorded
-- A dead-lettered delivery creates delivery.dead events for the slot's subscribed endpoints.
local now = now_ms(A.now)
local did, token, outcome = A.id, A.token, A.outcome
local dk = key(KEY.delivery, did)
local d = hgetall(dk)
if d.token ~= token or d.state ~= S.pending then return R.lost end
local ak = key(KEY.attempts, did)
redis.call('RPUSH', ak, A.record)
redis.call('LTRIM', ak, -100, -1)
redis.call('HSET', dk, 'lastStatus', A.status, 'lastAttemptAt', now)
redis.call('HDEL', dk, 'token', 'leaseUntil')
local state = S.pending
if outcome == 'retry' then
  redis.call('ZADD', K.deliveries, tonumber(A.next_at), did)
  redis.call('HSET', dk, 'nextAt', A.next_at)
else
  state = (outcome == S.delivered) and S.delivered or S.dead
  local index = key(KEY.dlv, state)
  redis.call('ZREM', K.deliveries, did)
  redis.call('HSET', dk, 'state', state, 'finishedAt', now)
  redis.call('HDEL', dk, 'nextAt')
  redis.call('HINCRBY', K.meta, 'webhook_' .. state, 1)
  redis.call('ZADD', index, now, did)
  if redis.call('ZCARD', index) > tonumber(A.max_index) then
    redis.call('ZREMRANGEBYRANK', index, 0, -(A.max_index + 1))
  end
  redis.call('EXPIRE', dk, A.failed_retention_s)
  redis.call('EXPIRE', ak, A.failed_retention_s)
  -- Dead-lettered: a delivery.dead event to each subscribed endpoint, in this slot (never
  -- about an event that is itself delivery.dead: no loops).
  if state == S.dead and d.eventType ~= 'delivery.dead' then
    local body = nil
    local run = nil
    for _, ep in ipairs(decode_endpoints(A.endpoints)) do
      if ep.events['delivery.dead'] then
        run = run or redis.call('HINCRBY', dk, 'deadRuns', 1)
        local eid = did .. '_dead_' .. ep.id .. (run > 1 and ('_' .. run) or '')
        body = body or ('{"type":"delivery.dead","timestamp":' .. json_str(iso(now)) ..
          ',"data":{"deliveryId":' .. cjson.encode(did) .. ',"jobId":' .. json_str(d.jobId) ..
          ',"endpointId":' .. json_str(d.endpoint) .. ',"eventType":' .. json_str(d.eventType) ..
          ',"attempts":' .. json_num(d.attempt) .. ',"lastStatus":' .. json_num(A.status) .. '}}')
        new_delivery(eid, '', d.botType or '', ep.url, body, A.webhook_attempts, now,
          {'eventType', 'delivery.dead', 'endpoint', ep.id})
        -- listed with the job's other events (GET /deliveries?jobId=), while the job lasts
        local job_ttl = d.jobId ~= '' and redis.call('PTTL', key(KEY.job, d.jobId)) or -2
        if job_ttl ~= -2 then
          local fk = key(KEY.fanout, d.jobId)
          redis.call('RPUSH', fk, eid)
          if job_ttl > 0 and redis.call('PTTL', fk) < 0 then redis.call('PEXPIRE', fk, job_ttl) end
        end
      end
    end
    if run then redis.call('PUBLISH', A.deliveries_channel, A.prefix) end
  end
end
local jk = key(KEY.job, d.jobId)
if redis.call('EXISTS', jk) == 1 and redis.call('HGET', jk, 'deliveryId') == did then
  redis.call('HSET', jk, 'webhookState', state, 'webhookAttempts', d.attempt,
    'webhookLastStatus', A.status)
  if state == S.delivered then redis.call('HSET', jk, 'webhookDeliveredAt', now) end
end
return R.done

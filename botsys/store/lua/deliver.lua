-- deliver.lua — create an ad-hoc delivery (POST /deliver): a payload for a URL, no job. It is
-- then claimed, sent, retried, dead-lettered and redelivered exactly as a job's webhook.
-- KEYS: deliveries
-- ARGV: prefix now id url body event_type idempotency_key fingerprint idempotency_ttl_s endpoint webhook_attempts deliveries_channel
-- now: ms ('' = Redis TIME); prefix: the ad-hoc deliveries' slot; event_type,
-- idempotency_key: '' = none; fingerprint: the request's; endpoint: the subscribed endpoint it
-- goes to ('' = none; an event such as endpoint.disabled).
-- Returns  {R.created, id} | {R.existing, id, same}: an earlier delivery with the same
--          idempotency key; same = 1 when it was the same request (fingerprint), else 0
local now = now_ms(A.now)
local did, ikey, fp = A.id, A.idempotency_key, A.fingerprint
if ikey ~= '' then
  local ik = key(KEY.idem, ikey)
  local existing = redis.call('HMGET', ik, 'id', 'fingerprint')
  if existing[1] then return {R.existing, existing[1], existing[2] == fp and 1 or 0} end
  redis.call('HSET', ik, 'id', did, 'fingerprint', fp)
  redis.call('EXPIRE', ik, tonumber(A.idempotency_ttl_s))
end
-- jobId and botType are present but empty: the scripts shared with job deliveries look the
-- (absent) job up by them and find nothing.
new_delivery(did, '', '', A.url, A.body, A.webhook_attempts, now, {'eventType', A.event_type})
if A.endpoint ~= '' then redis.call('HSET', key(KEY.delivery, did), 'endpoint', A.endpoint) end
redis.call('PUBLISH', A.deliveries_channel, A.prefix)
return {R.created, did}

-- deliver.lua — create an ad-hoc delivery (POST /deliver): a payload for a URL, no job. It is
-- then claimed, sent, retried, dead-lettered and redelivered exactly as a job's webhook.
-- KEYS[1]  the ad-hoc deliveries' prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] delivery id;  ARGV[4] url
-- ARGV[5]  body;  ARGV[6] event type ('' = none);  ARGV[7] idempotency key ('' = none)
-- ARGV[8]  request fingerprint;  ARGV[9] idempotency TTL s
-- ARGV[10] the subscribed endpoint it goes to ('' = none; an event such as endpoint.disabled)
-- Returns  {1, id} created | {0, id, same} an earlier delivery with the same idempotency
--          key; same = 1 when it was the same request (fingerprint), else 0
local now = now_ms(ARGV[2])
local did, ikey, fp = ARGV[3], ARGV[7], ARGV[8]
if ikey ~= '' then
  local ik = key(KEY.idem, ikey)
  local existing = redis.call('HMGET', ik, 'id', 'fingerprint')
  if existing[1] then return {0, existing[1], existing[2] == fp and 1 or 0} end
  redis.call('HSET', ik, 'id', did, 'fingerprint', fp)
  redis.call('EXPIRE', ik, tonumber(ARGV[9]))
end
-- jobId and botType are present but empty: the scripts shared with job deliveries look the
-- (absent) job up by them and find nothing.
redis.call('HSET', key(KEY.delivery, did), 'id', did, 'jobId', '', 'botType', '', 'url', ARGV[4],
  'body', ARGV[5], 'eventType', ARGV[6], 'attempt', 0, 'maxAttempts', CTX.webhook_attempts,
  'state', 'pending', 'createdAt', now, 'nextAt', now)
if (ARGV[10] or '') ~= '' then redis.call('HSET', key(KEY.delivery, did), 'endpoint', ARGV[10]) end
redis.call('ZADD', K.deliveries, now, did)
redis.call('PUBLISH', CTX.deliveries_channel, P)
return {1, did}

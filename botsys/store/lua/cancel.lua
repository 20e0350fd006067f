-- cancel.lua — cancel a job: a waiting one ends now; a running one is flagged and its owner
-- told (pub/sub) to kill the bot; if the owner is gone, the lease reaper ends it as cancelled.
-- KEYS: meta queue delayed jobs deliveries
-- ARGV: prefix now id cancel_channel replica events_prefix keep_finished retention_s failed_retention_s webhook_attempts endpoints deliveries_channel
-- now: ms ('' = Redis TIME)
-- Returns  {R.unknown} | {R.finished, state}: already finished | {R.cancelled, 'cancelled'}
--          | {R.flagged, 'running'}: its owner was told to stop it
writes_on_full_redis()  -- cancelling is how a full Redis is emptied: it must work there
local now = now_ms(A.now)
local id = A.id
local jk = key(KEY.job, id)
local job = hgetall(jk)
if not job.state then return {R.unknown} end
if job.state == S.running then
  redis.call('HSET', jk, 'cancelRequested', 1)
  redis.call('PUBLISH', A.cancel_channel, id)
  return {R.flagged, S.running}
end
if job.state ~= S.queued and job.state ~= S.delayed then return {R.finished, job.state} end
if redis.call('ZREM', K.queue, id) + redis.call('ZREM', K.delayed, id) > 0 then count_queued(id, -1) end
finish_job(id, job, S.cancelled, now, nil, S.cancelled, A)  -- error: 'cancelled'
return {R.cancelled, S.cancelled}

-- cancel.lua — cancel a job: a waiting one ends now; a running one is flagged and its owner
-- told (pub/sub) to kill the bot; if the owner is gone, the lease reaper ends it as cancelled.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] job id
-- Returns  {-1} unknown | {0, state} already finished | {1, 'cancelled'} | {2, 'running'}
writes_on_full_redis()  -- cancelling is how a full Redis is emptied: it must work there
local now = now_ms(ARGV[2])
local id = ARGV[3]
local jk = job_key(id)
local job = hgetall(jk)
if not job.state then return {-1} end
if job.state == 'running' then
  redis.call('HSET', jk, 'cancelRequested', 1)
  redis.call('PUBLISH', CTX.cancel_channel, id)
  return {2, 'running'}
end
if job.state ~= 'queued' and job.state ~= 'delayed' then return {0, job.state} end
if redis.call('ZREM', K.queue, id) + redis.call('ZREM', K.delayed, id) > 0 then count_queued(id, -1) end
local opts = {now = now, error = 'cancelled'}
for k, v in pairs(CTX) do opts[k] = v end
finish_job(id, job, 'cancelled', opts)
return {1, 'cancelled'}

-- retry.lua — run a finished (failed or timed_out) job again, keeping its id. A cancelled job
-- cannot be: its payload was freed when it was cancelled (finish_job in lib.lua).
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME);  ARGV[3] job id
-- Returns  {-1} unknown | {0, state} not retryable | {1, 'queued'}
local now = now_ms(ARGV[2])
local id = ARGV[3]
local jk = job_key(id)
local job = hgetall(jk)
if not job.state then return {-1} end
if job.state ~= 'failed' and job.state ~= 'timed_out' then
  return {0, job.state}
end
redis.call('ZREM', done_key(job.state), id)
redis.call('HSET', jk, 'state', 'queued', 'failures', 0, 'stalls', 0, 'progress', 0,
  'retriedAt', now)
redis.call('HDEL', jk, 'result', 'error', 'finishedAt', 'durationMs', 'cancelRequested',
  'token', 'leaseUntil')
redis.call('PERSIST', jk)
redis.call('PERSIST', log_key(id))
redis.call('ZADD', K.queue, queue_score(job), id)
count_queued(id, 1)
redis.call('PUBLISH', CTX.wake_channel, 'enqueue')
publish_state(CTX.events_prefix, id, 'queued', ',"reason":"retry"')
return {1, 'queued'}

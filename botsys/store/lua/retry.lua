-- retry.lua — run a finished (failed or timed_out) job again, keeping its id. A cancelled job
-- cannot be: its payload was freed when it was cancelled (finish_job in lib.lua).
-- KEYS: meta queue
-- ARGV: prefix now id wake_channel events_prefix
-- now: ms ('' = Redis TIME)
-- Returns  {R.unknown} | {R.not_retryable, state} | {R.queued, 'queued'}
local now = now_ms(A.now)
local id = A.id
local jk = key(KEY.job, id)
local job = hgetall(jk)
if not job.state then return {R.unknown} end
if job.state ~= S.failed and job.state ~= S.timed_out then
  return {R.not_retryable, job.state}
end
redis.call('ZREM', key(KEY.done, job.state), id)
redis.call('HSET', jk, 'state', S.queued, 'failures', 0, 'stalls', 0, 'progress', 0,
  'retriedAt', now)
redis.call('HDEL', jk, 'result', 'error', 'finishedAt', 'durationMs', 'cancelRequested',
  'token', 'leaseUntil')
redis.call('PERSIST', jk)
redis.call('PERSIST', key(KEY.log, id))
redis.call('ZADD', K.queue, queue_score(job), id)
count_queued(id, 1)
redis.call('PUBLISH', A.wake_channel, 'enqueue')
publish_state(A.events_prefix, id, S.queued, ',"reason":"retry"')
return {R.queued, S.queued}

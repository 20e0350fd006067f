-- claim.lua — the semaphore: admit up to `want` waiting jobs while running < limit.
-- In one atomic step: promote due delayed jobs, reap expired leases (requeue, or fail after
-- max_stalls, or finish a cancel whose owner died), then pop the best waiting jobs and give
-- each a lease (score = expiry, Redis time) and a fencing token.
-- KEYS: meta queue delayed active jobs deliveries waiters waiters_seen starts
-- ARGV: prefix now want replica lease_ms max_stalls events_prefix cadence_max cadence_ms keep_finished retention_s failed_retention_s webhook_attempts endpoints deliveries_channel
-- now: ms ('' = Redis TIME); want: how many this replica can take now.
-- Returns  {R.claimed, wait_ms, job1, job2, ...}: wait_ms = ms until the next delayed job is
--          due, a lease expires or the cadence lets the next waiting job start (-1: none);
--          jobN = the claimed job's HGETALL (includes token and attempt)
--          | {R.record_missing}: the type's record is missing (Redis lost it): nothing was
--          done; the caller re-creates it from configuration (seed_limit.lua) and claims again
if redis.call('HEXISTS', K.meta, 'limit') == 0 then return {R.record_missing} end
writes_on_full_redis()
local now = now_ms(A.now)
local want = tonumber(A.want)
local max_stalls = tonumber(A.max_stalls)

local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, 200)
for _, id in ipairs(due) do
  redis.call('ZREM', K.delayed, id)
  local job = hgetall(key(KEY.job, id))
  if job.state == S.delayed then
    redis.call('HSET', key(KEY.job, id), 'state', S.queued)
    redis.call('ZADD', K.queue, queue_score(job), id)
    publish_state(A.events_prefix, id, S.queued)
  end
end

local expired = redis.call('ZRANGEBYSCORE', K.active, '-inf', now - 1, 'LIMIT', 0, 200)
for _, id in ipairs(expired) do
  redis.call('ZREM', K.active, id)
  local jk = key(KEY.job, id)
  local job = hgetall(jk)
  if job.state == S.running then
    local stalls = redis.call('HINCRBY', jk, 'stalls', 1)
    if job.cancelRequested == '1' then
      finish_job(id, job, S.cancelled, now, nil, S.cancelled, A)  -- error: 'cancelled'
    elseif stalls > max_stalls then
      local err = 'stalled: its lease expired ' .. stalls .. ' times (replica died or stalled)'
      finish_job(id, job, S.failed, now, nil, err, A)
    else
      redis.call('HSET', jk, 'state', S.queued)
      redis.call('HDEL', jk, 'token', 'owner', 'leaseUntil')
      redis.call('ZADD', K.queue, queue_score(job), id)
      count_queued(id, 1)
      publish_state(A.events_prefix, id, S.queued, ',"reason":"stalled"')
    end
  end
end

local out = {R.claimed, -1}
local meta = hgetall(K.meta)
local free = (tonumber(meta.limit) or 0) - redis.call('ZCARD', K.active)
local held = (tonumber(meta.heldUntil) or 0) - now  -- > 0: no leases yet (seed_limit.lua)
local room = cadence_room(now, A)
if meta.paused ~= '1' and held <= 0 and free > 0 and want > 0 and room > 0 then
  local n = math.min(free, want, room)
  while n > 0 do
    local id = pop_waiting()
    if not id then break end
    table.insert(out, admit(id, now, A))
    n = n - 1
  end
end

-- Wanting more while the semaphore is full and jobs wait: queue for a freed slot (complete.lua
-- hands each to the longest waiter). A replica already in line keeps its place (NX); its
-- re-claims only prove it is alive. Otherwise it leaves the line.
if want > #out - 2 and meta.paused ~= '1' and redis.call('ZCARD', K.queue) > 0
    and redis.call('ZCARD', K.active) >= (tonumber(meta.limit) or 0) then
  redis.call('ZADD', K.waiters, 'NX', now, A.replica)
  redis.call('HSET', K.waiters_seen, A.replica, now)
else
  redis.call('ZREM', K.waiters, A.replica)
  redis.call('HDEL', K.waiters_seen, A.replica)
end

local next_due = redis.call('ZRANGE', K.delayed, 0, 0, 'WITHSCORES')
local next_lease = redis.call('ZRANGE', K.active, 0, 0, 'WITHSCORES')
local wake = -1
if #next_due > 0 then wake = tonumber(next_due[2]) - now end
if #next_lease > 0 then
  local w = tonumber(next_lease[2]) - now
  if wake < 0 or w < wake then wake = w end
end
if held > 0 and (wake < 0 or held < wake) then wake = held end
if room - (#out - 2) <= 0 and redis.call('ZCARD', K.queue) > 0 then  -- the cadence holds them
  local _, w = cadence_room(now, A)
  if w > 0 and (wake < 0 or w < wake) then wake = w end
end
if wake >= 0 and wake < 1 then wake = 1 end
out[2] = wake
return out

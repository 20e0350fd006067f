-- claim.lua — the semaphore: admit up to ARGV[3] waiting jobs while running < limit.
-- In one atomic step: promote due delayed jobs, reap expired leases (requeue, or fail after
-- max_stalls, or finish a cancel whose owner died), then pop the best waiting jobs and give
-- each a lease (score = expiry, Redis time) and a fencing token.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON (lease_ms, max_stalls, replica, ...);  ARGV[2] now ('' = TIME)
-- ARGV[3]  how many this replica can take now
-- Returns  {wait_ms, job1, job2, ...}: wait_ms = ms until the next delayed job is due, a lease
--          expires or the cadence lets the next waiting job start (-1: none); jobN = the claimed job's HGETALL (includes token and attempt)
--          | {-2}: the type's record is missing (Redis lost it): nothing was done; the caller
--          re-creates it from configuration (seed_limit.lua) and claims again
if redis.call('HEXISTS', K.meta, 'limit') == 0 then return {-2} end
writes_on_full_redis()
local now = now_ms(ARGV[2])
local want = tonumber(ARGV[3])

local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, 200)
for _, id in ipairs(due) do
  redis.call('ZREM', K.delayed, id)
  local job = hgetall(job_key(id))
  if job.state == 'delayed' then
    redis.call('HSET', job_key(id), 'state', 'queued')
    redis.call('ZADD', K.queue, queue_score(job), id)
    publish_state(CTX.events_prefix, id, 'queued')
  end
end

local expired = redis.call('ZRANGEBYSCORE', K.active, '-inf', now - 1, 'LIMIT', 0, 200)
for _, id in ipairs(expired) do
  redis.call('ZREM', K.active, id)
  local job = hgetall(job_key(id))
  if job.state == 'running' then
    local stalls = redis.call('HINCRBY', job_key(id), 'stalls', 1)
    local opts = {now = now}
    for k, v in pairs(CTX) do opts[k] = v end
    if job.cancelRequested == '1' then
      opts.error = 'cancelled'
      finish_job(id, job, 'cancelled', opts)
    elseif stalls > CTX.max_stalls then
      opts.error = 'stalled: its lease expired ' .. stalls .. ' times (replica died or stalled)'
      finish_job(id, job, 'failed', opts)
    else
      redis.call('HSET', job_key(id), 'state', 'queued')
      redis.call('HDEL', job_key(id), 'token', 'owner', 'leaseUntil')
      redis.call('ZADD', K.queue, queue_score(job), id)
      count_queued(id, 1)
      publish_state(CTX.events_prefix, id, 'queued', ',"reason":"stalled"')
    end
  end
end

local out = {-1}
local meta = hgetall(K.meta)
local free = (tonumber(meta.limit) or 0) - redis.call('ZCARD', K.active)
local held = (tonumber(meta.heldUntil) or 0) - now  -- > 0: no leases yet (seed_limit.lua)
local room = cadence_room(now)
if meta.paused ~= '1' and held <= 0 and free > 0 and want > 0 and room > 0 then
  local n = math.min(free, want, room)
  while n > 0 do
    local id = pop_waiting()
    if not id then break end
    table.insert(out, admit(id, now))
    n = n - 1
  end
end

-- Wanting more while the semaphore is full and jobs wait: queue for a freed slot (complete.lua
-- hands each to the longest waiter). A replica already in line keeps its place (NX); its
-- re-claims only prove it is alive. Otherwise it leaves the line.
if want > #out - 1 and meta.paused ~= '1' and redis.call('ZCARD', K.queue) > 0
    and redis.call('ZCARD', K.active) >= (tonumber(meta.limit) or 0) then
  redis.call('ZADD', K.waiters, 'NX', now, CTX.replica)
  redis.call('HSET', K.waiters_seen, CTX.replica, now)
else
  redis.call('ZREM', K.waiters, CTX.replica)
  redis.call('HDEL', K.waiters_seen, CTX.replica)
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
if room - (#out - 1) <= 0 and redis.call('ZCARD', K.queue) > 0 then  -- the cadence holds them
  local _, w = cadence_room(now)
  if w > 0 and (wake < 0 or w < wake) then wake = w end
end
if wake >= 0 and wake < 1 then wake = 1 end
out[1] = wake
return out

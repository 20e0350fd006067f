-- lib.lua — helpers shared by the scripts. scripts.py prepends this file to every script;
-- it is never run alone. Every script receives its bot type's key prefix ("botsys:{python}:")
-- as KEYS[1]; all keys it touches are derived from that prefix, so they share one hash slot.
-- The suffixes here mirror botsys/store/keys.py.

local P = KEYS[1]
local K = {
  queue = P .. 'queue', delayed = P .. 'delayed', active = P .. 'active', meta = P .. 'meta',
  jobs = P .. 'jobs', deliveries = P .. 'deliveries', waiters = P .. 'waiters',
  waiters_seen = P .. 'waiters_seen', starts = P .. 'starts', admits = P .. 'admits',
}
local function job_key(id) return P .. 'job:' .. id end
local function log_key(id) return P .. 'log:' .. id end
local function done_key(state) return P .. 'done:' .. state end
local function delivery_key(id) return P .. 'delivery:' .. id end
local function attempts_key(id) return P .. 'attempts:' .. id end
local function dlv_index_key(state) return P .. 'dlv:' .. state end

local TWO32 = 4294967296

-- ARGV[1] of every script is the context: a JSON object Python encodes once per bot type with
-- replica, retention_s, failed_retention_s, max_index, keep_finished, max_queued,
-- max_queued_bytes, webhook_attempts, lease_ms, max_stalls,
-- waiter_ttl_ms, events_prefix, deliveries_channel, wake_channel, cancel_channel,
-- cadence_max, cadence_ms, cadence_reject.
local CTX = cjson.decode(ARGV[1])

-- Redis server time in ms unless the caller passes an explicit now (tests control time).
local function now_ms(arg)
  if arg and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  local map = {}
  for i = 1, #flat, 2 do map[flat[i]] = flat[i + 1] end
  return map
end

-- Epoch ms → ISO-8601 UTC ("2026-11-28T12:00:00.000Z"); days-from-civil inverse (H. Hinnant).
local function iso(ms)
  ms = tonumber(ms)
  if not ms then return nil end
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end

local function json_str(s)
  if s == nil or s == false or s == '' then return 'null' end
  return cjson.encode(s)
end

local function json_num(n)
  if n == nil or n == '' then return 'null' end
  return string.format('%d', tonumber(n))
end

local function queue_score(job)
  return tonumber(job.priority) * TWO32 + tonumber(job.seq)
end

-- A state change that clients following the job (SSE) should see.
local function publish_state(events_prefix, id, state, extra)
  if events_prefix == nil or events_prefix == '' then return end
  redis.call('PUBLISH', events_prefix .. id,
    '{"type":"state","state":' .. cjson.encode(state) .. (extra or '') .. '}')
end

-- Payload bytes of the type's waiting and delayed jobs, for enqueue.lua's admission check:
-- every move of a job into (sign 1) or out of (sign -1) the queue or delayed sets counts.
local function count_queued(id, sign)
  local size = redis.call('HSTRLEN', job_key(id), 'payload')
  if size > 0 then redis.call('HINCRBY', K.meta, 'queuedBytes', sign * size) end
end

-- The best waiting job that still exists, taken off the queue (nil: none waits).
local function pop_waiting()
  while true do
    local popped = redis.call('ZPOPMIN', K.queue)
    if #popped == 0 then return nil end
    if redis.call('EXISTS', job_key(popped[1])) == 1 then return popped[1] end
  end
end

-- A new fencing token (field 'token' for leases, 'dtoken' for deliveries): never below Redis
-- time in µs, so it stays above every token issued before even when the counter was lost
-- (Redis restarted empty, a failover that lost the latest writes) — a replica still running
-- an attempt of the lost state can never match the job's new token.
local function next_token(field, now)
  local token = redis.call('HINCRBY', K.meta, field, 1)
  local floor = now * 1000
  if token < floor then
    token = redis.call('HINCRBY', K.meta, field, string.format('%d', floor - token))
  end
  return string.format('%d', token)
end

-- Redis over maxmemory (noeviction) refuses a script's first write that may grow memory, but
-- never a later one (atomicity). Scripts that must work on a full Redis — renewing leases,
-- claiming, cancelling: how work goes on and a full Redis empties — start with this deletion
-- of nothing.
local function writes_on_full_redis() redis.call('HDEL', K.meta, '') end

-- The waiting-job sequence, continued above every job still queued: a lost counter restarts
-- there, so FIFO within a priority survives (seed_limit.lua, enqueue.lua).
local function restore_seq()
  local top = 0
  local rows = redis.call('ZRANGE', K.queue, 0, -1, 'WITHSCORES')
  for i = 2, #rows, 2 do
    local seq = tonumber(rows[i]) % TWO32
    if seq > top then top = seq end
  end
  redis.call('HSET', K.meta, 'seq', string.format('%d', top))
end

-- The type's cadence: at most CTX.cadence_max starts in any CTX.cadence_ms (a sliding window
-- over a log of start times, Redis time: exact across replicas, no burst at a window's edge).
-- Returns how many may start now, and when none may: ms until one may (else -1).
local function cadence_room(now)
  local most = tonumber(CTX.cadence_max) or 0
  if most <= 0 then return math.huge, -1 end
  redis.call('ZREMRANGEBYSCORE', K.starts, '-inf', now - CTX.cadence_ms)
  local n = redis.call('ZCARD', K.starts)
  if n < most then return most - n, -1 end
  -- The start whose leaving the window frees a place (more than max after a lowered max).
  local oldest = redis.call('ZRANGE', K.starts, n - most, n - most, 'WITHSCORES')
  return 0, math.max(1, tonumber(oldest[2]) + CTX.cadence_ms - now)
end

-- A cadence in "reject" mode, checked at the door (enqueue.lua): at most CTX.cadence_max jobs
-- accepted in any CTX.cadence_ms. Records the acceptance and returns 0, or returns the ms until
-- one more would be accepted (nothing recorded).
local function cadence_admit(now)
  redis.call('ZREMRANGEBYSCORE', K.admits, '-inf', now - CTX.cadence_ms)
  local n = redis.call('ZCARD', K.admits)
  if n >= CTX.cadence_max then
    local oldest = redis.call('ZRANGE', K.admits, n - CTX.cadence_max, n - CTX.cadence_max, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + CTX.cadence_ms - now)
  end
  redis.call('ZADD', K.admits, now, now .. ':' .. redis.call('HINCRBY', K.meta, 'admitSeq', 1))
  redis.call('PEXPIRE', K.admits, CTX.cadence_ms)
  return 0
end

-- Lease a job taken off the queue to this replica: fencing token, semaphore entry, running.
-- Returns the job's HGETALL (the claim). claim.lua, and the direct claims of enqueue.lua and
-- complete.lua, share it.
local function admit(id, now)
  local jk = job_key(id)
  count_queued(id, -1)
  local token = next_token('token', now)
  local lease_until = now + CTX.lease_ms
  redis.call('ZADD', K.active, lease_until, id)
  if (tonumber(CTX.cadence_max) or 0) > 0 then
    redis.call('ZADD', K.starts, now, token)
    redis.call('PEXPIRE', K.starts, CTX.cadence_ms)  -- gone once no start is in the window
  end
  redis.call('HINCRBY', jk, 'attempt', 1)
  redis.call('HSET', jk, 'state', 'running', 'token', token, 'owner', CTX.replica,
    'startedAt', now, 'leaseUntil', lease_until, 'progress', 0)
  publish_state(CTX.events_prefix, id, 'running', ',"replica":' .. cjson.encode(CTX.replica))
  return redis.call('HGETALL', jk)
end

-- The webhook body, built once at the terminal transition and sent byte-for-byte each attempt.
-- The result is the bot's raw JSON, spliced in as is (no re-encoding, no precision loss).
local function webhook_body(id, job, state, result_raw, err, now, replica)
  local result = (result_raw ~= nil and result_raw ~= '') and result_raw or 'null'
  return '{"jobId":' .. cjson.encode(id) ..
    ',"botType":' .. json_str(job.botType) ..
    ',"bot":' .. json_str(job.bot) ..
    ',"state":' .. cjson.encode(state) ..
    ',"success":' .. (state == 'succeeded' and 'true' or 'false') ..
    ',"result":' .. result ..
    ',"error":' .. json_str(err) ..
    ',"attempt":' .. json_num(job.attempt) ..
    ',"startedAt":' .. json_str(iso(job.startedAt)) ..
    ',"finishedAt":' .. json_str(iso(now)) ..
    ',"durationMs":' .. json_num(job.startedAt and (now - tonumber(job.startedAt)) or nil) ..
    ',"timestamp":' .. json_str(iso(now)) ..
    ',"executionNode":' .. json_str(replica) ..
    ',"group":' .. ((job.group and job.group ~= '') and job.group or 'null') .. '}'
end

-- Schedule the webhook delivery of a finished job (same script as the state change: atomic).
local function schedule_delivery(id, job, state, result_raw, err, now, replica, max_attempts)
  local runs = redis.call('HINCRBY', job_key(id), 'deliveryRuns', 1)
  local did = 'msg_' .. id
  if runs > 1 then did = did .. '_' .. runs end
  redis.call('HSET', delivery_key(did), 'id', did, 'jobId', id, 'botType', job.botType,
    'url', job.webhookUrl, 'body', webhook_body(id, job, state, result_raw, err, now, replica),
    'attempt', 0, 'maxAttempts', max_attempts, 'state', 'pending', 'createdAt', now, 'nextAt', now)
  redis.call('ZADD', K.deliveries, now, did)
  redis.call('HSET', job_key(id), 'deliveryId', did, 'webhookState', 'pending', 'webhookAttempts', 0)
  return did
end

-- Fan a finished job's event out to every subscribed endpoint (CTX.endpoints: this bot type's,
-- kept current by the replica, see endpoints.py): one delivery per (event, endpoint), its id
-- derived from the job, the endpoint and the job's run, so it is created once whoever runs it.
local function fan_out(id, job, state, result_raw, err, now, replica, max_attempts)
  local event = 'job.' .. state
  local body = nil
  local run = nil
  for _, ep in ipairs(CTX.endpoints or {}) do
    if ep.events[event] then
      run = run or redis.call('HINCRBY', job_key(id), 'fanoutRuns', 1)
      local did = 'msg_' .. id .. '_' .. ep.id .. (run > 1 and ('_' .. run) or '')
      local dk = delivery_key(did)
      if redis.call('EXISTS', dk) == 0 then
        body = body or webhook_body(id, job, state, result_raw, err, now, replica)
        redis.call('HSET', dk, 'id', did, 'jobId', id, 'botType', job.botType, 'url', ep.url,
          'body', body, 'eventType', event, 'endpoint', ep.id, 'attempt', 0,
          'maxAttempts', max_attempts, 'state', 'pending', 'createdAt', now, 'nextAt', now)
        redis.call('ZADD', K.deliveries, now, did)
        redis.call('RPUSH', P .. 'fanout:' .. id, did)
      end
    end
  end
  return run ~= nil
end

-- Delete a finished job with its log, deliveries and index entries; not if one of its
-- deliveries is still pending (returns false: its retention period will end it).
local function forget_job(id)
  local runs = tonumber(redis.call('HGET', job_key(id), 'deliveryRuns') or 0)
  local dids = {}
  for n = 1, runs do
    local did = 'msg_' .. id
    if n > 1 then did = did .. '_' .. n end
    if redis.call('HGET', delivery_key(did), 'state') == 'pending' then return false end
    table.insert(dids, did)
  end
  for _, did in ipairs(dids) do
    redis.call('DEL', delivery_key(did), attempts_key(did))
    redis.call('ZREM', dlv_index_key('delivered'), did)
    redis.call('ZREM', dlv_index_key('dead'), did)
  end
  redis.call('DEL', job_key(id), log_key(id))
  redis.call('ZREM', K.jobs, id)
  return true
end

-- Retention by count: a state's index keeps the newest `keep` jobs; older ones leave it and
-- are deleted. At most 100 per call, so lowering keep_finished never stalls Redis: each
-- later finish trims 100 more.
local function keep_newest(index, keep)
  local excess = math.min(redis.call('ZCARD', index) - keep, 100)
  if excess <= 0 then return end
  for _, old in ipairs(redis.call('ZRANGE', index, 0, excess - 1)) do forget_job(old) end
  redis.call('ZREMRANGEBYRANK', index, 0, excess - 1)
end

-- Record a terminal state: fields, counters, listing index, retention TTLs, webhook delivery.
-- opts: the context (see below) plus result, error, now. A cancelled job keeps no payload or
-- result: cancelling frees its memory at once, not after the retention period.
local function finish_job(id, job, state, opts)
  local jk = job_key(id)
  local now = opts.now
  if state == 'cancelled' then
    redis.call('HDEL', jk, 'payload', 'result')
    opts.result = nil
  end
  local fields = {'state', state, 'finishedAt', now, 'progress', state == 'succeeded' and 100 or (job.progress or 0)}
  if opts.result ~= nil and opts.result ~= '' then table.insert(fields, 'result'); table.insert(fields, opts.result) end
  if opts.error ~= nil and opts.error ~= '' then table.insert(fields, 'error'); table.insert(fields, opts.error) end
  if job.startedAt then
    table.insert(fields, 'durationMs'); table.insert(fields, now - tonumber(job.startedAt))
  end
  redis.call('HSET', jk, unpack(fields))
  redis.call('HDEL', jk, 'token', 'leaseUntil')
  redis.call('HINCRBY', K.meta, state, 1)
  local index = done_key(state)
  redis.call('ZADD', index, now, id)
  keep_newest(index, opts.keep_finished)
  local ttl = (state == 'succeeded' or state == 'cancelled') and opts.retention_s or opts.failed_retention_s
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now - ttl * 1000)
  redis.call('EXPIRE', jk, ttl)
  redis.call('EXPIRE', log_key(id), ttl)
  local did = nil
  local fanned = fan_out(id, job, state, opts.result, opts.error, now, opts.replica, opts.webhook_attempts)
  if job.webhookUrl and job.webhookUrl ~= '' then
    did = schedule_delivery(id, job, state, opts.result, opts.error, now, opts.replica, opts.webhook_attempts)
  end
  if (did or fanned) and opts.deliveries_channel and opts.deliveries_channel ~= '' then
    redis.call('PUBLISH', opts.deliveries_channel, P)
  end
  if fanned then redis.call('EXPIRE', P .. 'fanout:' .. id, ttl) end
  publish_state(opts.events_prefix, id, state)
  return did
end

-- lib.lua — helpers shared by the scripts, never run alone: store/scripts.py loads each script
-- as its generated prologue (K its declared keys, A its declared arguments, R its reply codes,
-- S the states, KEY the data-dependent key suffixes), this file, then the script.
-- Helpers that need settings take them from the caller as `cfg` (the script's A, which then
-- declares the names the helper lists).

local TWO32 = 4294967296

-- A key that depends on data (a job's hash, a delivery's attempts): the type's prefix (ARGV
-- prefix, under the type's hash tag: same slot as K) + a KEY suffix + the id.
local function key(kind, id) return A.prefix .. kind .. id end

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
  local size = redis.call('HSTRLEN', key(KEY.job, id), 'payload')
  if size > 0 then redis.call('HINCRBY', K.meta, 'queuedBytes', sign * size) end
end

-- The best waiting job that still exists, taken off the queue (nil: none waits).
local function pop_waiting()
  while true do
    local popped = redis.call('ZPOPMIN', K.queue)
    if #popped == 0 then return nil end
    if redis.call('EXISTS', key(KEY.job, popped[1])) == 1 then return popped[1] end
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

-- The type's cadence: at most cfg.cadence_max starts in any cfg.cadence_ms (a sliding window
-- over a log of start times, Redis time: exact across replicas, no burst at a window's edge).
-- Returns how many may start now, and when none may: ms until one may (else -1).
local function cadence_room(now, cfg)
  local most = tonumber(cfg.cadence_max) or 0
  if most <= 0 then return math.huge, -1 end
  local ms = tonumber(cfg.cadence_ms)
  redis.call('ZREMRANGEBYSCORE', K.starts, '-inf', now - ms)
  local n = redis.call('ZCARD', K.starts)
  if n < most then return most - n, -1 end
  -- The start whose leaving the window frees a place (more than max after a lowered max).
  local oldest = redis.call('ZRANGE', K.starts, n - most, n - most, 'WITHSCORES')
  return 0, math.max(1, tonumber(oldest[2]) + ms - now)
end

-- A cadence in "reject" mode, checked at the door (enqueue.lua): at most cfg.cadence_max jobs
-- accepted in any cfg.cadence_ms. Records the acceptance and returns 0, or returns the ms until
-- one more would be accepted (nothing recorded).
local function cadence_admit(now, cfg)
  local most, ms = tonumber(cfg.cadence_max), tonumber(cfg.cadence_ms)
  redis.call('ZREMRANGEBYSCORE', K.admits, '-inf', now - ms)
  local n = redis.call('ZCARD', K.admits)
  if n >= most then
    local oldest = redis.call('ZRANGE', K.admits, n - most, n - most, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + ms - now)
  end
  redis.call('ZADD', K.admits, now, now .. ':' .. redis.call('HINCRBY', K.meta, 'admitSeq', 1))
  redis.call('PEXPIRE', K.admits, ms)
  return 0
end

-- Lease a job taken off the queue to this replica: fencing token, semaphore entry, running.
-- Returns the job's HGETALL (the claim). claim.lua, and the direct claims of enqueue.lua and
-- complete.lua, share it. cfg: lease_ms, replica, events_prefix, cadence_max, cadence_ms.
local function admit(id, now, cfg)
  local jk = key(KEY.job, id)
  count_queued(id, -1)
  local token = next_token('token', now)
  local lease_until = now + tonumber(cfg.lease_ms)
  redis.call('ZADD', K.active, lease_until, id)
  if (tonumber(cfg.cadence_max) or 0) > 0 then
    redis.call('ZADD', K.starts, now, token)
    redis.call('PEXPIRE', K.starts, cfg.cadence_ms)  -- gone once no start is in the window
  end
  redis.call('HINCRBY', jk, 'attempt', 1)
  redis.call('HSET', jk, 'state', S.running, 'token', token, 'owner', cfg.replica,
    'startedAt', now, 'leaseUntil', lease_until, 'progress', 0)
  publish_state(cfg.events_prefix, id, S.running, ',"replica":' .. cjson.encode(cfg.replica))
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
    ',"success":' .. (state == S.succeeded and 'true' or 'false') ..
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

-- A new pending delivery (a job's webhook, a fan-out or dead-letter event, an ad-hoc one),
-- due now. extra: more field/value pairs (eventType, endpoint).
local function new_delivery(did, job_id, bot_type, url, body, max_attempts, now, extra)
  redis.call('HSET', key(KEY.delivery, did), 'id', did, 'jobId', job_id, 'botType', bot_type,
    'url', url, 'body', body, 'attempt', 0, 'maxAttempts', max_attempts, 'state', S.pending,
    'createdAt', now, 'nextAt', now, unpack(extra or {}))
  redis.call('ZADD', K.deliveries, now, did)
end

-- Schedule the webhook delivery of a finished job (same script as the state change: atomic).
local function schedule_delivery(id, job, state, result_raw, err, now, replica, max_attempts)
  local runs = redis.call('HINCRBY', key(KEY.job, id), 'deliveryRuns', 1)
  local did = 'msg_' .. id
  if runs > 1 then did = did .. '_' .. runs end
  new_delivery(did, id, job.botType, job.webhookUrl,
    webhook_body(id, job, state, result_raw, err, now, replica), max_attempts, now)
  redis.call('HSET', key(KEY.job, id), 'deliveryId', did, 'webhookState', S.pending,
    'webhookAttempts', 0)
  return did
end

-- The subscribed endpoints (a JSON list, kept current by the replica: endpoints.py).
local function decode_endpoints(json) return (json and json ~= '') and cjson.decode(json) or {} end

-- Fan a finished job's event out to every subscribed endpoint (cfg.endpoints: this bot type's,
-- JSON): one delivery per (event, endpoint), its id derived from the job, the endpoint and the
-- job's run, so it is created once whoever runs it. cfg: endpoints, replica, webhook_attempts.
local function fan_out(id, job, state, result_raw, err, now, cfg)
  if cfg.endpoints == '[]' then return false end
  local event = 'job.' .. state
  local body = nil
  local run = nil
  for _, ep in ipairs(decode_endpoints(cfg.endpoints)) do
    if ep.events[event] then
      run = run or redis.call('HINCRBY', key(KEY.job, id), 'fanoutRuns', 1)
      local did = 'msg_' .. id .. '_' .. ep.id .. (run > 1 and ('_' .. run) or '')
      if redis.call('EXISTS', key(KEY.delivery, did)) == 0 then
        body = body or webhook_body(id, job, state, result_raw, err, now, cfg.replica)
        new_delivery(did, id, job.botType, ep.url, body, cfg.webhook_attempts, now,
          {'eventType', event, 'endpoint', ep.id})
        redis.call('RPUSH', key(KEY.fanout, id), did)
      end
    end
  end
  return run ~= nil
end

-- Delete a finished job with its log, deliveries and index entries; not if one of its
-- deliveries is still pending (returns false: its retention period will end it).
local function forget_job(id)
  local runs = tonumber(redis.call('HGET', key(KEY.job, id), 'deliveryRuns') or 0)
  local dids = {}
  for n = 1, runs do
    local did = 'msg_' .. id
    if n > 1 then did = did .. '_' .. n end
    if redis.call('HGET', key(KEY.delivery, did), 'state') == S.pending then return false end
    table.insert(dids, did)
  end
  for _, did in ipairs(dids) do
    redis.call('DEL', key(KEY.delivery, did), key(KEY.attempts, did))
    redis.call('ZREM', key(KEY.dlv, S.delivered), did)
    redis.call('ZREM', key(KEY.dlv, S.dead), did)
  end
  redis.call('DEL', key(KEY.job, id), key(KEY.log, id))
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
-- A cancelled job keeps no payload or result: cancelling frees its memory at once, not after
-- the retention period. cfg: keep_finished, retention_s, failed_retention_s, replica,
-- webhook_attempts, endpoints, deliveries_channel, events_prefix. Returns the delivery id.
local function finish_job(id, job, state, now, result, err, cfg)
  local jk = key(KEY.job, id)
  if state == S.cancelled then
    redis.call('HDEL', jk, 'payload', 'result')
    result = nil
  end
  local fields = {'state', state, 'finishedAt', now, 'progress', state == S.succeeded and 100 or (job.progress or 0)}
  if result ~= nil and result ~= '' then table.insert(fields, 'result'); table.insert(fields, result) end
  if err ~= nil and err ~= '' then table.insert(fields, 'error'); table.insert(fields, err) end
  if job.startedAt then
    table.insert(fields, 'durationMs'); table.insert(fields, now - tonumber(job.startedAt))
  end
  redis.call('HSET', jk, unpack(fields))
  redis.call('HDEL', jk, 'token', 'leaseUntil')
  redis.call('HINCRBY', K.meta, state, 1)
  local index = key(KEY.done, state)
  redis.call('ZADD', index, now, id)
  keep_newest(index, cfg.keep_finished)
  local ttl = (state == S.succeeded or state == S.cancelled) and cfg.retention_s or cfg.failed_retention_s
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now - ttl * 1000)
  redis.call('EXPIRE', jk, ttl)
  redis.call('EXPIRE', key(KEY.log, id), ttl)
  local did = nil
  local fanned = fan_out(id, job, state, result, err, now, cfg)
  if job.webhookUrl and job.webhookUrl ~= '' then
    did = schedule_delivery(id, job, state, result, err, now, cfg.replica, cfg.webhook_attempts)
  end
  if did or fanned then redis.call('PUBLISH', cfg.deliveries_channel, A.prefix) end
  if fanned then redis.call('EXPIRE', key(KEY.fanout, id), ttl) end
  publish_state(cfg.events_prefix, id, state)
  return did
end

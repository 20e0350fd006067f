-- ratelimit.lua — fixed-window request counter shared by every replica (Redis time).
-- KEYS: client
-- ARGV: limit window_ms now
-- client: the client's rate-limit key; each window counts in client .. ':' .. its start ms,
-- in the same slot (hash tag {rl}). now: ms ('' = Redis TIME).
-- Returns  {allowed 1|0, remaining, ms until the window resets}
local limit, window = tonumber(A.limit), tonumber(A.window_ms)
local now
if A.now ~= '' then now = tonumber(A.now) else
  local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local start = now - (now % window)
local key = K.client .. ':' .. start
local count = redis.call('INCR', key)
if count == 1 then redis.call('PEXPIRE', key, window + 1000) end
local reset = start + window - now
if count > limit then return {0, 0, reset} end
return {1, limit - count, reset}

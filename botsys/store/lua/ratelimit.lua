-- ratelimit.lua — fixed-window request counter shared by every replica (Redis time).
-- KEYS[1]  the client's rate-limit key prefix (its own slot; no type prefix)
-- ARGV[1]  limit;  ARGV[2] window ms;  ARGV[3] now ('' = TIME)
-- Returns  {allowed 1|0, remaining, ms until the window resets}
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then now = tonumber(ARGV[3]) else
  local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local start = now - (now % window)
local key = KEYS[1] .. ':' .. start
local count = redis.call('INCR', key)
if count == 1 then redis.call('PEXPIRE', key, window + 1000) end
local reset = start + window - now
if count > limit then return {0, 0, reset} end
return {1, limit - count, reset}

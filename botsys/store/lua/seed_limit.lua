-- seed_limit.lua — set a type's limit from configuration at start-up. A limit changed live
-- (PATCH /queues) survives restarts until the configured value itself changes.
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] unused (now);  ARGV[3] configured limit
-- Returns  the limit in force
if redis.call('HGET', K.meta, 'configLimit') ~= ARGV[3] then
  redis.call('HSET', K.meta, 'limit', ARGV[3], 'configLimit', ARGV[3])
end
return tonumber(redis.call('HGET', K.meta, 'limit'))

-- type_write.lua — write a bot type's runtime definition (compare-and-set on its version) and
-- put its concurrency limit in force, in one step (control/type_store.py).
-- KEYS[1]  type prefix
-- ARGV[1]  context JSON;  ARGV[2] now ('' = TIME)
-- ARGV[3]  the version the caller read ('' = any; 0 = no definition stored)
-- ARGV[4]  the new record (JSON text with its "version"), '' = remove the stored one
-- ARGV[5]  the limit to put in force ('' = leave the record {T}:meta as it is)
-- ARGV[6]  '1': the type is deleted (enqueue.lua then refuses its jobs) | '0': it exists
-- Returns  {1} written | {0, the stored version} it changed since the caller read it
local key = P .. 'type'
local stored = redis.call('GET', key)
local current = 0
if stored then current = tonumber(cjson.decode(stored).version) or 0 end
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= current then return {0, current} end
if ARGV[4] == '' then redis.call('DEL', key) else redis.call('SET', key, ARGV[4]) end
if ARGV[6] == '1' then
  redis.call('HSET', K.meta, 'deleted', 1)
else
  redis.call('HDEL', K.meta, 'deleted')
end
if ARGV[5] ~= '' then
  redis.call('HSET', K.meta, 'limit', ARGV[5], 'configLimit', ARGV[5])
  redis.call('PUBLISH', CTX.wake_channel, 'limit')
end
return {1}

-- type_write.lua — write a bot type's runtime definition (compare-and-set on its version) and
-- put its concurrency limit in force, in one step (control/type_store.py).
-- KEYS: type_def meta
-- ARGV: expect record limit deleted wake_channel
-- expect: the version the caller read ('' = any; 0 = no definition stored); record: the new
-- one (JSON text with its "version"), '' = remove the stored one; limit: the limit to put in
-- force ('' = leave the record {T}:meta as it is); deleted: '1' the type is deleted
-- (enqueue.lua then refuses its jobs) | '0' it exists.
-- Returns  {R.written} | {R.conflict, the stored version}: it changed since the caller read it
local tk = K.type_def
local stored = redis.call('GET', tk)
local current = 0
if stored then current = tonumber(cjson.decode(stored).version) or 0 end
if A.expect ~= '' and tonumber(A.expect) ~= current then return {R.conflict, current} end
if A.record == '' then redis.call('DEL', tk) else redis.call('SET', tk, A.record) end
if A.deleted == '1' then
  redis.call('HSET', K.meta, 'deleted', 1)
else
  redis.call('HDEL', K.meta, 'deleted')
end
if A.limit ~= '' then
  redis.call('HSET', K.meta, 'limit', A.limit, 'configLimit', A.limit)
  redis.call('PUBLISH', A.wake_channel, 'limit')
end
return {R.written}

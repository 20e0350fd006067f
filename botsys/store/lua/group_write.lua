-- group_write.lua — create, replace or delete a bot group, guarded by its version (If-Match).
-- KEYS[1]  groups HASH (id → JSON);  KEYS[2] versions HASH (id → version, "" → latest of all)
-- KEYS[3]  the group's selection counter (deleted with the group)
-- ARGV[1]  'create' | 'put' | 'delete';  ARGV[2] group id;  ARGV[3] the group's JSON ('' to delete)
-- ARGV[4]  expected version ('' = any)
-- Returns  {1, version, created 0|1} done (delete: the version deleted) | {-1, 0} no such group
--          | {-2, version} create: it exists already | {-3, version} If-Match failed: the current
local op, id, body, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local current = tonumber(redis.call('HGET', KEYS[2], id) or '')
if op == 'create' then
  if current then return {-2, current} end
elseif not current then
  if op == 'delete' or expected ~= '' then return {-1, 0} end
end
if expected ~= '' and current and tonumber(expected) ~= current then return {-3, current} end
if op == 'delete' then
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('DEL', KEYS[3])
  redis.call('HINCRBY', KEYS[2], '', 1)
  return {1, current, 0}
end
local version = redis.call('HINCRBY', KEYS[2], '', 1)
redis.call('HSET', KEYS[1], id, body)
redis.call('HSET', KEYS[2], id, version)
return {1, version, current and 0 or 1}

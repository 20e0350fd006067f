-- group_write.lua — create, replace or delete a bot group, guarded by its version (If-Match).
-- KEYS: groups versions seq
-- ARGV: op id body expected
-- groups: HASH id → JSON; versions: HASH id → version, "" → latest of all; seq: the group's
-- selection counter (deleted with the group). op: 'create' | 'put' | 'delete'; body: the
-- group's JSON ('' to delete); expected: the expected version ('' = any).
-- Returns  {R.done, version, created 0|1} (delete: the version deleted) | {R.missing, 0}
--          | {R.exists, version}: create, it exists already
--          | {R.version_mismatch, version}: If-Match failed, the current one
local op, id, body, expected = A.op, A.id, A.body, A.expected
local current = tonumber(redis.call('HGET', K.versions, id) or '')
if op == 'create' then
  if current then return {R.exists, current} end
elseif not current then
  if op == 'delete' or expected ~= '' then return {R.missing, 0} end
end
if expected ~= '' and current and tonumber(expected) ~= current then return {R.version_mismatch, current} end
if op == 'delete' then
  redis.call('HDEL', K.groups, id)
  redis.call('HDEL', K.versions, id)
  redis.call('DEL', K.seq)
  redis.call('HINCRBY', K.versions, '', 1)
  return {R.done, current, 0}
end
local version = redis.call('HINCRBY', K.versions, '', 1)
redis.call('HSET', K.groups, id, body)
redis.call('HSET', K.versions, id, version)
return {R.done, version, current and 0 or 1}

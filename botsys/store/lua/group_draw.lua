-- group_draw.lua — what POST /invoke needs to route a keyed request through a bot group, in one
-- round trip: the group's definition and its next selection number, or, for a repeat of a
-- request with the same Idempotency-Key, the member the first one went to and no new number
-- (repeats must not advance the counter that round robin and the weighted sequences divide).
-- KEYS: groups seq idem
-- ARGV: id
-- idem: the key's record (GroupStore.remembered writes it once a member is chosen).
-- Returns  {R.drawn, body, seq} | {R.remembered, body, member} | {R.missing}
local body = redis.call('HGET', K.groups, A.id)
if not body then
  redis.call('DEL', K.seq)  -- not left behind by a typo
  return {R.missing}
end
local member = redis.call('GET', K.idem)
if member then return {R.remembered, body, member} end
return {R.drawn, body, redis.call('INCR', K.seq)}

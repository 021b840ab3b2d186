#!lua name=eb_timers_v1
--[[
eb_timers_v1 -- durable timers for expiry-bridge (docs/ledger.md).

A timer is a Redis key with a TTL; its deadline is also recorded in a
*ledger*, a sorted set (member: the timer key, score: the deadline in ms
since the epoch, as PEXPIRETIME reports it). The ledger is the source of
truth for what is owed: expiry-bridge removes an entry only after Kafka
confirmed the timer's event, and a periodic sweep delivers entries whose
expiry notification was lost.

Install with `expiry-bridge functions load -c FILE` or
`redis-cli -x FUNCTION LOAD REPLACE < eb_timers.lua`; the bridge also loads
it on every connect (functions vanish on a restart without persistence).

Versioning: the library is `eb_timers_v1` and every function is `eb1_*`. A
change that breaks a caller ships as eb_timers_v2 with `eb2_*` functions,
loadable beside v1 (function names are global in Redis), so applications
move over one at a time.

Keys. Every function takes the ledger as a key. Each ledger has a companion
sorted set `<ledger>:claims` (member: timer key, score: until when a bridge
holds it, ms), derived here from the ledger's name. On Redis Cluster all
keys of one call must live in one slot: give the ledger a hash tag and put
the same tag in the timer and payload keys, e.g.

    ledger   expiry-bridge:ledger:{order-timeout}
    timer    order:{order-timeout}:7
    payload  order:{order-timeout}:7:payload

(`<ledger>:claims` carries the ledger's tag because it starts with the
ledger's name.) The bridge names a route's ledger
`<ledger.key_prefix>{<route name>}`; with ledger.buckets = N > 1 also
bucket b's `<ledger.key_prefix>{<route name>:<b>}` (b = 0..N-1, the timer
key tagged `{<route name>:<b>}` alike), so that a route's ledgers spread
over a cluster's masters; observed routes on Cluster use one ledger per
slot, `<ledger.key_prefix>{<t>}:<route name>` with t hashing to the slot of
the keys it records. Nothing here depends on which: every call names one
ledger and keys of its slot.

Replication and AOF: Redis 7 replicates the effects of functions, never the
call, so reading TIME and writing what follows from it is safe; expiries are
propagated as absolute times.

Timer API (applications):
  FCALL eb1_arm    2|3 key ledger [payload_key]  ttl_ms [value] [payload]
  FCALL eb1_disarm 2|3 key ledger [payload_key]
  FCALL eb1_rearm  2   key ledger                ttl_ms
Bridge API (expiry-bridge itself; see each function):
  eb1_claim, eb1_collect, eb1_ack, eb1_due, eb1_renew, eb1_observe, eb1_drop
]]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function claims_of(ledger)
  return ledger .. ':claims'
end

-- A strictly positive integer argument, or an error naming it.
local function positive(fn, name, v)
  local n = tonumber(v)
  if n == nil or n <= 0 or n ~= math.floor(n) then
    return nil, redis.error_reply('ERR ' .. fn .. ': ' .. name .. ' must be a positive integer')
  end
  return n
end

local function need_keys(fn, keys, min, max)
  if #keys < min or #keys > max then
    local want = min == max and tostring(min) or (min .. ' or ' .. max)
    return redis.error_reply('ERR ' .. fn .. ': expected ' .. want .. ' keys, got ' .. #keys)
  end
  return nil
end

-- The companion payload, for embedding: {kind, value...}. kind is
-- 'missing', 'string' (one value), 'hash' (field, value, ...) or the
-- Redis type name of anything else (no value: the bridge embeds null).
local function read_payload(key)
  if key == nil then
    return {'none'}
  end
  local t = redis.call('TYPE', key)['ok']
  if t == 'string' then
    return {'string', redis.call('GET', key)}
  elseif t == 'hash' then
    local r = {'hash'}
    for _, v in ipairs(redis.call('HGETALL', key)) do
      r[#r + 1] = v
    end
    return r
  elseif t == 'none' then
    return {'missing'}
  end
  return {t}
end

local function with_payload(head, payload)
  for _, v in ipairs(payload) do
    head[#head + 1] = v
  end
  return head
end

-- Hold a timer for the caller for ttl ms (a claim), so that no other bridge
-- (or the sweep of this one) produces it meanwhile.
local function take(ledger, member, ttl, now)
  redis.call('ZADD', claims_of(ledger), now + ttl, member)
end

---------------------------------------------------------------- timer API

-- eb1_arm: set the timer key with its TTL (and value, default "1"), record
-- its deadline in the ledger, and optionally write the companion payload,
-- in one atomic step. Replaces an earlier timer of the same key (delivered
-- or not). Returns the deadline (ms since the epoch).
local function arm(keys, args)
  local err = need_keys('eb1_arm', keys, 2, 3)
  if err then return err end
  local ttl, e = positive('eb1_arm', 'ttl_ms', args[1])
  if not ttl then return e end
  local key, ledger, pkey = keys[1], keys[2], keys[3]
  redis.call('SET', key, args[2] or '1', 'PX', ttl)
  local deadline = redis.call('PEXPIRETIME', key)
  if pkey and args[3] then
    redis.call('SET', pkey, args[3])
  end
  redis.call('ZADD', ledger, deadline, key)
  -- A new timer is unclaimed: forget a claim or a delivery record of an
  -- earlier timer of this key.
  redis.call('ZREM', claims_of(ledger), key)
  return deadline
end

-- eb1_disarm: the order was paid. Delete the timer key, its ledger entry and
-- (when given) its payload. Returns 1 when the timer was cancelled before
-- it fired, 0 when its key had already expired (an event may still be
-- delivered if a bridge claimed it: consumers act only on pending orders).
local function disarm(keys, args)
  local err = need_keys('eb1_disarm', keys, 2, 3)
  if err then return err end
  local key, ledger, pkey = keys[1], keys[2], keys[3]
  local existed = redis.call('DEL', key)
  redis.call('ZREM', ledger, key)
  redis.call('ZREM', claims_of(ledger), key)
  if pkey then
    redis.call('DEL', pkey)
  end
  return existed
end

-- eb1_rearm: give a live timer a new TTL; the ledger follows. Returns the
-- new deadline, or 0 when the key does not exist (it already fired, or was
-- never armed): arm again instead.
local function rearm(keys, args)
  local err = need_keys('eb1_rearm', keys, 2, 2)
  if err then return err end
  local ttl, e = positive('eb1_rearm', 'ttl_ms', args[1])
  if not ttl then return e end
  local key, ledger = keys[1], keys[2]
  if redis.call('PEXPIRE', key, ttl) == 0 then
    return 0
  end
  local deadline = redis.call('PEXPIRETIME', key)
  redis.call('ZADD', ledger, deadline, key)
  redis.call('ZREM', claims_of(ledger), key)
  return deadline
end

--------------------------------------------------------------- bridge API

-- Status codes shared by eb1_claim and eb1_collect (src/ledger.c).
local OWED, BUSY, DONE, UNKNOWN, CHANGED, PERSISTED, MOVED, TOUCHED = 1, 2, 3, 0, 4, 5, 6, 7

-- eb1_claim KEYS: ledger [payload...]  ARGV: claim_ttl_ms (member slot)...
-- Live `expired` notifications (a batch: one call per burst), one result
-- per member, whose payload is KEYS[slot] (slot 0: none):
--   {OWED, deadline, kind, payload...}  claimed for claim_ttl_ms: produce it
--   {BUSY, deadline}      another claim holds it (another bridge, or a sweep)
--   {DONE}                delivered recently (a claim turned delivery record)
--   {CHANGED, deadline}   the entry is for a later timer of this key: the
--                         notification was for an earlier one, already replaced
--   {UNKNOWN, -1, kind, payload...}  no entry: not armed through the ledger
local function claim_one(ledger, claims, member, pkey, ttl, now)
  local score = redis.call('ZSCORE', ledger, member)
  local held = redis.call('ZSCORE', claims, member)
  held = held and tonumber(held) > now
  if not score then
    if held then return {DONE} end
    return with_payload({UNKNOWN, -1}, read_payload(pkey))
  end
  local deadline = tonumber(score)
  if held then return {BUSY, deadline} end
  if deadline > now then return {CHANGED, deadline} end
  take(ledger, member, ttl, now)
  return with_payload({OWED, deadline}, read_payload(pkey))
end

local function claim(keys, args)
  if #keys < 1 then
    return redis.error_reply('ERR eb1_claim: expected the ledger (and payload keys)')
  end
  local ttl, e = positive('eb1_claim', 'claim_ttl_ms', args[1])
  if not ttl then return e end
  if #args < 3 or (#args - 1) % 2 ~= 0 then
    return redis.error_reply('ERR eb1_claim: expected claim_ttl_ms and (member, slot) pairs')
  end
  local ledger = keys[1]
  local claims = claims_of(ledger)
  local now = now_ms()
  local out = {}
  for i = 2, #args, 2 do
    local slot = tonumber(args[i + 1])
    if slot == nil or slot ~= math.floor(slot) or slot == 1 or slot < 0 or slot > #keys then
      return redis.error_reply('ERR eb1_claim: slot must be 0 or the index of a payload key')
    end
    out[#out + 1] = claim_one(ledger, claims, args[i], slot > 0 and keys[slot] or nil, ttl, now)
  end
  return out
end

-- eb1_collect KEYS: ledger key [payload]  ARGV: deadline claim_ttl_ms [touch]
-- The sweep, for an overdue entry (key, deadline) it read. Touches the key
-- (an overdue key is expired by the access, and Redis announces it), then:
--   {OWED, deadline, kind, payload...}  the key is gone: claimed, produce it
--   {TOUCHED}           the same, with ARGV[3] = "touch": not claimed. The
--                       sweep's first pass over an entry only touches it, so
--                       that a key Redis had not expired yet is delivered
--                       live by its notification; a notification that never
--                       comes leaves the entry to the next pass.
--   {BUSY, deadline}    someone holds it
--   {CHANGED}           the entry is gone or has another deadline now
--   {PERSISTED}         the key lost its TTL (SET without EX, PERSIST): the
--                       timer no longer exists; the entry was removed
--   {MOVED, deadline}   the key lives on with a later TTL set outside this
--                       library; the entry now has that deadline
local function collect(keys, args)
  local err = need_keys('eb1_collect', keys, 2, 3)
  if err then return err end
  local expected, e1 = positive('eb1_collect', 'deadline', args[1])
  if not expected then return e1 end
  local ttl, e2 = positive('eb1_collect', 'claim_ttl_ms', args[2])
  if not ttl then return e2 end
  local ledger, key, pkey = keys[1], keys[2], keys[3]
  local touch_only = args[3] == 'touch'
  local now = now_ms()
  local score = redis.call('ZSCORE', ledger, key)
  if not score or tonumber(score) ~= expected then return {CHANGED} end
  local held = redis.call('ZSCORE', claims_of(ledger), key)
  if held and tonumber(held) > now then return {BUSY, expected} end
  local t = redis.call('PEXPIRETIME', key)
  if t == -1 then
    redis.call('ZREM', ledger, key)
    return {PERSISTED}
  elseif t >= 0 then
    redis.call('ZADD', ledger, t, key)
    return {MOVED, t}
  end
  if touch_only then return {TOUCHED} end
  take(ledger, key, ttl, now)
  return with_payload({OWED, expected}, read_payload(pkey))
end

-- eb1_ack KEYS: ledger [payload...]  ARGV: remember_ms (member deadline slot)...
-- Kafka confirmed the events of these timers (a batch: one call per burst
-- of delivery reports). Per (member, deadline): removes the entry only if it
-- still has that deadline (a rearm in between keeps the new timer and its
-- payload), deletes its payload KEYS[slot] (slot 0: none), and turns the
-- claim into a delivery record for remember_ms, so a late notification, or
-- another bridge, sees DONE instead of producing it again. Returns one
-- result per timer: 1 removed, 0 the entry was already gone, 2 it holds
-- another deadline.
local function ack(keys, args)
  if #keys < 1 then
    return redis.error_reply('ERR eb1_ack: expected the ledger (and payload keys)')
  end
  local remember, e = positive('eb1_ack', 'remember_ms', args[1])
  if not remember then return e end
  if #args < 4 or (#args - 1) % 3 ~= 0 then
    return redis.error_reply('ERR eb1_ack: expected remember_ms and (member, deadline, slot) triples')
  end
  local ledger = keys[1]
  local claims = claims_of(ledger)
  local until_ms = now_ms() + remember
  local out = {}
  for i = 2, #args, 3 do
    local member, slot = args[i], tonumber(args[i + 2])
    local deadline, e2 = positive('eb1_ack', 'deadline', args[i + 1])
    if not deadline then return e2 end
    if slot == nil or slot ~= math.floor(slot) or slot == 1 or slot < 0 or slot > #keys then
      return redis.error_reply('ERR eb1_ack: slot must be 0 or the index of a payload key')
    end
    local score = redis.call('ZSCORE', ledger, member)
    if not score then
      out[#out + 1] = 0
    elseif tonumber(score) ~= deadline then
      out[#out + 1] = 2
    else
      redis.call('ZREM', ledger, member)
      redis.call('ZADD', claims, until_ms, member)
      if slot > 0 then
        redis.call('DEL', keys[slot])
      end
      out[#out + 1] = 1
    end
  end
  return out
end

-- eb1_due KEYS: ledger  ARGV: offset limit grace_ms
-- One step of the sweep. Forgets expired claims and delivery records, then
-- reads the entries whose deadline is at least grace_ms past, oldest first,
-- from offset, and returns the unclaimed ones among them (claimed ones are
-- on their way to Kafka: skipped here, so a long Kafka outage does not make
-- every sweep carry them back). At most 8 * limit entries are examined.
-- Returns {now, pending, overdue, next_offset, more, member1, deadline1, ...}:
-- more is 1 when entries beyond next_offset may be overdue too.
local function due(keys, args)
  local err = need_keys('eb1_due', keys, 1, 1)
  if err then return err end
  local offset = tonumber(args[1])
  local limit, e = positive('eb1_due', 'limit', args[2])
  if not limit then return e end
  local grace = tonumber(args[3]) or 0
  if offset == nil or offset < 0 or grace < 0 then
    return redis.error_reply('ERR eb1_due: offset and grace_ms must not be negative')
  end
  local ledger = keys[1]
  local claims = claims_of(ledger)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
  local window = limit * 8
  local page = redis.call('ZRANGE', ledger, '-inf', now - grace, 'BYSCORE', 'LIMIT', offset,
                          window, 'WITHSCORES')
  local out, found, examined = {}, 0, 0
  for i = 1, #page, 2 do
    examined = examined + 1
    if not redis.call('ZSCORE', claims, page[i]) then
      out[#out + 1] = page[i]
      out[#out + 1] = tonumber(page[i + 1])
      found = found + 1
      if found == limit then break end
    end
  end
  local more = (examined < #page / 2 or #page / 2 == window) and 1 or 0
  local r = {now, redis.call('ZCARD', ledger), redis.call('ZCOUNT', ledger, '-inf', now),
             offset + examined, more}
  for _, v in ipairs(out) do
    r[#r + 1] = v
  end
  return r
end

-- eb1_renew KEYS: ledger  ARGV: claim_ttl_ms member...
-- Extend the claims of timers whose events are still on their way to Kafka
-- (an outage longer than a claim must not let another bridge take them).
-- Only existing claims of existing entries are extended. Returns how many.
local function renew(keys, args)
  local err = need_keys('eb1_renew', keys, 1, 1)
  if err then return err end
  local ttl, e = positive('eb1_renew', 'claim_ttl_ms', args[1])
  if not ttl then return e end
  local ledger = keys[1]
  local claims = claims_of(ledger)
  local until_ms = now_ms() + ttl
  local n = 0
  for i = 2, #args do
    if redis.call('ZSCORE', ledger, args[i]) then
      n = n + redis.call('ZADD', claims, 'XX', 'GT', 'CH', until_ms, args[i])
    end
  end
  return n
end

-- eb1_observe KEYS: ledger key...
-- Observed mode: record the deadline of each key from its TTL, as the
-- application set it. Per key: the deadline recorded, -1 when the key has
-- no TTL (any entry is removed: the timer was cancelled), -2 when the key
-- does not exist (nothing recorded).
local function observe(keys, args)
  if #keys < 1 then
    return redis.error_reply('ERR eb1_observe: expected the ledger and keys')
  end
  local ledger = keys[1]
  local r = {}
  for i = 2, #keys do
    local key = keys[i]
    local t = redis.call('PEXPIRETIME', key)
    if t >= 0 then
      local old = redis.call('ZSCORE', ledger, key)
      if not old or tonumber(old) ~= t then
        redis.call('ZADD', ledger, t, key)
        redis.call('ZREM', claims_of(ledger), key)
      end
    elseif t == -1 then
      redis.call('ZREM', ledger, key)
    end
    r[#r + 1] = t
  end
  return r
end

-- eb1_drop KEYS: ledger  ARGV: member...
-- Observed mode: the application deleted these timer keys (a `del` or
-- `persist` notification): they are cancelled. Returns how many entries
-- went. An entry whose deadline has passed (this master's clock) stays:
-- Redis expires a key only after its deadline, and a replica announces
-- that expiry as the `del` its master propagated -- a master demoted by a
-- failover keeps the bridge's subscription for a moment and announces the
-- new master's expiries so. The live `expired` notification or the sweep
-- delivers such a timer. (An application's own DEL of a live key comes
-- before its deadline; only one that raced the deadline is delivered.)
local function drop(keys, args)
  local err = need_keys('eb1_drop', keys, 1, 1)
  if err then return err end
  local now = now_ms()
  local n = 0
  for i = 1, #args do
    local score = redis.call('ZSCORE', keys[1], args[i])
    if score and tonumber(score) >= now then
      n = n + redis.call('ZREM', keys[1], args[i])
      redis.call('ZREM', claims_of(keys[1]), args[i])
    end
  end
  return n
end

redis.register_function('eb1_arm', arm)
redis.register_function('eb1_disarm', disarm)
redis.register_function('eb1_rearm', rearm)
redis.register_function('eb1_claim', claim)
redis.register_function('eb1_collect', collect)
redis.register_function('eb1_ack', ack)
redis.register_function('eb1_due', due)
redis.register_function('eb1_renew', renew)
redis.register_function('eb1_observe', observe)
redis.register_function('eb1_drop', drop)

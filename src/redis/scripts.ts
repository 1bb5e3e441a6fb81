import type { Cluster, Redis } from 'ioredis';
import { clientOpScripts } from './client-op-scripts.js';

/**
 * The Lua scripts of the Redis backend. Every script that writes session state starts with the epoch check, so a
 * command queued before a Redis restart can never write into the new, empty database (it fails with `EPOCH`).
 * Scripts are idempotent under ioredis's resend-after-reconnect: sends and broadcasts carry a message id stored in
 * a dedupe key with the result; `create` and `claim` compare the generation they are about to write.
 *
 * Key layout (prefix `P`: the control prefix, `keyPrefix` in a hash tag, default `{wss:}`, so that on Redis Cluster
 * every key here is in one slot; each script declares `P epoch` as its one key for routing):
 * - `P epoch`          random id of this Redis's history; set once with SET NX
 * - `P s:<id>`         session hash: q last server seq, c last client seq, e evicted-through, b buffered bytes,
 *                      o owner node, g generation (random per create/claim), d detached-at ms ('' when attached),
 *                      i incarnation (random per create, kept by claims), u principal ('-' none, '+<principal>'),
 *                      a creator's data as JSON ('' when none or not serializable)
 * - `P s:<id>:t`       session topic hash: topic → "<joined-at offset> <topic epoch>" (topics: topic-scripts.ts)
 * - `P q:<id>`         session inbox stream (direct sends), entry id `0-<seq>`, fields p (payload), b, a
 * - `P d:<msg>`        dedupe key of a send, holding its result
 * - `P sess`           zset: live session ids, score = expiry ms (+inf while attached)
 * - `P t:<id>`         tombstone of an expired ('1') or evicted ('evicted') session
 * - `P nonce:<n>`      used token nonces (SET NX PX)
 * - `P nodes`          zset: node id → last heartbeat ms
 * - `P n:<node>:s`     set: sessions owned by a node;  `P n:<node>:c`: client ids connected to a node
 * - channel `P n:<node>`  messages for one node (sequenced direct sends, plain sends, `claimed` notices, client
 *                      operations and their answers: client-ops.ts)
 */
const PROLOGUE = `
local P = ARGV[1]
if redis.call('GET', P .. 'epoch') ~= ARGV[2] then return redis.error_reply('EPOCH history epoch changed') end
local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
local function field(list, name)
  for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end
  return nil
end
local function seqOf(id) return tonumber(string.sub(id, 3)) end
local function liveness(id)
  local sc = redis.call('ZSCORE', P .. 'sess', id)
  if not sc then return false, false end
  if sc == 'inf' then return true, true end
  return tonumber(sc) > NOW, false
end
local function drop(id, tomb, tombTtl)
  local o = redis.call('HGET', P .. 's:' .. id, 'o')
  if o then redis.call('SREM', P .. 'n:' .. o .. ':s', id) end
  redis.call('DEL', P .. 's:' .. id, P .. 'q:' .. id, P .. 's:' .. id .. ':t')
  redis.call('ZREM', P .. 'sess', id)
  if tomb then redis.call('SET', P .. 't:' .. id, tomb, 'PX', tombTtl) end
end
local function append(id, f, v, bytes, maxN, maxB, maxAge)
  local sk, qk = P .. 's:' .. id, P .. 'q:' .. id
  local seq = redis.call('HINCRBY', sk, 'q', 1)
  redis.call('XADD', qk, '0-' .. seq, f, v, 'b', bytes, 'a', NOW)
  local total = redis.call('HINCRBY', sk, 'b', bytes)
  local n = redis.call('XLEN', qk)
  -- The age bound is checked every 16th append (and on every read); count and bytes on every append.
  if n <= maxN and total <= maxB and seq % 16 ~= 0 then return seq end
  local ev = 0
  while n > 0 do
    local head = redis.call('XRANGE', qk, '-', '+', 'COUNT', 1)[1]
    local a = tonumber(field(head[2], 'a'))
    if n <= maxN and total <= maxB and a >= NOW - maxAge then break end
    redis.call('XDEL', qk, head[1])
    total = redis.call('HINCRBY', sk, 'b', -tonumber(field(head[2], 'b')))
    n = n - 1
    ev = seqOf(head[1])
  end
  if ev > 0 then redis.call('HSET', sk, 'e', ev) end
  return seq
end
local function entries(qk, from, maxAge, out, ev)
  for _, e in ipairs(redis.call('XRANGE', qk, from, '+')) do
    local f, s = e[2], seqOf(e[1])
    local enc = field(f, 'p')
    local a = tonumber(field(f, 'a'))
    if (not enc) or a < NOW - maxAge then
      if s > ev then ev = s end
    else
      out[#out + 1] = s; out[#out + 1] = a; out[#out + 1] = enc
    end
  end
  return ev
end
`;

/** ARGV: P epoch msgId target enc bytes volatile maxN maxB maxAge dedupeTtlMs nodeTimeoutMs → outcome */
const SEND = `${PROLOGUE}
local msgId, target, enc, bytes, vol = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1'
local dk = P .. 'd:' .. msgId
local prev = redis.call('GET', dk)
if prev then return prev end
local function done(r) redis.call('SET', dk, r, 'PX', ARGV[11]); return r end
local sk = P .. 's:' .. target
local live, attached = liveness(target)
local h = redis.call('HMGET', sk, 'o', 'g')
if live and h[1] then
  if vol then
    if not attached then return done('dropped') end
    redis.call('PUBLISH', P .. 'n:' .. h[1], cjson.encode({k = 'd', i = msgId, p = enc, v = 1, t = target}))
    return done('sent')
  end
  local seq = append(target, 'p', enc, bytes, tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
  redis.call('PUBLISH', P .. 'n:' .. h[1], cjson.encode({k = 'd', i = msgId, p = enc, s = {target, h[2], seq}}))
  if attached then return done('sent') end
  return done('buffered')
end
for _, n in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', NOW - tonumber(ARGV[12]), '+inf')) do
  if redis.call('SISMEMBER', P .. 'n:' .. n .. ':c', target) == 1 then
    redis.call('PUBLISH', P .. 'n:' .. n, cjson.encode({k = 'd', i = msgId, p = enc, v = vol and 1 or 0, t = target}))
    return done('sent')
  end
end
return done('unknown')
`;

/**
 * ARGV: P epoch id g self incarnation principal data → 1. A new session under `id` replaces any older one (its
 * owner hears `claimed`).
 */
const CREATE = `${PROLOGUE}
local id, g, self = ARGV[3], ARGV[4], ARGV[5]
local sk = P .. 's:' .. id
local old = redis.call('HMGET', sk, 'o', 'g')
if old[2] == g then return 1 end
if old[1] then
  redis.call('SREM', P .. 'n:' .. old[1] .. ':s', id)
  if old[1] ~= self then redis.call('PUBLISH', P .. 'n:' .. old[1], cjson.encode({k = 'c', id = id, g = old[2]})) end
end
redis.call('DEL', sk, P .. 'q:' .. id, P .. 't:' .. id, sk .. ':t')
redis.call('HSET', sk, 'q', 0, 'c', 0, 'e', 0, 'b', 0, 'o', self, 'g', g, 'd', '', 'i', ARGV[6], 'u', ARGV[7], 'a', ARGV[8])
redis.call('ZADD', P .. 'sess', '+inf', id)
redis.call('SADD', P .. 'n:' .. self .. ':s', id)
return 1
`;

/**
 * ARGV: P epoch id self newG ttlMs maxAge tombTtl incarnation → {'unknown'} | {'expired'} | {'evicted'} |
 * {'ok', lastSeq, lastClientSeq, evictedThrough, detachedAt, now, principal, data, topicsJson, seq1, at1, enc1, ...}.
 * Another incarnation under `id` (a newer session under a fixed client id) is `unknown` and left untouched.
 */
const CLAIM = `${PROLOGUE}
local id, self, newG = ARGV[3], ARGV[4], ARGV[5]
local sk, qk = P .. 's:' .. id, P .. 'q:' .. id
if redis.call('EXISTS', sk) == 0 then
  redis.call('ZREM', P .. 'sess', id)
  local tomb = redis.call('GET', P .. 't:' .. id)
  if tomb == 'evicted' then return {'evicted'} end
  if tomb then return {'expired'} end
  return {'unknown'}
end
if redis.call('HGET', sk, 'i') ~= ARGV[9] then return {'unknown'} end
local live, attached = liveness(id)
if not live then drop(id, '1', ARGV[8]); return {'expired'} end
local h = redis.call('HMGET', sk, 'q', 'c', 'e', 'o', 'g', 'd', 'u', 'a')
local d = h[6]
if h[5] ~= newG then
  if h[4] and h[4] ~= self then
    redis.call('SREM', P .. 'n:' .. h[4] .. ':s', id)
    redis.call('PUBLISH', P .. 'n:' .. h[4], cjson.encode({k = 'c', id = id, g = h[5]}))
  end
  if attached then
    d = tostring(NOW)
    redis.call('ZADD', P .. 'sess', NOW + tonumber(ARGV[6]), id)
  end
  redis.call('HSET', sk, 'o', self, 'g', newG, 'd', d)
  redis.call('SADD', P .. 'n:' .. self .. ':s', id)
end
local topics = redis.call('HGETALL', sk .. ':t')
local out = {'ok', h[1], h[2], '', d, NOW, h[7] or '-', h[8] or '', #topics == 0 and '[]' or cjson.encode(topics)}
out[4] = entries(qk, '-', tonumber(ARGV[7]), out, tonumber(h[3]))
return out
`;

/** ARGV: P epoch id g after maxAge → {'gone'} | {'ok', lastSeq, evictedThrough, now, seq1, at1, enc1, ...} */
const FETCH = `${PROLOGUE}
local id, g, after = ARGV[3], ARGV[4], ARGV[5]
local sk = P .. 's:' .. id
local h = redis.call('HMGET', sk, 'g', 'q', 'e')
if h[1] ~= g then return {'gone'} end
local out = {'ok', h[2], '', NOW}
out[3] = entries(P .. 'q:' .. id, '(0-' .. after, tonumber(ARGV[6]), out, tonumber(h[3]))
return out
`;

/** ARGV: P epoch id g self → 1 | 0 (the session is no longer this generation). */
const ATTACH = `${PROLOGUE}
local id = ARGV[3]
local sk = P .. 's:' .. id
if redis.call('HGET', sk, 'g') ~= ARGV[4] then return 0 end
redis.call('ZADD', P .. 'sess', '+inf', id)
redis.call('HSET', sk, 'd', '')
redis.call('SADD', P .. 'n:' .. ARGV[5] .. ':s', id)
return 1
`;

/** ARGV: P epoch id g self ttlMs → 1 | 0. Starts the session's TTL in Redis; any node may resume it meanwhile. */
const DETACH = `${PROLOGUE}
local id = ARGV[3]
local sk = P .. 's:' .. id
if redis.call('HGET', sk, 'g') ~= ARGV[4] then return 0 end
redis.call('ZADD', P .. 'sess', NOW + tonumber(ARGV[6]), id)
redis.call('HSET', sk, 'd', NOW)
redis.call('SADD', P .. 'n:' .. ARGV[5] .. ':s', id)
return 1
`;

/** ARGV: P epoch id g tombstone('1' expired | 'evicted' | '0' none) tombTtl → 1 | 0 */
const DELETE = `${PROLOGUE}
local id = ARGV[3]
if redis.call('HGET', P .. 's:' .. id, 'g') ~= ARGV[4] then return 0 end
drop(id, ARGV[5] ~= '0' and ARGV[5], ARGV[6])
return 1
`;

/**
 * ARGV: P epoch id g name value('' to remove) → 1 | 0. A session's membership of one topic, with the offset and
 * topic epoch it joined at (`"<offset> <epoch>"`), stored in the session's topic hash `P s:<id>:t`: O(1).
 */
const SESSION_TOPIC = `${PROLOGUE}
local sk = P .. 's:' .. ARGV[3]
if redis.call('HGET', sk, 'g') ~= ARGV[4] then return 0 end
if ARGV[6] == '' then redis.call('HDEL', sk .. ':t', ARGV[5]) else redis.call('HSET', sk .. ':t', ARGV[5], ARGV[6]) end
return 1
`;

/** ARGV: P epoch id g seq → 1 | 0. Raises the stored client sequence (never lowers it). */
const CLIENT_SEQ = `${PROLOGUE}
local sk = P .. 's:' .. ARGV[3]
local h = redis.call('HMGET', sk, 'g', 'c')
if h[1] ~= ARGV[4] then return 0 end
if tonumber(h[2]) < tonumber(ARGV[5]) then redis.call('HSET', sk, 'c', ARGV[5]) end
return 1
`;

/** ARGV: P epoch id g seq → number of entries trimmed. */
const ACK = `${PROLOGUE}
local id, seq = ARGV[3], tonumber(ARGV[5])
local sk, qk = P .. 's:' .. id, P .. 'q:' .. id
if redis.call('HGET', sk, 'g') ~= ARGV[4] then return 0 end
local gone = redis.call('XRANGE', qk, '-', '0-' .. seq)
if #gone == 0 then return 0 end
local bytes = 0
for _, e in ipairs(gone) do bytes = bytes + tonumber(field(e[2], 'b')) end
redis.call('XTRIM', qk, 'MINID', '0-' .. (seq + 1))
redis.call('HINCRBY', sk, 'b', -bytes)
return #gone
`;

/**
 * ARGV: P epoch self nodeTimeoutMs ttlMs tombTtl → 1 if this node was registered before, 0 if it had been reaped.
 * Also reaps dead nodes (their attached sessions start their TTL) and expired sessions (tombstoned).
 */
const BEAT = `${PROLOGUE}
local self, timeout, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local was = redis.call('ZSCORE', P .. 'nodes', self)
redis.call('ZADD', P .. 'nodes', NOW, self)
for _, n in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', '(' .. (NOW - timeout), 'LIMIT', 0, 16)) do
  local ns = P .. 'n:' .. n .. ':s'
  for _, id in ipairs(redis.call('SMEMBERS', ns)) do
    local sk = P .. 's:' .. id
    if redis.call('HGET', sk, 'o') == n and redis.call('ZSCORE', P .. 'sess', id) == 'inf' then
      redis.call('ZADD', P .. 'sess', NOW + ttl, id)
      redis.call('HSET', sk, 'd', NOW)
    end
  end
  redis.call('DEL', ns, P .. 'n:' .. n .. ':c')
  redis.call('ZREM', P .. 'nodes', n)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'sess', '-inf', NOW, 'LIMIT', 0, 256)) do
  drop(id, '1', ARGV[6])
end
if was then return 1 end
return 0
`;

/** ARGV: P nodeTimeoutMs mode('count'|'list') → count | {node1, client1, node2, client2, ...} (no epoch check). */
const CLUSTER = `
local P = ARGV[1]
local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
local nodes = redis.call('ZRANGEBYSCORE', P .. 'nodes', NOW - tonumber(ARGV[2]), '+inf')
if ARGV[3] == 'count' then
  local n = 0
  for _, node in ipairs(nodes) do n = n + redis.call('SCARD', P .. 'n:' .. node .. ':c') end
  return n
end
local out = {}
for _, node in ipairs(nodes) do
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'n:' .. node .. ':c')) do
    out[#out + 1] = node; out[#out + 1] = id
  end
end
return out
`;

const SOURCES = {
  wssSend: SEND,
  wssCreate: CREATE,
  wssClaim: CLAIM,
  wssFetch: FETCH,
  wssAttach: ATTACH,
  wssDetach: DETACH,
  wssDelete: DELETE,
  wssClientSeq: CLIENT_SEQ,
  wssSessionTopic: SESSION_TOPIC,
  wssAck: ACK,
  wssBeat: BEAT,
  wssCluster: CLUSTER,
  ...clientOpScripts(PROLOGUE),
} as const;

export type ScriptName = keyof typeof SOURCES;
export type ScriptArg = string | number;

/** Calls one script by name (EVALSHA, falling back to EVAL after a Redis restart emptied the script cache). */
export type ScriptRunner = (name: ScriptName, args: ScriptArg[]) => Promise<unknown>;

/**
 * Register every script on a connection with `defineCommand` and return a typed runner. Each script declares one
 * key, `routeKey` (the control plane's epoch key): every key a script touches shares its hash tag, so on Redis
 * Cluster the script runs on the shard of that slot.
 */
export function defineScripts(redis: Redis | Cluster, routeKey: string): ScriptRunner {
  for (const [name, lua] of Object.entries(SOURCES)) redis.defineCommand(name, { numberOfKeys: 1, lua });
  const commands = redis as unknown as Record<ScriptName, (...args: ScriptArg[]) => Promise<unknown>>;
  return (name, args) => commands[name](routeKey, ...args);
}

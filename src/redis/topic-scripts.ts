import type { Cluster, Redis } from 'ioredis';

/**
 * The Lua scripts of topics. Each one touches the keys of ONE topic only, all under the hash tag `{t:<topic>}`
 * (see {@link topicKeys}), so each runs on one slot and Redis Cluster can place topics on any shard. None of them
 * looks at sessions or subscribers: a publish costs the same whatever the audience.
 *
 * Keys of topic `T` (prefix `P`):
 * - `P{t:T}`       meta hash: `o` last offset, `e` epoch (random id of this history), `t` bytes ever published,
 *                  `r` bytes known trimmed (`t - r` ≥ bytes stored)
 * - `P{t:T}:x`     stream, entry id `0-<offset>`, fields `p` payload, `b` bytes, `a` Redis ms, `c` `t` through this
 *                  entry, `i` the publish's random id (tells two publications under one offset apart), `x` excluded
 *                  ids (JSON)
 * - `P{t:T}:d:<m>` dedupe key of publish `m` (its reply), so a resend after a reconnect does not publish twice
 * - `P{t:T}:m`     presence hash: member id → node id;  `P{t:T}:n` hash: node id → members held by that node
 * - channel `P{t:T}` publications (`#` epoch, offset, Redis ms, excluded, id, payload; see PUBLISH) and presence changes (PUBLISH, or SPUBLISH on a Cluster)
 */
const TIME = `
local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
local function field(list, name)
  for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end
  return nil
end
`;

/**
 * KEYS: meta stream dedupe. ARGV: channel enc bytes excludeJson('' none) maxN maxB maxAge newEpoch dedupeTtlMs
 * pubCmd('PUBLISH'|'SPUBLISH') expectedEpoch('' any) id floor → {offset, epoch, receivers}, or the error `EPOCH`
 * when the topic's epoch is not the one the publisher follows (Redis lost the topic: nothing is written). `id` is
 * the publish's random id (that of its dedupe key), stored and sent with it. `floor` is the highest offset the
 * publisher saw taken in `expectedEpoch` (0 if it does not follow the topic): a topic whose top is below it went
 * backwards, and gets a new epoch from `floor` before the publication takes `floor + 1`.
 *
 * Seven commands on the common path (TIME, GET, HMGET, XADD, HSET, PUBLISH, SET), whatever the audience:
 * - the count bound is XADD's own exact `MAXLEN` (it evicts the one oldest entry when the stream is full);
 * - bytes: each entry stores `c`, the topic's cumulative published bytes through it; meta `t` is that total and
 *   `r` the cumulative bytes known to be trimmed. `t - r` is an upper bound of the bytes held (MAXLEN trims
 *   without updating `r`), so the head is read only when that bound is over `maxB`, or every 16th publish for
 *   the age bound: then the oldest entries over a bound go in one XTRIM MINID, and `r` is exact again;
 * - the publication goes out as `#<epoch>\n<offset>\n<ms>\n<excluded>\n<id>\n<payload>`: no JSON encoding in Lua;
 * - the dedupe key makes a resend of the same publish (ioredis resends after a reconnect) return the first reply.
 */
const PUBLISH = `${TIME}
local meta, stream, dk = KEYS[1], KEYS[2], KEYS[3]
local prev = redis.call('GET', dk)
if prev then return cjson.decode(prev) end
local h = redis.call('HMGET', meta, 'e', 'o', 't', 'r')
local epoch = h[1]
if ARGV[11] ~= '' and epoch ~= ARGV[11] then return redis.error_reply('EPOCH topic history changed') end
local o, bytes = tonumber(h[2] or '0') + 1, tonumber(ARGV[3])
local t, r = tonumber(h[3] or '0') + bytes, tonumber(h[4] or '0')
local floor = tonumber(ARGV[13])
if epoch and o <= floor then
  -- Below what the publisher saw taken in this epoch: the history went backwards (a failover lost writes). A new
  -- epoch continues above it, without the rewound entries: the offset is never given to two publications.
  redis.call('XTRIM', stream, 'MINID', '0-' .. (floor + 1))
  epoch, o, r = nil, floor + 1, t - bytes
end
local enc, x, id = ARGV[2], ARGV[4], ARGV[12]
local maxN, maxB, maxAge = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
if x == '' then
  redis.call('XADD', stream, 'MAXLEN', maxN, '0-' .. o, 'p', enc, 'b', bytes, 'a', NOW, 'c', t, 'i', id)
else
  redis.call('XADD', stream, 'MAXLEN', maxN, '0-' .. o, 'p', enc, 'b', bytes, 'a', NOW, 'c', t, 'i', id, 'x', x)
end
if t - r > maxB or o % 16 == 0 then
  local cut, from = nil, '-'
  while true do
    local heads = redis.call('XRANGE', stream, from, '+', 'COUNT', 8)
    local kept = false
    for _, e in ipairs(heads) do
      local b = tonumber(field(e[2], 'b'))
      local c = tonumber(field(e[2], 'c') or (r + b))
      r = c - b
      if t - r <= maxB and tonumber(field(e[2], 'a')) >= NOW - maxAge then kept = true; break end
      cut = e[1]; r = c
    end
    if kept or #heads < 8 then break end
    from = '(' .. cut
  end
  if cut then redis.call('XTRIM', stream, 'MINID', '0-' .. (tonumber(string.sub(cut, 3)) + 1)) end
end
if epoch then
  redis.call('HSET', meta, 'o', o, 't', t, 'r', r)
else
  epoch = ARGV[8]
  redis.call('HSET', meta, 'o', o, 't', t, 'r', r, 'e', epoch)
end
local msg = '#' .. epoch .. '\\n' .. o .. '\\n' .. NOW .. '\\n' .. x .. '\\n' .. id .. '\\n' .. enc
local receivers = redis.call(ARGV[10], ARGV[1], msg)
local result = {o, epoch, receivers}
redis.call('SET', dk, cjson.encode(result), 'PX', ARGV[9])
return result
`;

/**
 * KEYS: meta stream. ARGV: after newEpoch maxAge floor at id → {epoch, offset, now, o1, a1, p1, x1, i1, ...}: the
 * topic's epoch (created if the topic is new), its last offset, and every stored entry after offset `after` not
 * older than `maxAge` (what a node loads when it starts following the topic, or fetches to fill a hole).
 *
 * The reader's view checks that the topic's history did not go backwards (a failover to a replica that missed the
 * last writes): `floor` is the highest offset the reader knows was taken in this epoch, `id` the id of the
 * publication it applied at offset `at`. If the stream's top is below `floor`, or the entry at `at` is another
 * publication, the history was rewound: the topic gets a new epoch continuing from the higher of the two offsets
 * (offsets never repeat), and the entries of the rewound epoch are dropped, so every node and every resume sees the
 * epoch change (`gap`), never a reused offset.
 */
const READ = `${TIME}
local meta, stream = KEYS[1], KEYS[2]
redis.call('HSETNX', meta, 'e', ARGV[2])
local top, floor, at = tonumber(redis.call('HGET', meta, 'o') or '0'), tonumber(ARGV[4]), tonumber(ARGV[5])
local rewound = top < floor
if not rewound and at > 0 and ARGV[6] ~= '' then
  local here = redis.call('XRANGE', stream, '0-' .. at, '0-' .. at)[1]
  local id = here and field(here[2], 'i')
  rewound = id ~= nil and id ~= false and id ~= ARGV[6]
end
if rewound then
  if floor > top then top = floor end
  redis.call('XTRIM', stream, 'MINID', '0-' .. (top + 1))
  redis.call('HSET', meta, 'e', ARGV[2], 'o', top, 'r', redis.call('HGET', meta, 't') or '0')
end
local h = redis.call('HMGET', meta, 'e', 'o')
local out = {h[1], h[2] or '0', NOW}
local oldest = NOW - tonumber(ARGV[3])
for _, e in ipairs(redis.call('XRANGE', stream, '(0-' .. ARGV[1], '+')) do
  local f = e[2]
  if tonumber(field(f, 'a')) >= oldest then
    out[#out + 1] = string.sub(e[1], 3); out[#out + 1] = field(f, 'a')
    out[#out + 1] = field(f, 'p'); out[#out + 1] = field(f, 'x') or ''; out[#out + 1] = field(f, 'i') or ''
  end
end
return out
`;

/**
 * KEYS: members counts. ARGV: op('add'|'del') id node channel pubCmd → 1 if presence changed, else 0. A member is
 * held by one node: `add` moves it (a resume on another node), `del` removes it only if this node holds it.
 */
const PRESENCE = `
local m, n = KEYS[1], KEYS[2]
local id, node = ARGV[2], ARGV[3]
local old = redis.call('HGET', m, id)
if ARGV[1] == 'add' then
  if old == node then return 0 end
  if old and redis.call('HEXISTS', n, old) == 1 then redis.call('HINCRBY', n, old, -1) end
  redis.call('HSET', m, id, node)
  redis.call('HINCRBY', n, node, 1)
  if not old then redis.call(ARGV[5], ARGV[4], cjson.encode({k = 'j', i = id, n = node})) end
  return 1
end
if old ~= node then return 0 end
redis.call('HDEL', m, id)
redis.call('HINCRBY', n, node, -1)
redis.call(ARGV[5], ARGV[4], cjson.encode({k = 'l', i = id, n = node}))
return 1
`;

/**
 * KEYS: members counts. ARGV: mode('count'|'list') liveNode1 liveNode2 ... → count | {id1, node1, ...}. Members
 * held by nodes that are not live (their heartbeat stopped) are not counted, and are removed.
 */
const MEMBERS = `
local m, n = KEYS[1], KEYS[2]
local live = {}
for i = 2, #ARGV do live[ARGV[i]] = true end
local counts = redis.call('HGETALL', n)
local total = 0
for i = 1, #counts, 2 do
  if live[counts[i]] then total = total + tonumber(counts[i + 1]) else redis.call('HDEL', n, counts[i]) end
end
if ARGV[1] == 'count' then return total end
local out = {}
local all = redis.call('HGETALL', m)
for i = 1, #all, 2 do
  if live[all[i + 1]] then out[#out + 1] = all[i]; out[#out + 1] = all[i + 1] else redis.call('HDEL', m, all[i]) end
end
return out
`;

const SOURCES = {
  wssTopicPublish: { keys: 3, lua: PUBLISH },
  wssTopicRead: { keys: 2, lua: READ },
  wssTopicPresence: { keys: 2, lua: PRESENCE },
  wssTopicMembers: { keys: 2, lua: MEMBERS },
} as const;

export type TopicScriptName = keyof typeof SOURCES;

/** Calls one topic script by name with its keys first (EVALSHA, or EVAL after a Redis restart). */
export type TopicScriptRunner = (
  name: TopicScriptName,
  keys: string[],
  args: Array<string | number>,
) => Promise<unknown>;

/** Register the topic scripts on a connection and return a typed runner. */
export function defineTopicScripts(redis: Redis | Cluster): TopicScriptRunner {
  for (const [name, s] of Object.entries(SOURCES))
    redis.defineCommand(name, { numberOfKeys: s.keys, lua: s.lua });
  const commands = redis as unknown as Record<
    TopicScriptName,
    (...args: Array<string | number>) => Promise<unknown>
  >;
  return (name, keys, args) => commands[name](...keys, ...args);
}

/** The keys and channel of topic `name`, all under one hash tag (one slot). */
export interface TopicKeys {
  meta: string;
  stream: string;
  members: string;
  counts: string;
  channel: string;
  dedupe(msgId: string): string;
}

export function topicKeys(prefix: string, name: string): TopicKeys {
  const meta = `${prefix}{t:${name}}`;
  return {
    meta,
    stream: `${meta}:x`,
    members: `${meta}:m`,
    counts: `${meta}:n`,
    channel: meta,
    dedupe: (msgId) => `${meta}:d:${msgId}`,
  };
}

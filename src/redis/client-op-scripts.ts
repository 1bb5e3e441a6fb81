/**
 * The control-plane scripts of the cluster-wide client operations (`clusterJoin`, `clusterLeave`,
 * `clusterDisconnect`, `fetchClient`; see client-ops.ts). They run in the control plane's slot, like the session
 * scripts (scripts.ts), after the same prologue (epoch check, `NOW`, `liveness`, `drop`), so each is atomic with
 * every claim (resume) and create of the session it looks at.
 *
 * `wssClientOp` — ARGV: P epoch requestId self nodeTimeoutMs op id topic value terminal request skip maxTopics →
 * - `{'node', nodeId, g}`: a live node other than `self` owns the session (or, without a session, has a socket
 *   for the id): the request (JSON built by the caller) was published on that node's channel, which answers on
 *   the caller's channel. `skip` (`"<node> <g>"`) names an owner that answered that it does not hold the session
 *   (it lost it without Redis knowing): that owner is treated as gone.
 * - `{'self', g}`: this node owns it (a resume is loading it here): the caller tries again locally, or, if it
 *   does not hold the session at all (it dropped it without Redis knowing), asks again with `skip` naming itself.
 * - `{'done', ...}`: no live node owns the session: applied to the stored session, atomically. `join`: the
 *   topic is stored with `value` (`"<joined-at offset> <topic epoch>"`) unless it is there (`{'done', 1|0}`);
 *   `leave`: removed (`{'done', 1|0}`); `disconnect` with `terminal` '1': the session is deleted without a
 *   tombstone, as a 1000 close ends it (`{'done', 1}`), else `{'done', 0}`; `fetch`:
 *   `{'done', principal, data, {topic, ...}}`. The reply is kept 60 s under `P d:<requestId>`, so a resend of the
 *   same request (ioredis after a reconnect) is answered the same and applies nothing twice.
 * - `{'limit'}`: a stored join of a session already in `maxTopics` topics (`$all` not counted): nothing changed.
 * - `{'unknown'}`: no live session and no socket on a live node under `id`.
 *
 * `wssClientOpCheck` — ARGV: P epoch id kind('in'|'out'|'gone') topic incarnation → 1 if the stored session
 * reflects the change (topic present, topic absent, session gone or replaced), else 0.
 */
export function clientOpScripts(prologue: string): { wssClientOp: string; wssClientOpCheck: string } {
  const wssClientOp = `${prologue}
local reqId, self, op, id = ARGV[3], ARGV[4], ARGV[6], ARGV[7]
local dk = P .. 'd:' .. reqId
local prev = redis.call('GET', dk)
if prev then return cjson.decode(prev) end
local cutoff = NOW - tonumber(ARGV[5])
local function up(n)
  local s = redis.call('ZSCORE', P .. 'nodes', n)
  return s and tonumber(s) >= cutoff
end
local sk = P .. 's:' .. id
local live = liveness(id)
if live and redis.call('EXISTS', sk) == 1 then
  local h = redis.call('HMGET', sk, 'o', 'g')
  local o = h[1]
  if o == self and (o .. ' ' .. (h[2] or '')) ~= ARGV[12] then return {'self', h[2] or ''} end
  if o and up(o) and redis.call('SISMEMBER', P .. 'n:' .. o .. ':s', id) == 1 and (o .. ' ' .. (h[2] or '')) ~= ARGV[12] then
    redis.call('PUBLISH', P .. 'n:' .. o, ARGV[11])
    return {'node', o, h[2] or ''}
  end
  local tk = sk .. ':t'
  local out
  if op == 'join' then
    if redis.call('HEXISTS', tk, ARGV[8]) == 0 and redis.call('HLEN', tk) - redis.call('HEXISTS', tk, '$all') >= tonumber(ARGV[13]) then
      return {'limit'}
    end
    out = {'done', redis.call('HSETNX', tk, ARGV[8], ARGV[9])}
  elseif op == 'leave' then
    out = {'done', redis.call('HDEL', tk, ARGV[8])}
  elseif op == 'disconnect' then
    if ARGV[10] == '1' then drop(id, false, 0); out = {'done', 1} else out = {'done', 0} end
  else
    local u = redis.call('HMGET', sk, 'u', 'a')
    out = {'done', u[1] or '-', u[2] or '', redis.call('HKEYS', tk)}
  end
  redis.call('SET', dk, cjson.encode(out), 'PX', 60000)
  return out
end
for _, n in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', cutoff, '+inf')) do
  if n ~= self and redis.call('SISMEMBER', P .. 'n:' .. n .. ':c', id) == 1 and (n .. ' ') ~= ARGV[12] then
    redis.call('PUBLISH', P .. 'n:' .. n, ARGV[11])
    return {'node', n, ''}
  end
end
return {'unknown'}
`;
  const wssClientOpCheck = `${prologue}
local sk = P .. 's:' .. ARGV[3]
if ARGV[4] == 'gone' then
  if redis.call('HGET', sk, 'i') == ARGV[6] then return 0 end
  return 1
end
local has = redis.call('HEXISTS', sk .. ':t', ARGV[5])
if ARGV[4] == 'in' then return has end
return 1 - has
`;
  return { wssClientOp, wssClientOpCheck };
}

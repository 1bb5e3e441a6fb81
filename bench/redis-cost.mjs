// Redis cost of a reliable broadcast, measured by Redis itself, against Socket.IO + @socket.io/redis-streams-adapter.
//
//   npm run bench:redis-cost                      # builds dist/, then the default run below
//   node bench/redis-cost.mjs [--sessions=250,1000,3000,10000] [--rounds=5] [--bytes=150]
//                             [--deliveries=200000] [--max-broadcasts=400] [--redis-ms=3000]
//                             [--systems=stabilizer,socketio]
//   node bench/redis-cost.mjs --scale [--nodes=3] [--per-node=5000] [--topics=50] [--rate=150] [--seconds=20]
//
// Cost run: for each session count, each system gets its own fresh redis-server, three node processes
// (lib/redis-node.mjs) and a load generator process (loadgen.mjs: raw `ws` clients speaking stabilizer.v1 or
// Engine.IO/Socket.IO) with its clients spread evenly over the three nodes. Node 0 broadcasts. Per round and
// system: N broadcasts, wait until every client has every message (and 300 ms for the acks of stabilizer.v1
// clients to reach Redis), and read Redis's own accounting before and after:
//   - Redis CPU: INFO cpu used_cpu_user + used_cpu_sys of the redis-server process (commands, networking, all);
//   - commandstats: the sum of `usec` over all commands in INFO commandstats (Redis 7 counts a command called by a
//     script on its own line and again inside the script's time: an upper bound for script-heavy work);
//   - memory: INFO memory used_memory after − before, per message published.
// The rounds of the two systems are interleaved (the order alternates); values are medians over rounds, ratios the
// median of per-round ratios, with min–max. N is the same delivery budget for both (deliveries ÷ sessions, at
// most 400), and fewer for a system whose warm-up broadcast shows more than --redis-ms of Redis CPU per round.
// Idle cost (Redis CPU per second while nothing is sent) is measured per system and shown; "net" subtracts it.
// Our nodes run with pingIntervalMs 600000 here: a stabilizer.v1 pong is an ack (one Redis script per session per
// ping interval) and is not part of a broadcast; the scale run keeps the default heartbeat and shows its cost.
//
// Scale run (--scale): our system only, nodes × per-node sessions, each session joined to one of --topics topics
// on connect; every node publishes at rate ÷ nodes per second over all topics for --seconds. Reports event-loop
// delay and CPU per node, Redis CPU per publish and in total, delivery latency and ordering counters.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { spawnChild } from './lib/ipc.mjs';
import { sleep } from './lib/common.mjs';
import { startRedisServer, statsDelta } from './lib/redis-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const arg = (name, def) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def;
const num = (name, def) => Number(arg(name, def));
const LOCAL_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const NODES = num('nodes', 3);
const BYTES = num('bytes', 150);
const started = Date.now();
const log = (...a) =>
  console.error(`[redis-cost ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s]`, ...a);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const fmtSpread = (s, d = 1) => `${fmt(s.median, d)} [${fmt(s.min, d)}–${fmt(s.max, d)}]`;

/** A fresh redis-server, NODES node processes and a load generator with `sessions` clients spread over them. */
async function startSystem(system, sessions, topics = 0, pingIntervalMs = undefined) {
  const redis = await startRedisServer();
  const nodes = await Promise.all(
    Array.from({ length: NODES }, async (_, i) => {
      const node = spawnChild(join(here, 'lib/redis-node.mjs'));
      const { port } = await node.call('start', {
        system,
        redisUrl: redis.url,
        keyPrefix: 'bench:',
        nodeId: `node${i}`,
        topics,
        pingIntervalMs,
      });
      return Object.assign(node, { port });
    }),
  );
  const loadgen = spawnChild(join(here, 'loadgen.mjs'), { execArgv: ['--max-old-space-size=4096'] });
  const env = { system, sessions, redis, nodes, loadgen, nextN: 1 };
  env.stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await loadgen.kill();
    redis.stop();
  };
  try {
    const t0 = Date.now();
    const beforeConnect = await redis.stats();
    for (const [i, node] of nodes.entries()) {
      const n = Math.floor(sessions / NODES) + (i < sessions % NODES ? 1 : 0);
      // The load generator keeps one URL for reconnects: one call per node, one after the other.
      await loadgen.call('connect', {
        url: `ws://127.0.0.1:${node.port}/`,
        dialect: system === 'stabilizer' ? 'stabilizer' : 'socketio',
        n,
        localAddresses: LOCAL_ADDRESSES,
        concurrency: 100,
        timeoutMs: 600_000,
      });
    }
    const counts = await Promise.all(nodes.map((n) => n.call('connected')));
    const total = counts.reduce((s, c) => s + c.connected, 0);
    const joinErrors = counts.flatMap((c) => c.joinErrors);
    // What connecting cost Redis (hello → welcome → first ack, and the join of --scale), per session.
    const c = statsDelta(beforeConnect, await redis.stats());
    env.connectCpuUs = c.cpuUs / sessions;
    env.connectCmdUs = c.cmdUs / sessions;
    env.connectMemBytes = c.usedMemory / sessions;
    log(
      `${system}: ${total} of ${sessions} connected in ${((Date.now() - t0) / 1000).toFixed(1)} s; Redis ${fmt(env.connectCpuUs)} µs CPU, ${fmt(env.connectCmdUs)} µs commandstats, ${fmt(env.connectMemBytes, 0)} B used_memory per connect`,
    );
    if (joinErrors.length) throw new Error(`${system}: joining topics failed: ${joinErrors[0]}`);
    if (total !== sessions) throw new Error(`${system}: only ${total} of ${sessions} connected`);
    return env;
  } catch (err) {
    await env.stop();
    throw err;
  }
}

/** Poll the load generator until `expected` messages arrived; returns its counters. */
async function waitReceived(env, expected, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await env.loadgen.call('stats');
    if (s.received >= expected || Date.now() > until) return s;
    await sleep(25);
  }
}

/** One measured round: `count` broadcasts from node 0, all delivered, Redis's accounting before and after. */
async function costRound(env, count) {
  await env.loadgen.call('reset', {});
  const firstN = env.nextN;
  env.nextN += count;
  const expected = count * env.sessions;
  const before = await env.redis.stats();
  const sent = await env.nodes[0].call('burst', { count, bytes: BYTES, firstN }, 900_000);
  const got = await waitReceived(env, expected, 120_000 + expected / 5);
  await sleep(300); // the clients' acks (every 200 ms) reach Redis inside the window
  const d = statsDelta(before, await env.redis.stats());
  const netCpuUs = d.cpuUs - (env.idleCpuUsPerSec * d.wallMs) / 1000;
  const netCmdUs = d.cmdUs - (env.idleCmdUsPerSec * d.wallMs) / 1000;
  return {
    count,
    cpuUs: d.cpuUs / count,
    netCpuUs: netCpuUs / count,
    cmdUs: d.cmdUs / count,
    netCmdUs: netCmdUs / count,
    memBytes: d.usedMemory / count,
    memDelta: d.usedMemory,
    wallMs: d.wallMs,
    delivered: got.received / expected,
    errors: got.seqErrors + got.topicGaps + got.topicDuplicates + sent.failed,
    closes: got.closes, // client connections closed during the round (they resume: their Redis work is in the window)
    top: d.commands
      .slice(0, 4)
      .map((c) => `${c.name} ${fmt(c.usec / count, 1)}µs×${fmt(c.calls / count, 1)}`),
  };
}

async function idleRate(env, ms = 2000) {
  const before = await env.redis.stats();
  await sleep(ms);
  const d = statsDelta(before, await env.redis.stats());
  return { cpuUsPerSec: (d.cpuUs / d.wallMs) * 1000, cmdUsPerSec: (d.cmdUs / d.wallMs) * 1000 };
}

async function costRun() {
  const sizes = arg('sessions', '250,1000,3000,10000').split(',').map(Number);
  const systems = arg('systems', 'stabilizer,socketio').split(',');
  const rounds = num('rounds', 5);
  const deliveries = num('deliveries', 200_000);
  const redisMs = num('redis-ms', 3000);
  const out = [];
  for (const sessions of sizes) {
    const envs = [];
    try {
      // No heartbeats inside the rounds: a stabilizer.v1 pong is an ack, and its Redis script (per session, every
      // ping interval) would land in whichever round it falls into. The scale run keeps the default heartbeat.
      for (const system of systems) envs.push(await startSystem(system, sessions, 0, 600_000));
      for (const env of envs) {
        const idle = await idleRate(env);
        env.idleCpuUsPerSec = idle.cpuUsPerSec;
        env.idleCmdUsPerSec = idle.cmdUsPerSec;
        const warm = await costRound(env, 3);
        const byDeliveries = Math.floor(deliveries / sessions);
        const byRedis = Math.floor((redisMs * 1000) / Math.max(1, warm.cpuUs));
        env.count = Math.max(3, Math.min(num('max-broadcasts', 400), byDeliveries, byRedis));
        env.rounds = [];
        log(
          `${env.system} @${sessions}: idle ${fmt(idle.cpuUsPerSec, 0)} µs/s, warm-up ${fmt(warm.cpuUs)} µs/broadcast → ${env.count} broadcasts a round`,
        );
      }
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 ? [...envs].reverse() : envs;
        for (const env of order) {
          const res = await costRound(env, env.count);
          env.rounds.push(res);
          log(
            `${env.system} @${sessions} round ${r + 1}: ${fmt(res.cpuUs)} µs CPU, ${fmt(res.cmdUs)} µs commandstats, ${fmt(res.memBytes, 0)} B per broadcast; delivered ${fmt(res.delivered * 100, 2)} %, errors ${res.errors}, closes ${res.closes}; ${res.top.join(', ')}`,
          );
        }
      }
      out.push({
        sessions,
        systems: Object.fromEntries(
          envs.map((e) => [
            e.system,
            {
              count: e.count,
              idleCpuUsPerSec: e.idleCpuUsPerSec,
              idleCmdUsPerSec: e.idleCmdUsPerSec,
              connectCpuUs: e.connectCpuUs,
              connectCmdUs: e.connectCmdUs,
              connectMemBytes: e.connectMemBytes,
              rounds: e.rounds,
            },
          ]),
        ),
      });
    } finally {
      for (const env of envs) await env.stop();
    }
  }
  writeFileSync(
    join(here, 'results/redis-cost.json'),
    `${JSON.stringify({ date: new Date().toISOString(), out }, null, 1)}\n`,
  );
  report(out, systems);
}

function report(out, systems) {
  const [ours, theirs] = systems;
  const metric = (row, system, key) => row.systems[system].rounds.map((r) => r[key]);
  const ratio = (row, key) =>
    spread(row.systems[ours].rounds.map((r, i) => r[key] / row.systems[theirs].rounds[i][key]));
  const lines = [];
  const p = (s) => lines.push(s);
  p(`Redis cost per reliable broadcast (${BYTES} B payload, ${NODES} nodes, medians [min–max] over rounds)`);
  p('');
  for (const [key, title] of [
    ['cpuUs', 'Redis process CPU µs per broadcast (used_cpu_user+sys)'],
    ['netCpuUs', 'Redis process CPU µs per broadcast, idle cost subtracted'],
    ['cmdUs', 'commandstats µs per broadcast (sum of usec of all commands)'],
    [
      'netCmdUs',
      'commandstats µs per broadcast, idle commands (node heartbeats, adapter polling) subtracted',
    ],
  ]) {
    p(`### ${title}`);
    p('');
    p(`| sessions | ${systems.join(' | ')} |${theirs ? ` ${ours} ÷ ${theirs} |` : ''}`);
    p(`|---|${systems.map(() => '---|').join('')}${theirs ? '---|' : ''}`);
    for (const row of out) {
      const cells = systems.map((s) => fmtSpread(spread(metric(row, s, key))));
      const r = theirs ? ` ${fmtSpread(ratio(row, key), 2)} |` : '';
      p(`| ${row.sessions} | ${cells.join(' | ')} |${r}`);
    }
    {
      const flat = systems.map((s) => {
        const ms = out.map((row) => median(metric(row, s, key)));
        return `${s} ${fmt(Math.max(...ms) / Math.min(...ms), 2)}×`;
      });
      p('');
      p(`flatness (largest ÷ smallest median): ${flat.join(', ')}`);
    }
    p('');
  }
  p('### Redis memory per published message, and the set-up of each run');
  p('');
  p(
    'Memory: INFO memory used_memory without client buffers, after − before, over all measured rounds ÷ messages',
  );
  p(
    '(and per round). Idle: Redis CPU per second while the system holds its sessions and sends nothing. A round',
  );
  p(
    'that did not deliver everything in time measured only part of its work: read its figures as a lower bound.',
  );
  p('');
  p(
    '| sessions | system | memory B/message | per round | broadcasts/round | delivered in time (lowest round) | idle Redis CPU µs/s | idle commandstats µs/s | Redis CPU µs per connect |',
  );
  p('|---|---|---|---|---|---|---|---|---|');
  for (const row of out) {
    for (const s of systems) {
      const x = row.systems[s];
      const memTotal =
        x.rounds.reduce((n, r) => n + r.memDelta, 0) / x.rounds.reduce((n, r) => n + r.count, 0);
      const deliveredPct = Math.min(...x.rounds.map((r) => r.delivered)) * 100;
      p(
        `| ${row.sessions} | ${s} | ${fmt(memTotal, 0)} | ${fmtSpread(spread(metric(row, s, 'memBytes')), 0)} | ${x.count} | ${fmt(deliveredPct, 2)} % | ${fmt(x.idleCpuUsPerSec, 0)} | ${fmt(x.idleCmdUsPerSec, 0)} | ${fmt(x.connectCpuUs)} |`,
      );
    }
  }
  console.log(lines.join('\n'));
  writeFileSync(join(here, 'results/redis-cost.md'), `${lines.join('\n')}\n`);
}

async function scaleRun() {
  const perNode = num('per-node', 5000);
  const topics = num('topics', 50);
  const rate = num('rate', 150);
  const seconds = num('seconds', 20);
  const sessions = perNode * NODES;
  const env = await startSystem('stabilizer', sessions, topics);
  try {
    const members = topics ? sessions / topics : sessions; // --topics=0: every publication is a broadcast
    // Idle: the nodes and Redis holding every session, nothing published.
    await Promise.all(env.nodes.map((n) => n.call('markStart')));
    const idle = await idleRate(env, 5000);
    const idleNodes = await Promise.all(env.nodes.map((n) => n.call('markEnd')));
    // Warm-up, then the measured schedule.
    const warm = Math.max(1, topics);
    await env.nodes[0].call('burst', { count: warm, bytes: BYTES, firstN: env.nextN, topics });
    env.nextN += warm;
    await waitReceived(env, sessions, 60_000);
    await env.loadgen.call('reset', {});
    const before = await env.redis.stats();
    await Promise.all(env.nodes.map((n) => n.call('markStart')));
    const per = Math.round((rate / NODES) * seconds);
    const sent = await Promise.all(
      env.nodes.map((n, i) =>
        n.call('rate', {
          ratePerSec: rate / NODES,
          seconds,
          bytes: BYTES,
          firstN: env.nextN + i * per,
          topics,
          topicOffset: i,
        }),
      ),
    );
    const published = sent.reduce((s, x) => s + x.count, 0);
    const got = await waitReceived(env, published * members, 120_000);
    const nodes = await Promise.all(env.nodes.map((n) => n.call('markEnd')));
    const d = statsDelta(before, await env.redis.stats());
    const lines = [
      `Scale run: ${NODES} nodes × ${perNode} sessions, ${topics ? `${topics} topics of ${members}` : 'broadcasts to all'}, ${rate} publications/s for ${seconds} s (${fmt(rate * members, 0)} deliveries/s), ${BYTES} B`,
      '',
      '| node | idle ELD p50 / p99 / max ms | idle CPU % | load ELD p50 / p99 / max ms | load CPU % | RSS MB |',
      '|---|---|---|---|---|---|',
      ...nodes.map(
        (n, i) =>
          `| ${i} | ${idleNodes[i].eldP50Ms} / ${idleNodes[i].eldP99Ms} / ${idleNodes[i].eldMaxMs} | ${idleNodes[i].cpuPct} | ${n.eldP50Ms} / ${n.eldP99Ms} / ${n.eldMaxMs} | ${n.cpuPct} | ${n.rssMb} |`,
      ),
      '',
      `published ${published} (failed ${sent.reduce((s, x) => s + x.failed, 0)}), delivered ${fmt((got.received / (published * members)) * 100, 2)} %, gaps ${got.topicGaps}, duplicates ${got.topicDuplicates}, unknown-topic ${got.topicUnknown}, client closes ${got.closes} ${JSON.stringify(got.closeCodes)}`,
      `delivery latency (scheduled send → receipt): p50 ${fmt(got.latency.p50 / 1000, 2)} ms, p99 ${fmt(got.latency.p99 / 1000, 2)} ms, max ${fmt(got.latency.max / 1000, 1)} ms`,
      `Redis per connect (hello, welcome, ack, join): ${fmt(env.connectCpuUs)} µs CPU, ${fmt(env.connectCmdUs)} µs commandstats, ${fmt(env.connectMemBytes, 0)} B used_memory`,
      `Redis: idle ${fmt(idle.cpuUsPerSec, 0)} µs CPU/s; under load ${fmt(d.cpuUs / d.wallMs / 10, 1)} % of a core, ${fmt(d.cpuUs / published, 1)} µs CPU and ${fmt(d.cmdUs / published, 1)} µs commandstats per publication; top: ${d.commands
        .slice(0, 5)
        .map((c) => `${c.name} ${fmt(c.usec / published, 1)}µs×${fmt(c.calls / published, 2)}`)
        .join(', ')}`,
    ];
    console.log(lines.join('\n'));
    writeFileSync(join(here, 'results/redis-scale.md'), `${lines.join('\n')}\n`);
  } finally {
    await env.stop();
  }
}

try {
  if (arg('report')) {
    // Render the tables again from a saved results file: --report=bench/results/redis-cost.json
    const { readFileSync } = await import('node:fs');
    const saved = JSON.parse(readFileSync(arg('report'), 'utf8'));
    report(saved.out, Object.keys(saved.out[0].systems));
  } else if (argv.includes('--scale')) await scaleRun();
  else await costRun();
  process.exit(0);
} catch (err) {
  console.error(err);
  process.exit(1);
}

// One node of a cluster: the chat demo on the Redis backend, plus a numbered "tick" broadcast every second so you
// can watch the numbering survive a node dying. Run three of them (see README "Scaling out"):
//   REDIS_URL=redis://127.0.0.1:6380 PORT=3001 node examples/cluster/node.mjs
import pino from 'pino';
import { closeOnSignals } from '../../dist/index.js';
import { createRedisBackend } from '../../dist/redis.js';
import { createChatServer } from '../chat/app.mjs';

const port = Number(process.env.PORT ?? 3001);
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { node: port } });
// Fails fast with BACKEND_UNAVAILABLE and the reason (refused, wrong password, Redis < 6.2).
const backend = await createRedisBackend({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
const { server, manager } = createChatServer({ logger, config: { backend } });

let n = 0;
const ticker = setInterval(() => manager.broadcast({ type: 'tick', node: port, n: ++n }), 1000);
server.listen(port, () => logger.info({ port }, `cluster node on ws://localhost:${port}/ws`));
closeOnSignals(manager, server, {
  timeoutMs: 3000,
  onClosed: async () => {
    clearInterval(ticker);
    await backend.close();
    process.exit(0);
  },
});

// `npm start`: the chat demo on PORT (default 3000). Ctrl-C shuts down gracefully. DRAIN_DELAY_MS: on SIGTERM,
// /readyz answers 503 for that long before the shutdown starts (deploy/kubernetes.yaml sets it). REDIS_URL: keep
// sessions in Redis, so that several processes serve one chat and a client resumes on any of them
// (docker-compose.yml runs two behind nginx); without it, sessions live in this process.
import pino from 'pino';
import { closeOnSignals } from '../../dist/index.js';
import { createChatServer } from './app.mjs';

const port = Number(process.env.PORT ?? 3000);
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const backend = process.env.REDIS_URL
  ? await (await import('../../dist/redis.js')).createRedisBackend({ url: process.env.REDIS_URL })
  : undefined;
const { server, manager } = createChatServer({ logger, config: backend ? { backend } : {} });

server.listen(port, () => {
  logger.info(
    { port, backend: backend ? 'redis' : 'memory' },
    `chat demo: open http://localhost:${port}/  (WebSocket: ws://localhost:${port}/ws, stats: /stats, dashboard: /dashboard)`,
  );
});
const drainDelayMs = Number(process.env.DRAIN_DELAY_MS ?? 0);
closeOnSignals(manager, server, {
  timeoutMs: 5000,
  drainDelayMs,
  restart: drainDelayMs > 0, // 1012: a rolling deploy, clients come back on the other pods
  onClosed: async () => {
    await backend?.close(); // leave the cluster; the sessions stay in Redis for the other nodes
    process.exit(0);
  },
});

// `npm start`: the chat demo on PORT (default 3000). Ctrl-C shuts down gracefully.
import pino from 'pino';
import { closeOnSignals } from '../../dist/index.js';
import { createChatServer } from './app.mjs';

const port = Number(process.env.PORT ?? 3000);
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const { server, manager } = createChatServer({ logger });

server.listen(port, () => {
  logger.info(
    { port },
    `chat demo: open http://localhost:${port}/  (WebSocket: ws://localhost:${port}/ws, stats: /stats)`,
  );
});
closeOnSignals(manager, server, { timeoutMs: 5000, onClosed: () => process.exit(0) });

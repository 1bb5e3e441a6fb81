// The chat demo: an http server with a web page, a WebSocket endpoint at /ws, GET /stats, and the health probes
// GET /livez and GET /readyz (see README "Operating it"), and the live dashboard at /dashboard (docs/dashboard.md).
// The chat has rooms (topics, see rooms.mjs).
// Plain WebSocket clients join as they are; clients that speak stabilizer.v1 (the page uses the
// websocket-stabilizer client) also get exactly-once delivery and session resume, per room.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { WebSocketConnectionManager, createHealthHandler } from '../../dist/index.js';
import { createDashboard } from '../../dist/dashboard.js';
import { authorizeSubscribe, serveRooms } from './rooms.mjs';

const here = new URL('.', import.meta.url);
const clientBundle = new URL('../../dist/client.js', import.meta.url);

/**
 * Build the chat server. `listen` it yourself; `manager` is exposed for shutdown and tests. The dashboard lets in
 * requests from this machine without credentials (a demo; it logs so), and anyone with DASHBOARD_TOKEN (or
 * `dashboardToken`), at least 16 characters, sent as `Authorization: Bearer ...` or through its login form.
 */
export function createChatServer({ logger, config = {}, dashboardToken = process.env.DASHBOARD_TOKEN } = {}) {
  const manager = new WebSocketConnectionManager(
    {
      logger,
      tokens: { secret: process.env.TOKEN_SECRET ?? 'demo-secret-change-me-demo-secret-change-me' },
      ...config,
    },
    { authorizeSubscribe },
  );
  serveRooms(manager);

  const health = createHealthHandler(manager);
  const dashboard = createDashboard(manager, { allowLoopback: true, token: dashboardToken, actions: true });
  const server = createServer(async (req, res) => {
    try {
      if (health(req, res) || dashboard(req, res)) return;
      if (req.url === '/stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(manager.getStats()));
      } else if (req.url === '/' || req.url === '/index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(await readFile(new URL('index.html', here)));
      } else if (req.url === '/client.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(await readFile(clientBundle));
      } else {
        res.writeHead(404).end('not found');
      }
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  manager.attach(server, { path: '/ws' });
  server.on('close', () => dashboard.close());
  return { server, manager, dashboard };
}

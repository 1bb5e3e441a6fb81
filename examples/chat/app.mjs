// The chat demo: an http server with a web page, a WebSocket endpoint at /ws, GET /stats, and the health probes
// GET /livez and GET /readyz (see README "Operating it").
// Plain WebSocket clients join as they are; clients that speak stabilizer.v1 (the page uses the
// websocket-stabilizer client) also get exactly-once delivery and session resume.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { WebSocketConnectionManager, createHealthHandler } from '../../dist/index.js';

const here = new URL('.', import.meta.url);
const clientBundle = new URL('../../dist/client.js', import.meta.url);

/** Build the chat server. `listen` it yourself; `manager` is exposed for shutdown and tests. */
export function createChatServer({ logger, config = {} } = {}) {
  const manager = new WebSocketConnectionManager({
    logger,
    tokens: { secret: process.env.TOKEN_SECRET ?? 'demo-secret-change-me-demo-secret-change-me' },
    ...config,
  });
  const names = new Map();
  const nameOf = (id) => names.get(id) ?? `guest-${id.slice(0, 4)}`;

  manager.on('connect', ({ clientId, resume }) => {
    if (resume === 'resumed') return; // the same person, back from a network blip
    names.set(clientId, `guest-${clientId.slice(0, 4)}`);
    manager.sendToClient(clientId, {
      type: 'welcome',
      you: nameOf(clientId),
      online: manager.getConnectionCount(),
    });
    manager.broadcast(
      { type: 'join', name: nameOf(clientId), online: manager.getConnectionCount() },
      { exclude: [clientId] },
    );
  });
  const leave = (clientId) => {
    manager.broadcast({ type: 'leave', name: nameOf(clientId), online: manager.getConnectionCount() });
    names.delete(clientId);
  };
  manager.on('disconnect', ({ clientId, reason, sessionRetained }) => {
    // A retained session may resume (its messages are buffered meanwhile); a replaced socket's id lives on.
    if (!sessionRetained && reason !== 'replaced') leave(clientId);
  });
  manager.on('session-end', ({ clientId, reason }) => {
    if (reason === 'expired')
      leave(clientId); // it never came back
    else names.delete(clientId);
  });
  manager.on('message', ({ clientId, data }) => {
    const text = typeof data === 'string' ? data : typeof data?.text === 'string' ? data.text : undefined;
    if (text === undefined || text.length === 0) return;
    if (text.startsWith('/nick ')) {
      const old = nameOf(clientId);
      names.set(clientId, text.slice(6, 38).trim() || old);
      manager.broadcast({ type: 'nick', from: old, to: nameOf(clientId) });
      return;
    }
    manager.broadcast({ type: 'chat', from: nameOf(clientId), text: text.slice(0, 2000), at: Date.now() });
  });

  const health = createHealthHandler(manager);
  const server = createServer(async (req, res) => {
    try {
      if (health(req, res)) return;
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
  return { server, manager };
}

// Reconnect tokens in plain mode: GET /token issues a token for a client id; a WebSocket to /ws restores that
// identity when its first message is `{"type":"hello","token":"..."}`. The token travels inside the socket, never
// in the URL (proxies and access logs keep URLs). A forged, expired or replayed token is closed with 4500
// (CloseCode.TokenRejected); no hello within 10 s is closed with 4003. Every accepted connection is sent a fresh
// token for its next reconnect.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { CloseCode, WebSocketConnectionManager } from '../../dist/index.js';

const HELLO_TIMEOUT_MS = 10_000;

export function createReconnectServer({ secret = 'reconnect-example-secret-0123456789abcdef', logger } = {}) {
  const manager = new WebSocketConnectionManager({ logger, tokens: { secret, ttlMs: 60_000 } });
  const wss = new WebSocketServer({ noServer: true, maxPayload: manager.config.maxPayloadBytes });

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/token') {
      // A real app would authenticate the user here (a POST with its session) and use their id.
      const clientId = url.searchParams.get('clientId') ?? randomUUID();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ clientId, token: manager.generateReconnectToken(clientId) }));
      return;
    }
    res.writeHead(404).end();
  });

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') return socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const timer = setTimeout(() => ws.close(CloseCode.HandshakeTimeout, 'HELLO_TIMEOUT'), HELLO_TIMEOUT_MS);
      // The first message carries the token; the manager takes the socket over once it is checked.
      ws.once('message', async (raw) => {
        clearTimeout(timer);
        try {
          const hello = JSON.parse(String(raw));
          if (hello?.type !== 'hello') throw Object.assign(new Error('hello expected'), { code: 'NO_HELLO' });
          const { clientId } = await manager.validateReconnectToken(hello.token);
          await manager.connect(ws, clientId, { remoteAddress: req.socket.remoteAddress });
          manager.sendToClient(clientId, {
            type: 'restored',
            clientId,
            token: manager.generateReconnectToken(clientId),
          });
        } catch (err) {
          // The code says why (TOKEN_EXPIRED, TOKEN_REPLAYED, ...); the close code is the same for all.
          ws.close(CloseCode.TokenRejected, err.code ?? 'TOKEN_REJECTED');
        }
      });
    });
  });
  return { server, manager };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3001);
  const { server } = createReconnectServer();
  server.listen(port, () =>
    console.log(
      `reconnect example: GET http://localhost:${port}/token, then open ws://localhost:${port}/ws and send ` +
        `{"type":"hello","token":"..."} as the first message`,
    ),
  );
}

// Reconnect tokens in plain mode: GET /token issues a token for a client id; a WebSocket upgrade to
// /ws?token=... restores that identity. A forged, expired or replayed token is closed with 4500
// (CloseCode.TokenRejected). Every accepted connection is sent a fresh token for its next reconnect.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { CloseCode, WebSocketConnectionManager } from '../../dist/index.js';

export function createReconnectServer({ secret = 'reconnect-example-secret-0123456789abcdef', logger } = {}) {
  const manager = new WebSocketConnectionManager({ logger, tokens: { secret, ttlMs: 60_000 } });
  const wss = new WebSocketServer({ noServer: true, maxPayload: manager.config.maxPayloadBytes });

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/token') {
      // A real app would authenticate the user here and use their id.
      const clientId = url.searchParams.get('clientId') ?? randomUUID();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ clientId, token: manager.generateReconnectToken(clientId) }));
      return;
    }
    res.writeHead(404).end();
  });

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') return socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
    wss.handleUpgrade(req, socket, head, async (ws) => {
      try {
        const { clientId } = await manager.validateReconnectToken(url.searchParams.get('token'));
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
  return { server, manager };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 3001);
  const { server } = createReconnectServer();
  server.listen(port, () =>
    console.log(
      `reconnect example: GET http://localhost:${port}/token, then ws://localhost:${port}/ws?token=...`,
    ),
  );
}

// No log line carries a token: every line the manager writes (at every level) during fresh sessions, a resume, a
// replayed token, a forged one, a stale hello and a refused hello credential is searched for the tokens themselves.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';
import { recordingLogger } from './support.js';

const secret = 'token-logs-secret-0123456789abcdef0123456789';
afterEach(closeAllServers);

describe('tokens never reach the logs', () => {
  it('a resume, a replay, a forgery and a refused hello credential log no token', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger, tokens: { secret } });
    const tokens: string[] = [];

    const a = await RawProtocolClient.handshake(s.url);
    tokens.push(a.welcome.token!);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'detached');
    const back = await RawProtocolClient.handshake(s.url, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
      lastSeq: 0,
    });
    expect(back.welcome.resume).toBe('resumed');
    tokens.push(back.welcome.token!);

    // The used token again (a replay), and one with its signature changed (a forgery).
    const replay = await RawProtocolClient.handshake(
      s.url,
      { token: a.welcome.token, sessionId: a.welcome.sessionId, lastSeq: 0 },
      false,
    ).catch(() => undefined);
    replay?.client.ws.terminate();
    const forged = `${back.welcome.token!.slice(0, -4)}AAAA`;
    tokens.push(forged);
    const f = await RawProtocolClient.handshake(s.url, { token: forged, sessionId: 'x', lastSeq: 0 }, false);
    expect(f.welcome.resume).toBe('fresh');
    f.client.ws.terminate();
    back.client.ws.close(1000);
    await waitFor(() => logger.events('disconnect').length >= 3, 'disconnects logged');

    // A credential in the hello (the client's `auth` option), refused by authenticate.
    const credential = 'hello-credential-4f1c9a7e2b';
    const h = await startServer(
      { logger, tokens: { secret } },
      { authenticate: (_req, hello) => (hello ? hello.auth === 'ok' : true) },
    );
    const ws = new WebSocket(h.url, ['stabilizer.v1', 'stabilizer.auth']);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ t: 'hello', v: 1, auth: credential }));
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(4504);
    tokens.push(credential);

    expect(logger.entries.length).toBeGreaterThan(5);
    expect(logger.events('token.rejected').length + logger.events('resume.stale').length).toBeGreaterThan(0);
    const text = JSON.stringify(logger.entries);
    for (const token of tokens) {
      expect(text).not.toContain(token);
      // Nor its signature alone (the last dot-separated part).
      expect(text).not.toContain(token.split('.').at(-1)!);
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);
const secret = 'rate-limit-secret-0123456789abcdef0123456789';

describe('the rate limit survives a resume', () => {
  it('a client that resumes after each 4002 gets no more than the configured rate overall', async () => {
    const rate = { messagesPerSecond: 20, burst: 20 };
    const s = await startServer({ tokens: { secret }, rateLimit: rate });
    let delivered = 0;
    s.manager.on('message', () => {
      delivered++;
    });
    const startedMs = Date.now();
    let { client, welcome } = await RawProtocolClient.handshake(s.url);
    const sessionId = welcome.sessionId;
    let closes = 0;
    for (let round = 0; round < 8; round++) {
      // Volatile messages, as fast as the socket takes them, until the server closes with 4002.
      for (let i = 0; i < 60 && client.ws.readyState === client.ws.OPEN; i++) client.send({ t: 'd', p: i });
      expect((await client.waitClose()).code).toBe(CloseCode.RateLimited);
      closes++;
      ({ client, welcome } = await RawProtocolClient.handshake(s.url, {
        token: welcome.token,
        sessionId,
        lastSeq: 0,
      }));
      expect(welcome).toMatchObject({ resume: 'resumed', sessionId });
    }
    const elapsedS = (Date.now() - startedMs) / 1000;
    await waitFor(() => s.manager.isConnected(sessionId), 'last resume registered');
    expect(closes).toBe(8);
    // One bucket for the whole run: burst + rate × elapsed (+1 for rounding). A bucket refilled on every
    // resume would have let through about burst × 9 = 180.
    expect(delivered).toBeLessThanOrEqual(rate.burst + Math.ceil(rate.messagesPerSecond * elapsedS) + 1);
    expect(delivered).toBeGreaterThanOrEqual(rate.burst);
  });

  it('plain connections keep a bucket each (a new plain connection starts full)', async () => {
    const s = await startServer({ rateLimit: { messagesPerSecond: 5, burst: 5 } });
    const ids: string[] = [];
    s.manager.on('message', ({ clientId }) => {
      ids.push(clientId);
    });
    const a = await openClient(s.url);
    const b = await openClient(s.url);
    for (let i = 0; i < 5; i++) {
      a.send('x');
      b.send('y');
    }
    await waitFor(() => ids.length === 10, 'both buckets full');
    expect(new Set(ids).size).toBe(2);
    a.close();
    b.close();
  });
});

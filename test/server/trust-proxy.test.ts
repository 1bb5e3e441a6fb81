// trustProxy as a hop count or a list of proxy addresses/ranges, on real sockets: the client address (logs, limits,
// session caps) walks X-Forwarded-For from the right over trusted hops only; forwarding headers sent by an
// untrusted peer change nothing.
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import {
  WebSocketConnectionManager,
  type AttachOptions,
  type WebSocketConfig,
} from '../../src/server/index.js';
import { clientResolver } from '../../src/server/upgrade/proxy-trust.js';
import { closeAllServers, openClient, startServer, upgradeStatus, waitFor } from '../helpers/server.js';

const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await closeAllServers();
});

/** The client address the server records for an upgrade with these headers (a plain socket, kept open). */
async function addressSeen(
  attach: AttachOptions,
  headers: Record<string, string>,
  config: WebSocketConfig = {},
) {
  const s = await startServer(config, attach);
  const seen: Array<string | undefined> = [];
  s.manager.on('connect', (e) => void seen.push(e.remoteAddress));
  sockets.push(await openClient(s.url, { headers }));
  await waitFor(() => seen.length === 1, 'connect');
  return seen[0];
}

// A client behind a cloud load balancer (198.51.100.1) and nginx (the test's own loopback peer). The leftmost entry
// is what the client itself sent: forged.
const chain = { 'X-Forwarded-For': '6.6.6.6, 203.0.113.9, 198.51.100.1' };

describe('trustProxy', () => {
  it('true (one hop) takes the rightmost X-Forwarded-For entry, as before', async () => {
    expect(await addressSeen({ trustProxy: true }, chain)).toBe('198.51.100.1');
  });

  it('a hop count walks that many proxies from the right; forged entries on the left change nothing', async () => {
    expect(await addressSeen({ trustProxy: 2 }, chain)).toBe('203.0.113.9');
    expect(await addressSeen({ trustProxy: 2 }, { 'X-Forwarded-For': '203.0.113.9, 198.51.100.1' })).toBe(
      '203.0.113.9',
    );
    // Fewer entries than hops: the leftmost one there is.
    expect(await addressSeen({ trustProxy: 3 }, { 'X-Forwarded-For': '198.51.100.1' })).toBe('198.51.100.1');
  });

  it('a list trusts those addresses and ranges only: the first untrusted hop from the right is the client', async () => {
    const trustProxy = ['loopback', '198.51.100.0/24'];
    expect(await addressSeen({ trustProxy }, chain)).toBe('203.0.113.9');
    // A forged entry that is not an address at all: the hop that forwarded it is the client.
    expect(await addressSeen({ trustProxy: 3 }, { 'X-Forwarded-For': 'evil, 198.51.100.1' })).toBe(
      '198.51.100.1',
    );
  });

  it('an untrusted peer: X-Forwarded-For and Forwarded change nothing (address, limits, logs)', async () => {
    const spoof = { 'X-Forwarded-For': '203.0.113.9', Forwarded: 'for=203.0.113.10' };
    expect(await addressSeen({}, spoof)).toBe('127.0.0.1');
    expect(await addressSeen({ trustProxy: ['10.0.0.0/8'] }, spoof)).toBe('127.0.0.1');
    expect(await addressSeen({ trustProxy: true }, { Forwarded: 'for=203.0.113.10' })).toBe('127.0.0.1');

    // Per-IP limits: a new forged address on every attempt still counts under the peer.
    const s = await startServer({ maxConnectionsPerIp: 1 }, { trustProxy: ['10.0.0.0/8'] });
    sockets.push(await openClient(s.url, { headers: { 'X-Forwarded-For': '203.0.113.1' } }));
    await waitFor(() => s.manager.getConnectionCount() === 1, 'first');
    expect(await upgradeStatus(s.url, { 'X-Forwarded-For': '203.0.113.2' })).toBe(503);
    const limiter = new RateLimiterMemory({ points: 1, duration: 60 });
    const r = await startServer({ rateLimiters: { upgradesPerIp: limiter } }, { trustProxy: ['10.0.0.0/8'] });
    expect(await upgradeStatus(r.url, { 'X-Forwarded-For': '203.0.113.3' })).toBe(101);
    expect(await upgradeStatus(r.url, { 'X-Forwarded-For': '203.0.113.4' })).toBe(429);
  });

  it('a list entry that is not an address or range throws at attach, not per request', () => {
    const manager = new WebSocketConnectionManager();
    expect(() => manager.createUpgradeHandler({ trustProxy: ['10.0.0.0/8', 'not-an-ip'] })).toThrow(
      TypeError,
    );
    expect(() => manager.createUpgradeHandler({ trustProxy: -1 })).toThrow(TypeError);
  });
});

describe('clientResolver: whether an address is a client address (for the default maxSessionsPerIp)', () => {
  const facts = (peer: string, headers: Record<string, string> = {}) => ({
    peer,
    encrypted: false,
    header: (name: string) => headers[name],
  });
  it('a loopback/private peer without trustProxy is probably a proxy; a public peer or a forwarded address is a client', () => {
    const none = clientResolver(undefined);
    for (const peer of [
      '127.0.0.1',
      '::1',
      '10.1.2.3',
      '172.16.0.9',
      '192.168.1.1',
      '::ffff:127.0.0.1',
      'fd00::1',
    ]) {
      expect(none(facts(peer)).isClient).toBe(false);
    }
    expect(none(facts('100.64.0.1')).isClient).toBe(false);
    expect(none(facts('203.0.113.9')).isClient).toBe(true);
    expect(none(facts('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }))).toMatchObject({
      ip: '127.0.0.1',
      isClient: false,
    });
    const one = clientResolver(true);
    expect(one(facts('127.0.0.1', { 'x-forwarded-for': '127.0.0.1' }))).toMatchObject({
      ip: '127.0.0.1',
      isClient: true,
    });
    expect(one(facts('127.0.0.1'))).toMatchObject({ ip: '127.0.0.1', isClient: false });
  });
});

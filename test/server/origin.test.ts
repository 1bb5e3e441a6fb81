// The default origin check of attach / createUpgradeHandler, on real sockets: an upgrade whose Origin is not the
// request's own origin (scheme, host, port) nor listed in allowedOrigins gets 403 before authenticate runs. The
// forwarded scheme and host count only from a proxy trustProxy trusts.
import { afterEach, describe, expect, it } from 'vitest';
import { checkOrigin, type AttachOptions, type WebSocketConfig } from '../../src/server/index.js';
import { closeAllServers, startServer, upgradeStatus } from '../helpers/server.js';

afterEach(closeAllServers);

/** A server whose authenticate records that it ran (the refusal must come first). */
async function start(config: WebSocketConfig = {}, attach: AttachOptions = {}) {
  const ran: string[] = [];
  const s = await startServer(config, {
    ...attach,
    authenticate: (req) => {
      ran.push(req.headers.origin ?? '(none)');
      return true;
    },
  });
  return { ...s, ran, own: `http://127.0.0.1:${s.port}` };
}

describe('origin check: defaults', () => {
  it('refuses another origin with 403 before authenticate; the own origin and no Origin pass', async () => {
    const s = await start();
    const cookie = { Cookie: 'sid=victim' };
    expect(await upgradeStatus(s.url, { ...cookie, Origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: `http://127.0.0.1:${s.port + 1}` })).toBe(403);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: `https://127.0.0.1:${s.port}` })).toBe(403);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: `http://localhost:${s.port}` })).toBe(403);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: 'null' })).toBe(403);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: 'not a url' })).toBe(403);
    expect(s.ran).toEqual([]);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: s.own })).toBe(101);
    expect(await upgradeStatus(s.url, { ...cookie, Origin: s.own.toUpperCase() })).toBe(101);
    expect(await upgradeStatus(s.url, cookie)).toBe(101);
    expect(s.ran).toEqual([s.own, s.own.toUpperCase(), '(none)']);
  });

  it('counts refusals as origin-not-allowed (403)', async () => {
    const s = await start();
    await upgradeStatus(s.url, { Origin: 'https://evil.example' });
    expect(s.manager.counters.upgradeRejections).toMatchObject({ 'origin-not-allowed': 1 });
  });

  it("allowedOrigins adds origins (normalised), '*' turns the check off", async () => {
    const listed = await start({ allowedOrigins: ['https://app.example', 'http://localhost:5173/'] });
    expect(await upgradeStatus(listed.url, { Origin: 'https://app.example' })).toBe(101);
    expect(await upgradeStatus(listed.url, { Origin: 'https://APP.example:443' })).toBe(101);
    expect(await upgradeStatus(listed.url, { Origin: 'http://localhost:5173' })).toBe(101);
    expect(await upgradeStatus(listed.url, { Origin: listed.own })).toBe(101);
    expect(await upgradeStatus(listed.url, { Origin: 'http://app.example' })).toBe(403);
    expect(await upgradeStatus(listed.url, { Origin: 'https://app.example.evil.example' })).toBe(403);
    const any = await start({ allowedOrigins: '*' });
    expect(await upgradeStatus(any.url, { Origin: 'https://evil.example' })).toBe(101);
    expect(await upgradeStatus(any.url, { Origin: 'null' })).toBe(101);
  });
});

describe('origin check behind a proxy', () => {
  // What a TLS-terminating proxy for https://app.example sends on: the browser's Origin, the public host and scheme.
  const proxied = {
    Origin: 'https://app.example',
    Host: 'app.example',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-For': '203.0.113.5',
  };

  it('reads X-Forwarded-Proto / X-Forwarded-Host only from a trusted proxy', async () => {
    const untrusted = await start();
    expect(await upgradeStatus(untrusted.url, proxied)).toBe(403); // own origin: http://app.example
    const spoofedHost = { ...proxied, 'X-Forwarded-Host': 'app.example', Host: `127.0.0.1` };
    expect(await upgradeStatus(untrusted.url, spoofedHost)).toBe(403);
    for (const trustProxy of [true, 1, ['loopback'], ['127.0.0.0/8']] as const) {
      const trusted = await start({}, { trustProxy });
      expect(await upgradeStatus(trusted.url, proxied)).toBe(101);
      expect(await upgradeStatus(trusted.url, spoofedHost)).toBe(101);
      expect(await upgradeStatus(trusted.url, { ...proxied, Origin: 'https://evil.example' })).toBe(403);
    }
    // A list that does not hold the peer: its forwarding headers are the client's, not believed.
    const other = await start({}, { trustProxy: ['10.0.0.0/8'] });
    expect(await upgradeStatus(other.url, proxied)).toBe(403);
    expect(await upgradeStatus(other.url, spoofedHost)).toBe(403);
  });

  it('ignores the Forwarded header (RFC 7239) altogether', async () => {
    const s = await start({}, { trustProxy: true });
    const forwarded = {
      Origin: 'https://evil.example',
      Forwarded: 'for=203.0.113.5;proto=https;host=evil.example',
    };
    expect(await upgradeStatus(s.url, forwarded)).toBe(403);
  });
});

describe('checkOrigin', () => {
  const own = { secure: true, host: 'app.example' };
  it('compares scheme, host and port, normalised', () => {
    expect(checkOrigin(undefined, own, undefined)).toEqual({ allowed: true });
    expect(checkOrigin('https://app.example:443', own, undefined)).toEqual({ allowed: true });
    expect(checkOrigin('https://app.example:8443', own, undefined)).toEqual({
      allowed: false,
      expected: 'https://app.example',
    });
    expect(checkOrigin('https://app.example', { secure: false, host: 'app.example:443' }, undefined)).toEqual(
      {
        allowed: false,
        expected: 'http://app.example:443',
      },
    );
    expect(
      checkOrigin('https://x.example', { secure: true, host: undefined }, ['https://x.example']),
    ).toEqual({
      allowed: true,
    });
    expect(checkOrigin('https://x.example', { secure: true, host: 'a/b@c' }, undefined).allowed).toBe(false);
    expect(checkOrigin('null', own, ['null'])).toEqual({ allowed: true });
  });
});

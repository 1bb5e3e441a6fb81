import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBackend, WebSocketConnectionManager, type WebSocketConfig } from '../../src/server/index.js';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, protocolHello, sleep } from './support.js';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const OLD_SECRET = 'the-previous-secret-also-at-least-32-bytes!!';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const managers: WebSocketConnectionManager[] = [];
function manager(config: WebSocketConfig = { tokens: { secret: SECRET } }): WebSocketConnectionManager {
  const m = new WebSocketConnectionManager(config);
  managers.push(m);
  return m;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(managers.splice(0).map((m) => m.gracefulShutdown({ timeoutMs: 100 })));
  await closeAllServers();
  await cleanup();
});

function parts(token: string): [string, string, string, string] {
  const p = token.split('.');
  expect(p).toHaveLength(4);
  return p as [string, string, string, string];
}

/** Flip the first character of a base64url part (stays canonical: only the last character carries padding bits). */
function flipFirst(part: string): string {
  return (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
}

describe('reconnect tokens: lifecycle', () => {
  it('a valid token yields its client id, key id and expiry', async () => {
    const m = manager();
    const token = m.generateReconnectToken('client-7');
    expect(token.startsWith('v1.k1.')).toBe(true);
    const verified = await m.validateReconnectToken(token);
    expect(verified.clientId).toBe('client-7');
    expect(verified.keyId).toBe('k1');
    expect(verified.expiresAtMs).toBeGreaterThan(Date.now());
  });

  it('a token for a connected client is validated while the client stays connected', async () => {
    const s = await startServer({ tokens: { secret: SECRET } });
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'register');
    const id = s.manager.getActiveConnections()[0]!;
    const token = s.manager.generateReconnectToken(id);
    await expect(s.manager.validateReconnectToken(token, { clientId: id })).resolves.toMatchObject({
      clientId: id,
    });
    expect(s.manager.isConnected(id)).toBe(true);
  });

  it('an expired token is rejected with TOKEN_EXPIRED (short ttl)', async () => {
    const m = manager();
    const token = m.generateReconnectToken('c', { ttlMs: 1 });
    await sleep(5);
    await expect(m.validateReconnectToken(token)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('expiry follows the clock (fake Date): valid just before ttl, expired at ttl', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const m = manager({ tokens: { secret: SECRET, ttlMs: 60_000 } });
    const early = m.generateReconnectToken('c');
    const late = m.generateReconnectToken('c');
    vi.setSystemTime(new Date('2030-01-01T00:00:59.999Z'));
    await expect(m.validateReconnectToken(early)).resolves.toMatchObject({ clientId: 'c' });
    vi.setSystemTime(new Date('2030-01-01T00:01:00Z'));
    await expect(m.validateReconnectToken(late)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('a tampered payload is rejected with TOKEN_BAD_SIGNATURE', async () => {
    const m = manager();
    const [v, kid, , sig] = parts(m.generateReconnectToken('victim'));
    const forged = Buffer.from(JSON.stringify({ sub: 'admin', exp: Date.now() + 60_000, n: 'x' })).toString(
      'base64url',
    );
    await expect(m.validateReconnectToken([v, kid, forged, sig].join('.'))).rejects.toMatchObject({
      code: 'TOKEN_BAD_SIGNATURE',
    });
    const [, , payload] = parts(m.generateReconnectToken('victim'));
    await expect(m.validateReconnectToken([v, kid, flipFirst(payload), sig].join('.'))).rejects.toMatchObject(
      {
        code: 'TOKEN_BAD_SIGNATURE',
      },
    );
  });

  it('a tampered signature is rejected with TOKEN_BAD_SIGNATURE, and the real token still works', async () => {
    const m = manager();
    const token = m.generateReconnectToken('c');
    const [v, kid, payload, sig] = parts(token);
    await expect(m.validateReconnectToken([v, kid, payload, flipFirst(sig)].join('.'))).rejects.toMatchObject(
      {
        code: 'TOKEN_BAD_SIGNATURE',
      },
    );
    // A truncated signature (valid base64url, wrong length) is a bad signature too.
    await expect(
      m.validateReconnectToken([v, kid, payload, sig.slice(0, 40)].join('.')),
    ).rejects.toMatchObject({
      code: 'TOKEN_BAD_SIGNATURE',
    });
    // A token signed with another secret under the same key id.
    const other = manager({ tokens: { secret: OLD_SECRET } }).generateReconnectToken('c');
    await expect(m.validateReconnectToken(other)).rejects.toMatchObject({ code: 'TOKEN_BAD_SIGNATURE' });
    // Forgeries must not burn the nonce of the genuine token.
    await expect(m.validateReconnectToken(token)).resolves.toMatchObject({ clientId: 'c' });
  });

  it('a replayed token is rejected with TOKEN_REPLAYED', async () => {
    const m = manager();
    const token = m.generateReconnectToken('c');
    await m.validateReconnectToken(token);
    await expect(m.validateReconnectToken(token)).rejects.toMatchObject({ code: 'TOKEN_REPLAYED' });
    // Concurrent presentations: exactly one wins.
    const again = m.generateReconnectToken('c');
    const results = await Promise.allSettled([
      m.validateReconnectToken(again),
      m.validateReconnectToken(again),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('a token for another client is rejected with TOKEN_WRONG_SESSION without being consumed', async () => {
    const m = manager();
    const token = m.generateReconnectToken('alice');
    await expect(m.validateReconnectToken(token, { clientId: 'mallory' })).rejects.toMatchObject({
      code: 'TOKEN_WRONG_SESSION',
    });
    await expect(m.validateReconnectToken(token, { clientId: 'alice' })).resolves.toMatchObject({
      clientId: 'alice',
    });
  });

  it('malformed tokens are rejected with TOKEN_MALFORMED', async () => {
    const m = manager();
    const [v, kid, payload, sig] = parts(m.generateReconnectToken('c'));
    // Non-canonical base64url: the last signature character carries 2 padding bits; setting them decodes to the
    // same bytes, so only a strict decoder notices.
    const last = sig.at(-1)!;
    const nonCanonical = sig.slice(0, -1) + B64[B64.indexOf(last) + 1]!;
    const bad: unknown[] = [
      'garbage',
      '',
      42,
      null,
      { token: 'x' },
      'v1.k1.onlythree',
      `v2.${kid}.${payload}.${sig}`,
      `${v}.${kid}.${payload}.${sig}.extra`,
      `${v}.${kid}.${payload}.not*base64`,
      `${v}.${kid}.${payload}.${nonCanonical}`,
      `${v}.${kid}.${payload}=.${sig}`,
      'v1.k1.' + 'A'.repeat(600) + '.' + sig, // over maxTokenLength (512)
    ];
    for (const token of bad) {
      await expect(m.validateReconnectToken(token), String(token)).rejects.toMatchObject({
        code: 'TOKEN_MALFORMED',
      });
    }
  });

  it('a correctly signed token with bad claims is TOKEN_MALFORMED', async () => {
    const m = manager();
    const { createHmac } = await import('node:crypto');
    const sign = (claims: unknown) => {
      const body = `v1.k1.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
    };
    await expect(
      m.validateReconnectToken(sign({ sub: 1, exp: Date.now() + 1000, n: 'x' })),
    ).rejects.toMatchObject({
      code: 'TOKEN_MALFORMED',
    });
    await expect(m.validateReconnectToken(sign({ sub: 'c', n: 'x' }))).rejects.toMatchObject({
      code: 'TOKEN_MALFORMED',
    });
    // And a well-formed one signed the same way is accepted (the helper is right).
    await expect(
      m.validateReconnectToken(sign({ sub: 'c', exp: Date.now() + 1000, n: 'x' })),
    ).resolves.toEqual(expect.objectContaining({ clientId: 'c' }));
  });

  it('a token signed under an unknown key id is rejected with TOKEN_UNKNOWN_KEY', async () => {
    const issuer = manager({ tokens: { secret: SECRET, keyId: 'other' } });
    const verifier = manager();
    await expect(verifier.validateReconnectToken(issuer.generateReconnectToken('c'))).rejects.toMatchObject({
      code: 'TOKEN_UNKNOWN_KEY',
    });
  });

  it('key rotation: the previous key is accepted until acceptUntil, then rejected as TOKEN_UNKNOWN_KEY', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const before = manager({ tokens: { secret: OLD_SECRET, keyId: 'k1', ttlMs: 3_600_000 } });
    const t1 = before.generateReconnectToken('c');
    const t2 = before.generateReconnectToken('c');
    const acceptUntil = new Date('2030-01-01T00:10:00Z');
    const after = manager({
      tokens: {
        secret: SECRET,
        keyId: 'k2',
        ttlMs: 3_600_000,
        previous: { keyId: 'k1', secret: OLD_SECRET, acceptUntil },
      },
    });
    // New tokens use the new key.
    expect(after.generateReconnectToken('c').startsWith('v1.k2.')).toBe(true);
    vi.setSystemTime(acceptUntil);
    await expect(after.validateReconnectToken(t1)).resolves.toMatchObject({ clientId: 'c', keyId: 'k1' });
    vi.setSystemTime(acceptUntil.getTime() + 1);
    await expect(after.validateReconnectToken(t2)).rejects.toMatchObject({ code: 'TOKEN_UNKNOWN_KEY' });
  });

  it('without tokens.secret, generating throws TOKENS_DISABLED', async () => {
    const m = manager({});
    expect(() => m.generateReconnectToken('c')).toThrow(expect.objectContaining({ code: 'TOKENS_DISABLED' }));
    const foreign = manager().generateReconnectToken('c');
    await expect(m.validateReconnectToken(foreign)).rejects.toMatchObject({ code: 'TOKENS_DISABLED' });
  });

  it('the nonce memory is bounded: used nonces are forgotten after expiry by the sweep', async () => {
    const backend = new MemoryBackend();
    const m = manager({ tokens: { secret: SECRET, ttlMs: 1_000 }, backend });
    const tokens = Array.from({ length: 20 }, (_, i) => m.generateReconnectToken(`c${i}`));
    for (const t of tokens) await m.validateReconnectToken(t);
    expect(backend.nonceCount).toBe(20);
    m.sweep(Date.now()); // nothing expired yet
    expect(backend.nonceCount).toBe(20);
    m.sweep(Date.now() + 1_001);
    expect(backend.nonceCount).toBe(0);
  });

  it('the nonce memory stays bounded with mixed TTLs: one long-lived nonce does not pin the expired ones', async () => {
    const backend = new MemoryBackend();
    const m = manager({ tokens: { secret: SECRET }, backend });
    await m.validateReconnectToken(m.generateReconnectToken('long', { ttlMs: 86_400_000 }));
    for (let i = 0; i < 10; i++)
      await m.validateReconnectToken(m.generateReconnectToken(`s${i}`, { ttlMs: 1_000 }));
    expect(backend.nonceCount).toBe(11);
    m.sweep(Date.now() + 2_000);
    expect(backend.nonceCount).toBe(1);
  });
});

describe('reconnect tokens on a real socket (stabilizer.v1 resume)', () => {
  it('a valid resume token resumes the session; tampering starts fresh with token-rejected, replaying is refused (4004)', async () => {
    const s = await startServer({ tokens: { secret: SECRET } });
    const first = await protocolHello(s.url);
    expect(first.welcome).toMatchObject({ t: 'welcome', resume: 'fresh', reason: 'new' });
    const sessionId = first.welcome.sessionId as string;
    const token = first.welcome.token as string;
    const [v, kid, payload, sig] = parts(token);
    const firstClosed = closed(first.ws);
    first.ws.close(4000);
    await firstClosed;
    await waitFor(() => !s.manager.isConnected(sessionId), 'first socket gone');

    const tampered = await protocolHello(s.url, {
      token: [v, kid, flipFirst(payload), sig].join('.'),
      sessionId,
    });
    expect(tampered.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });
    expect(tampered.welcome.sessionId).not.toBe(sessionId);

    const resumed = await protocolHello(s.url, { token, sessionId, lastSeq: 0 });
    expect(resumed.welcome).toMatchObject({ resume: 'resumed', sessionId });
    expect(resumed.welcome.token).not.toBe(token); // a fresh single-use token on every welcome
    expect(s.manager.isConnected(sessionId)).toBe(true);

    // A replayed token of a session that lives on: a stale attempt, closed with 4004 before any welcome.
    const replayed = await client(s.url, {}, 'stabilizer.v1');
    const replayedClosed = closed(replayed);
    replayed.send(JSON.stringify({ t: 'hello', v: 1, token, sessionId }));
    expect((await replayedClosed).code).toBe(4004);
    // The replay attempt did not take the session over.
    expect(resumed.ws.readyState).toBe(resumed.ws.OPEN);
  });

  it('an expired resume token starts a fresh session with reason expired', async () => {
    const s = await startServer({ tokens: { secret: SECRET, ttlMs: 30 }, sessionTtlMs: 30 });
    const first = await protocolHello(s.url);
    const firstClosed = closed(first.ws);
    first.ws.close(4000);
    await firstClosed;
    await sleep(60);
    const again = await protocolHello(s.url, {
      token: first.welcome.token,
      sessionId: first.welcome.sessionId,
    });
    expect(again.welcome).toMatchObject({ resume: 'fresh', reason: 'expired' });
  });
});

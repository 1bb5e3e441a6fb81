// Issue 17, item 8: the default per-IP session cap must not cap a proxied deployment. Behind a real nginx (the
// documented config) without trustProxy, every session comes from nginx's loopback address: the default cap
// (1,000 per client address) does not count it, so the 1,001st user gets a session. A client address the server
// can trust (one a trusted proxy forwarded) is still capped at 1,000 by default, and an explicit maxSessionsPerIp
// counts every address.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SUBPROTOCOL, type WelcomeMessage } from '../../src/protocol/index.js';
import { closeAllServers, startServer } from '../helpers/server.js';
import { documentedNginxConfig, freePort, startNginxWithConfig } from '../helpers/nginx.js';
import type { RunningProxy } from '../helpers/proxy-process.js';
import { recordingLogger } from '../server/support.js';

const secret = 'session-cap-proxy-secret-0123456789abcdef012345';
const sockets: WebSocket[] = [];
const proxies: RunningProxy[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const p of proxies.splice(0)) await p.stop();
  await closeAllServers();
}, 60_000);

type Outcome = { welcome: WelcomeMessage } | { closed: number; error?: string };

/** A new session (hello without a token): its welcome, or the close code and error it was refused with. */
function newSession(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL, { headers });
    sockets.push(ws);
    let error: string | undefined;
    ws.once('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1 })));
    ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw)) as { t: string; code?: string };
      if (frame.t === 'welcome') resolve({ welcome: frame as unknown as WelcomeMessage });
      if (frame.t === 'error') error = frame.code;
    });
    ws.once('close', (code) => resolve({ closed: code, error }));
    ws.once('error', reject);
  });
}

/** `count` new sessions, `parallel` at a time; the outcomes in order. */
async function sessions(count: number, url: string, headers: Record<string, string> = {}, parallel = 50) {
  const out: Outcome[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, () => newSession(url, headers));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

const welcomed = (outcomes: Outcome[]) => outcomes.filter((o) => 'welcome' in o).length;

describe('default maxSessionsPerIp behind a proxy', () => {
  it("behind a real nginx without trustProxy, 1,001 users all get a session (nginx's address is not capped)", async () => {
    const s = await startServer({ tokens: { secret } });
    const nginxPort = await freePort();
    proxies.push(await startNginxWithConfig(documentedNginxConfig(nginxPort, s.port, 60), nginxPort, 4096));
    const outcomes = await sessions(1001, `ws://127.0.0.1:${nginxPort}/ws`);
    expect(welcomed(outcomes)).toBe(1001);
    expect(s.manager.getStats().sessions).toBe(1001);
  }, 120_000);

  it('a client address a trusted proxy forwarded is capped at 1,000 by default; other clients are not affected', async () => {
    const s = await startServer({ tokens: { secret } }, { trustProxy: true });
    const one = { 'X-Forwarded-For': '198.51.100.7' };
    const first = await sessions(1000, s.url, one);
    expect(welcomed(first)).toBe(1000);
    expect(await newSession(s.url, one)).toEqual({ closed: 1013, error: 'SESSION_LIMIT' });
    expect('welcome' in (await newSession(s.url, { 'X-Forwarded-For': '198.51.100.8' }))).toBe(true);
  }, 120_000);

  it('an explicit maxSessionsPerIp counts every address, a loopback peer too; the refusal names the setting', async () => {
    const logger = recordingLogger();
    const s = await startServer({ tokens: { secret }, maxSessionsPerIp: 3, logger });
    expect(welcomed(await sessions(3, s.url))).toBe(3);
    expect(await newSession(s.url)).toEqual({ closed: 1013, error: 'SESSION_LIMIT' });
    const refusal = logger.events('protocol.error').find((e) => e.obj.code === 'SESSION_LIMIT');
    expect(refusal?.msg).toBe(
      'too many sessions from this address (maxSessionsPerIp; behind a proxy, set trustProxy)',
    );
  });
});

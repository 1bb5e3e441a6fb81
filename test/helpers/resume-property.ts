import fc from 'fast-check';
import { expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
import { waitFor } from './server.js';

/** One step of a random schedule. */
export type Step =
  | { kind: 'serverSend'; count: number }
  | { kind: 'clientSend'; count: number }
  | { kind: 'pause'; ms: number }
  | { kind: 'fault'; fault: Fault };

export type Fault =
  'clean-close' | 'server-terminate' | 'client-terminate' | 'heartbeat-kill' | 'slow-consumer';

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('serverSend' as const), count: fc.integer({ min: 1, max: 6 }) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('clientSend' as const), count: fc.integer({ min: 1, max: 6 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 15 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      fault: fc.constantFrom<Fault>(
        'clean-close',
        'server-terminate',
        'client-terminate',
        'heartbeat-kill',
        'slow-consumer',
      ),
    }),
  },
);

export interface PropertyServer {
  manager: WebSocketConnectionManager;
  url: string;
}

/** What one schedule produced, and the checks on it. Throws (with details) when a guarantee is broken. */
export interface ScheduleStats {
  resumes: number;
  gaps: number;
}

export async function runSchedule(
  server: PropertyServer,
  steps: Step[],
  windowIsLarge: boolean,
  stats: ScheduleStats = { resumes: 0, gaps: 0 },
): Promise<void> {
  const { manager } = server;
  const sentByServer = new Map<string, string[]>(); // session id → payloads in send order
  const receivedByClient = new Map<string, string[]>(); // session id → payloads in arrival order
  const receivedByServer: string[] = [];
  const clientSent: string[] = [];
  const outcomes = new Map<string, 'acked' | 'lost' | 'other'>();
  const freshReasons: string[] = [];
  let currentServerSession: string | undefined;
  let n = 0;

  const offConnect = manager.on('connect', ({ clientId }) => {
    currentServerSession = clientId;
  });
  const offMessage = manager.on('message', ({ data, reliable }) => {
    if (reliable) receivedByServer.push(data as string);
  });

  const client = new StabilizerClient<string, string>(server.url, {
    WebSocket: WebSocket as never,
    minDelayMs: 1,
    maxDelayMs: 4,
    ackDelayMs: 5,
  });
  client.on('message', (p) => {
    const sid = client.sessionId!;
    (receivedByClient.get(sid) ?? receivedByClient.set(sid, []).get(sid)!).push(p);
  });
  client.on('fresh', ({ reason }) => freshReasons.push(reason));
  client.on('resumed', () => stats.resumes++);

  try {
    await waitFor(() => client.state === 'open' && currentServerSession !== undefined, 'first welcome');
    for (const step of steps) {
      switch (step.kind) {
        case 'serverSend':
          for (let i = 0; i < step.count; i++) {
            const sid = currentServerSession!;
            const payload = `s${++n}`;
            manager.sendToClient(sid, payload);
            (sentByServer.get(sid) ?? sentByServer.set(sid, []).get(sid)!).push(payload);
          }
          break;
        case 'clientSend':
          for (let i = 0; i < step.count; i++) {
            const payload = `c${++n}`;
            clientSent.push(payload);
            client.send(payload).then(
              () => outcomes.set(payload, 'acked'),
              (err: { code?: string }) =>
                outcomes.set(payload, err.code === 'SESSION_LOST' ? 'lost' : 'other'),
            );
          }
          break;
        case 'pause':
          await new Promise((r) => setTimeout(r, step.ms));
          break;
        case 'fault': {
          const conn = manager.connections.get(currentServerSession!);
          if (step.fault === 'client-terminate') {
            (client as unknown as { ws?: WebSocket }).ws?.terminate();
          } else if (conn) {
            if (step.fault === 'clean-close')
              conn.close(CloseCode.ServiceRestart, 'restart', 'server-closed');
            else if (step.fault === 'server-terminate') conn.terminate('socket-error');
            else if (step.fault === 'heartbeat-kill') manager.expire(conn);
            else manager.onWriteFailure(conn, 'slow');
          }
          break;
        }
      }
    }
    // Settle: connected, every client message answered, everything sent to the current session received.
    await waitFor(
      () =>
        client.state === 'open' &&
        client.sessionId === currentServerSession &&
        client.queuedMessages === 0 &&
        outcomes.size === clientSent.length &&
        (receivedByClient.get(currentServerSession!)?.length ?? 0) ===
          (sentByServer.get(currentServerSession!)?.length ?? 0),
      'the schedule to settle',
      15_000,
    );
  } finally {
    client.close();
    offConnect();
    offMessage();
  }

  // Server → client: per session, what arrived is exactly a prefix of what was sent (in order, no duplicate, no
  // hole: a partial replay would leave a hole); the current session received everything.
  for (const [sid, got] of receivedByClient) {
    const sent = sentByServer.get(sid) ?? [];
    if (JSON.stringify(got) !== JSON.stringify(sent.slice(0, got.length))) {
      throw new Error(
        `session ${sid}: received ${JSON.stringify(got)} is not a prefix of ${JSON.stringify(sent)}`,
      );
    }
  }
  // Client → server: in send order, each at most once; every acked one exactly once.
  let cursor = 0;
  for (const p of receivedByServer) {
    const at = clientSent.indexOf(p, cursor);
    if (at < 0) throw new Error(`server got ${p} out of order or twice: ${JSON.stringify(receivedByServer)}`);
    cursor = at + 1;
  }
  for (const p of clientSent) {
    const o = outcomes.get(p);
    const times = receivedByServer.filter((x) => x === p).length;
    if (o === 'acked' && times !== 1) throw new Error(`${p} acked but received ${times} times`);
    if (o !== 'acked' && o !== 'lost') throw new Error(`${p} ended as ${o}`);
  }
  stats.gaps += freshReasons.filter((r) => r === 'gap').length;
  // Fresh only for a real gap; with a window larger than everything sent, never.
  // Fresh only for a real gap (a retry after a lost fresh welcome hears `gap` again: PROTOCOL.md §3).
  for (const r of freshReasons.slice(1)) {
    if (r !== 'gap') throw new Error(`unexpected fresh reason ${r} in ${JSON.stringify(freshReasons)}`);
  }
  if (windowIsLarge && freshReasons.length !== 1) {
    throw new Error(`fresh inside the window: ${JSON.stringify(freshReasons)}`);
  }
  if (windowIsLarge) {
    const all = [...sentByServer.values()].flat();
    const got = [...receivedByClient.values()].flat();
    if (JSON.stringify(all) !== JSON.stringify(got)) throw new Error('server → client not exactly once');
    if (JSON.stringify(receivedByServer) !== JSON.stringify(clientSent))
      throw new Error('client → server not exactly once');
  }
}

/**
 * The two property cases, against any backend: `large` has a replay window wider than anything a schedule sends,
 * `small` one that schedules overflow. Call inside a `describe` whose `beforeAll` sets up the servers.
 */
export function resumePropertyCases(
  runs: number,
  servers: () => { large: PropertyServer; small: PropertyServer },
): void {
  const schedules = fc.array(stepArb, { minLength: 1, maxLength: 20 });
  it(`within the replay window: every message exactly once, in order, both directions (${runs} cases)`, async () => {
    const stats: ScheduleStats = { resumes: 0, gaps: 0 };
    const { large } = servers();
    await fc.assert(
      fc.asyncProperty(schedules, (steps) => runSchedule(large, steps, true, stats)),
      { numRuns: runs },
    );
    // The schedules really exercised resume (a property that never resumed would prove nothing).
    expect(stats.resumes).toBeGreaterThan(runs / 2);
    expect(stats.gaps).toBe(0);
  }, 300_000);

  it(`outside the window: fresh with reason gap, never a partial replay (${runs} cases)`, async () => {
    const stats: ScheduleStats = { resumes: 0, gaps: 0 };
    const { small } = servers();
    await fc.assert(
      fc.asyncProperty(schedules, (steps) => runSchedule(small, steps, false, stats)),
      { numRuns: runs },
    );
    expect(stats.gaps).toBeGreaterThan(0);
    expect(stats.resumes).toBeGreaterThan(0);
  }, 300_000);
}

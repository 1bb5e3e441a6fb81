import fc from 'fast-check';
import { expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { msgpackCodec } from '../../src/client/msgpack.js';
import { CloseCode } from '../../src/protocol/index.js';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
import { RawProtocolClient } from './raw-protocol.js';
import { waitFor } from './server.js';

/** One step of a random schedule. */
export type Step =
  | { kind: 'serverSend'; count: number }
  | { kind: 'clientSend'; count: number }
  | { kind: 'pause'; ms: number }
  | { kind: 'fault'; fault: Fault }
  /**
   * A connection attempt the client gives up: a socket gets a hello with the token the client holds now (so the
   * client's next hello carries the same token), the client's socket dies, and that hello reaches the server
   * `delayMs` later, on a socket that then stays open, never confirming anything.
   */
  | { kind: 'lateHello'; delayMs: number };

export type Fault =
  'clean-close' | 'server-terminate' | 'client-terminate' | 'heartbeat-kill' | 'slow-consumer';

/** A random fault step, shared by the property tests. */
export const faultStepArb = fc.record({
  kind: fc.constant('fault' as const),
  fault: fc.constantFrom<Fault>(
    'clean-close',
    'server-terminate',
    'client-terminate',
    'heartbeat-kill',
    'slow-consumer',
  ),
});

/**
 * Inject a fault into the connection of session `sessionId` (or into the client's socket): a clean server close
 * (1012), a server-side or client-side terminate, a heartbeat kill, or a slow-consumer close.
 */
export function injectFault(
  manager: WebSocketConnectionManager,
  client: StabilizerClient<never, never> | StabilizerClient<string, string>,
  sessionId: string,
  fault: Fault,
): void {
  if (fault === 'client-terminate') return void (client as unknown as { _ws?: WebSocket })._ws?.terminate();
  const conn = manager.connections.get(sessionId);
  if (!conn) return;
  if (fault === 'clean-close') conn.close(CloseCode.ServiceRestart, 'restart', 'server-closed');
  else if (fault === 'server-terminate') conn.terminate('socket-error');
  else if (fault === 'heartbeat-kill') manager.expire(conn);
  else manager.onWriteFailure(conn, 'slow');
}

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
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('lateHello' as const),
      delayMs: fc.integer({ min: 0, max: 20 }),
    }),
  },
  { weight: 3, arbitrary: faultStepArb },
);

export interface PropertyServer {
  manager: WebSocketConnectionManager;
  url: string;
  /** `authenticate` gives every connection the same client id (`user-1`), as the README's auth example does. */
  fixedId?: boolean;
  /**
   * Whether schedules include late hellos (every backend runs them, also with a fixed id on Redis).
   * @default true
   */
  lateHellos?: boolean;
  /** The client speaks `stabilizer.v1.msgpack` (its late hellos stay JSON: both encodings on one server). */
  msgpack?: boolean;
  /**
   * Every other server payload is padded to ~200 bytes of repetitive text, so that a server with compression on
   * really deflates them (a frame that does not shrink is sent uncompressed).
   */
  compressible?: boolean;
}

/** What one schedule produced, and the checks on it. Throws (with details) when a guarantee is broken. */
export interface ScheduleStats {
  resumes: number;
  gaps: number;
  /** Late hellos refused as stale (4004): the schedules really exercised that path. */
  stale: number;
  /** Every `messageId` the server delivered, over all schedules on one server: never one twice. */
  messageIds: Set<string>;
  /** With `msgpack`: the sessions welcomed over `stabilizer.v1.msgpack` (the encoding was really in use). */
  msgpackSessions?: Set<string>;
}

export const newStats = (): ScheduleStats => ({ resumes: 0, gaps: 0, stale: 0, messageIds: new Set() });

export async function runSchedule(
  server: PropertyServer,
  steps: Step[],
  windowIsLarge: boolean,
  stats: ScheduleStats = newStats(),
): Promise<void> {
  const { manager } = server;
  // Keyed by session incarnation (server payloads carry it: `<incarnation>|s<n>`): with a fixed client id every
  // session has the same id.
  const sentByServer = new Map<string, string[]>(); // incarnation → payloads in send order
  const receivedByClient = new Map<string, string[]>(); // incarnation → payloads in arrival order
  const receivedByServer: string[] = [];
  const clientSent: string[] = [];
  const outcomes = new Map<string, 'acked' | 'lost' | 'other'>();
  const freshReasons: string[] = [];
  const problems: string[] = [];
  const lateSockets: RawProtocolClient[] = [];
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  let currentServerSession: string | undefined;
  let serverFresh = 0; // fresh welcomes the server sent to the client (or to its abandoned attempts)
  let terminal: string | undefined;
  let n = 0;

  const offConnect = manager.on('connect', ({ clientId, resume, freshReason }) => {
    // `token-rejected` goes only to a late hello whose session is gone (a stray session, never the client's).
    if (freshReason === 'token-rejected') return;
    if (resume === 'fresh') serverFresh++;
    currentServerSession = clientId;
  });
  const offMessage = manager.on('message', ({ data, reliable, messageId }) => {
    if (!reliable) return;
    receivedByServer.push(data as string);
    if (messageId === undefined || stats.messageIds.has(messageId))
      problems.push(`messageId ${messageId} of ${String(data)} seen before`);
    else stats.messageIds.add(messageId);
  });
  // The client's session: the one it was last welcomed into (a late hello's stray session is never it).
  const target = (): string => client.sessionId ?? currentServerSession!;
  const incarnation = (): string => manager.backend.getSession(target())?.incarnation ?? '?';

  const client = new StabilizerClient<string, string>(server.url, {
    WebSocket: WebSocket as never,
    minDelayMs: 1,
    maxDelayMs: 4,
    ackDelayMs: 5,
    codec: server.msgpack ? msgpackCodec() : undefined,
  });
  if (server.msgpack) stats.msgpackSessions ??= new Set();
  const offMsgpack = manager.on('connect', ({ clientId }) => {
    if (server.msgpack && manager.connections.get(clientId)?.msgpack) stats.msgpackSessions!.add(clientId);
  });
  client.on('message', (p) => {
    const inc = p.split('|')[0]!;
    (receivedByClient.get(inc) ?? receivedByClient.set(inc, []).get(inc)!).push(p);
  });
  client.on('fresh', ({ reason }) => {
    // `unknown-session` is justified only when a fresh welcome never reached the client: under a fixed id its
    // retry finds a newer incarnation. (`serverFresh` counts this welcome too.)
    if (reason === 'unknown-session' && serverFresh < freshReasons.length + 2)
      problems.push(`unknown-session without a lost fresh welcome (${serverFresh}, ${freshReasons.length})`);
    freshReasons.push(reason);
  });
  client.on('resumed', () => stats.resumes++);
  const closes: number[] = [];
  client.on('close', ({ code, willReconnect }) => {
    closes.push(code);
    if (!willReconnect) terminal = `client closed for good with ${code}`;
  });

  try {
    await waitFor(() => client.state === 'open' && currentServerSession !== undefined, 'first welcome');
    for (const step of steps) {
      switch (step.kind) {
        case 'serverSend':
          for (let i = 0; i < step.count; i++) {
            const inc = incarnation();
            const payload = `${inc}|s${++n}${server.compressible && n % 2 === 0 ? `:${'pad,'.repeat(50)}` : ''}`;
            try {
              manager.sendToClient(target(), payload);
            } catch {
              continue; // that session is gone (replaced by a fresh one the client has not heard of yet)
            }
            (sentByServer.get(inc) ?? sentByServer.set(inc, []).get(inc)!).push(payload);
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
        case 'lateHello': {
          const held = client as unknown as {
            _token?: string;
            _sid?: string;
            _lastSeq: number;
            _ws?: WebSocket;
          };
          const late = await RawProtocolClient.open(server.url);
          lateSockets.push(late);
          // Taken in the same turn as the client's socket dies: the client's next hello carries the same fields.
          const hello = {
            t: 'hello',
            v: 1,
            token: held._token,
            sessionId: held._sid,
            lastSeq: held._lastSeq,
          };
          held._ws?.terminate(); // the client gives this attempt up and tries again with the same token
          timers.push(setTimeout(() => late.send(hello), step.delayMs));
          break;
        }
        case 'fault':
          injectFault(manager, client, target(), step.fault);
          break;
      }
    }
    // Settle: connected, every client message answered, everything sent to the current session received.
    const state = () =>
      JSON.stringify({
        client: client.state,
        sessionId: client.sessionId,
        currentServerSession,
        incarnation: incarnation(),
        queued: client.queuedMessages,
        answered: `${outcomes.size}/${clientSent.length}`,
        received: receivedByClient.get(incarnation())?.length ?? 0,
        sent: sentByServer.get(incarnation())?.length ?? 0,
        freshReasons,
        closes: closes.slice(-6),
        late: lateSockets.map((l) => l.closeInfo?.code ?? l.frames.map((f) => f.t).join(',')),
      });
    await waitFor(
      () => {
        if (terminal) throw new Error(terminal);
        return (
          client.state === 'open' &&
          manager.connections.get(target())?.session === manager.backend.getSession(target()) &&
          client.queuedMessages === 0 &&
          outcomes.size === clientSent.length &&
          (receivedByClient.get(incarnation())?.length ?? 0) ===
            (sentByServer.get(incarnation())?.length ?? 0)
        );
      },
      'the schedule to settle',
      15_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${state()}`);
    });
    // Late hellos still in flight reach the server too, and must not end the client either.
    await new Promise((r) => setTimeout(r, 25));
    if (terminal) throw new Error(terminal);
  } finally {
    client.close();
    offConnect();
    offMsgpack();
    offMessage();
    for (const t of timers) clearTimeout(t);
    for (const late of lateSockets) {
      if (late.closeInfo?.code === CloseCode.StaleHello) stats.stale++;
      late.ws.terminate();
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));

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
    if (r !== 'gap' && r !== 'unknown-session')
      throw new Error(`unexpected fresh reason ${r} in ${JSON.stringify(freshReasons)}`);
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
 * The property cases, against any backend: `large` has a replay window wider than anything a schedule sends,
 * `small` one that schedules overflow; `fixedLarge`/`fixedSmall` are the same with a fixed client id for every
 * connection. Every schedule may hold a hello back and deliver it late. Call inside a `describe` whose `beforeAll`
 * sets up the servers.
 */
export function resumePropertyCases(
  runs: number,
  servers: () => Record<'large' | 'small' | 'fixedLarge' | 'fixedSmall', PropertyServer>,
  options: { msgpack?: boolean; /** @default true */ fixedId?: boolean } = {},
): void {
  // PROPERTY_SEED replays one run of fast-check (it prints the seed of a failure); a new random seed otherwise.
  const seed = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
  const all = fc.array(stepArb, { minLength: 1, maxLength: 20 });
  const withoutLate = fc.array(
    stepArb.filter((s) => s.kind !== 'lateHello'),
    { minLength: 1, maxLength: 20 },
  );
  const window = (name: 'large' | 'fixedLarge', label: string, msgpack = false) =>
    it(`within the replay window${label}: every message exactly once, in order, both directions (${runs} cases)`, async () => {
      const stats = newStats();
      const server = { ...servers()[name], msgpack };
      const late = server.lateHellos !== false;
      const schedules = late ? all : withoutLate;
      await fc.assert(
        fc.asyncProperty(schedules, (steps) => runSchedule(server, steps, true, stats)),
        { numRuns: runs, seed },
      );
      // The schedules really exercised resume (a property that never resumed would prove nothing).
      expect(stats.resumes).toBeGreaterThan(runs / 2);
      expect(stats.gaps).toBe(0);
      if (late) expect(stats.stale).toBeGreaterThan(0);
      if (msgpack) expect(stats.msgpackSessions!.size).toBeGreaterThan(runs / 2);
    }, 300_000);
  const outside = (name: 'small' | 'fixedSmall', label: string, msgpack = false) =>
    it(`outside the window${label}: fresh with reason gap, never a partial replay (${runs} cases)`, async () => {
      const stats = newStats();
      const server = { ...servers()[name], msgpack };
      const late = server.lateHellos !== false;
      const schedules = late ? all : withoutLate;
      await fc.assert(
        fc.asyncProperty(schedules, (steps) => runSchedule(server, steps, false, stats)),
        { numRuns: runs, seed },
      );
      expect(stats.gaps).toBeGreaterThan(0);
      expect(stats.resumes).toBeGreaterThan(0);
      if (late) expect(stats.stale).toBeGreaterThan(0);
      if (msgpack) expect(stats.msgpackSessions!.size).toBeGreaterThan(0);
    }, 300_000);
  window('large', '');
  outside('small', '');
  if (options.fixedId !== false) {
    window('fixedLarge', ', fixed client id');
    outside('fixedSmall', ', fixed client id');
  }
  if (options.msgpack) {
    window('large', ', MessagePack client', true);
    outside('small', ', MessagePack client', true);
  }
}

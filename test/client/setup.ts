import { afterEach, beforeEach, vi } from 'vitest';
import { StabilizerClient, type ClientEvents, type ClientOptions } from '../../src/client/index.js';
import { FakeWebSocket } from './fake-socket.js';

/** Every test file: fake timers (and Date), a clean socket list, no leaked clients. */
export function useFakes(): void {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    FakeWebSocket.instances = [];
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
}

const clients: StabilizerClient<unknown, unknown>[] = [];

export type EventLog = { [K in keyof ClientEvents<unknown>]: ClientEvents<unknown>[K][] };

/** A client on fake sockets with `random` fixed at 0.5, recording every event. */
export function makeClient(options: ClientOptions = {}) {
  const client = new StabilizerClient<unknown, unknown>('ws://test/ws', {
    WebSocket: FakeWebSocket,
    random: () => 0.5,
    ...options,
  });
  clients.push(client);
  const events: EventLog = {
    open: [],
    message: [],
    resumed: [],
    fresh: [],
    reconnecting: [],
    close: [],
    error: [],
    unauthorized: [],
    stream: [],
    subscribed: [],
    unsubscribed: [],
  };
  for (const name of Object.keys(events) as (keyof EventLog)[]) {
    client.on(name, (arg) => (events[name] as unknown[]).push(arg));
  }
  return { client, events, ws: () => FakeWebSocket.last };
}

/** A client that is connected and welcomed on a fresh session `s1`. */
export function openClient(options: ClientOptions = {}) {
  const c = makeClient(options);
  c.ws().welcome();
  return c;
}

/** Settles pending promise callbacks. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Watches a promise so a test can assert whether it settled yet, and how. */
export function track(p: Promise<unknown>) {
  const r: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  p.then(
    () => (r.state = 'resolved'),
    (error: unknown) => Object.assign(r, { state: 'rejected', error }),
  );
  return r;
}

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a WebSocket server that can lose one welcome: once `armed`, the first WebSocket frame
 * the server sends on the next connection (the `welcome`, PROTOCOL.md §3) is never forwarded; `onDrop` runs (e.g.
 * kill a Redis master), then both sides of that connection are destroyed (the client sees 1006). The server wrote
 * its welcome, and the client never heard it.
 */
export interface WelcomeDropper {
  /** `ws://127.0.0.1:<port><path>`. */
  url: string;
  /** Lose the welcome of the next connection; `onDrop` runs before its sockets are destroyed. */
  arm(onDrop?: () => Promise<void> | void): void;
  /** Send the connections accepted from now on to another server (same path). */
  retarget(target: string): void;
  /** Resolves when an armed welcome was dropped (after `onDrop` and the destroy). */
  dropped(): Promise<void>;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export async function startWelcomeDropper(target: string): Promise<WelcomeDropper> {
  let t = new URL(target);
  const sockets = new Set<Socket>();
  let armed: { onDrop?: () => Promise<void> | void } | undefined;
  let done: (() => void) | undefined;
  let droppedP = new Promise<void>((r) => (done = r));
  let connections = 0;

  const server: Server = createServer((client) => {
    connections++;
    const upstream = createConnection({ host: t.hostname, port: Number(t.port) });
    sockets.add(client).add(upstream);
    const mine = armed;
    armed = undefined;
    let headersSeen = false;
    let header = Buffer.alloc(0);
    let dropping = false;
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (dropping) return;
      if (!mine) return void client.write(d);
      if (!headersSeen) {
        header = Buffer.concat([header, d]);
        const at = header.indexOf(HEADER_END);
        if (at < 0) return;
        headersSeen = true;
        client.write(header.subarray(0, at + HEADER_END.length));
        d = header.subarray(at + HEADER_END.length);
        if (d.length === 0) return;
      }
      // The first frame after the upgrade: the welcome. Lose it.
      dropping = true;
      client.pause();
      void Promise.resolve()
        .then(() => mine.onDrop?.())
        .finally(() => {
          end();
          const d2 = done;
          droppedP = new Promise<void>((r) => (done = r));
          d2?.();
        });
    });
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}${t.pathname}`,
    retarget(to) {
      t = new URL(to);
    },
    arm(onDrop) {
      armed = { onDrop };
    },
    dropped: () => droppedP,
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

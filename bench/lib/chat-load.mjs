// A steady chat load on the demo server (examples/chat): protocol clients (the library's client over `ws`) in the
// three rooms, plain sockets in the lobby, each saying something on a timer. Used by bench/dashboard-cost.mjs and
// scripts/dashboard-screenshot.mjs. Loopback only.
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../dist/client.js';

const ROOMS = ['lobby', 'random', 'dev'];

async function openPlainSocket(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return ws;
}

/** A library client, open and (unless `room` is the lobby, where everyone starts) in `room:<room>`. */
export async function openProtocolClient(url, room = 'lobby') {
  const client = new StabilizerClient(url, { WebSocket });
  await new Promise((resolve) => {
    const off = client.on('open', () => {
      off();
      resolve();
    });
  });
  if (room !== 'lobby') await client.subscribe(`room:${room}`);
  return client;
}

/**
 * Connect `protocol` library clients and `plain` raw sockets to `url` (ws://127.0.0.1:port/ws); every client says
 * one line every `sayEveryMs` (spread out). Returns `{ clients, plainSockets, stop() }`.
 */
export async function startChatLoad(url, { protocol = 60, plain = 20, idle = 0, sayEveryMs = 1000 } = {}) {
  const clients = [];
  for (let i = 0; i < protocol; i++) {
    const room = ROOMS[i % ROOMS.length];
    clients.push({ client: await openProtocolClient(url, room), room });
  }
  // Plain sockets that say nothing: the heartbeat pings them (a protocol client acks what it gets, which counts as
  // a sign of life, so a busy one is never pinged), and `ws` answers with a pong.
  const idleSockets = [];
  for (let i = 0; i < idle; i++) idleSockets.push(await openPlainSocket(url));
  const plainSockets = [];
  for (let i = 0; i < plain; i++) plainSockets.push(await openPlainSocket(url));
  const timers = [];
  let stopped = false;
  const startTimer = (fn, i, n) =>
    timers.push(
      setTimeout(
        () => !stopped && timers.push(setInterval(fn, sayEveryMs)),
        Math.floor((sayEveryMs * i) / n),
      ),
    );
  clients.forEach(({ client, room }, i) =>
    startTimer(() => client.send({ type: 'say', room, text: `hello from ${i}` }), i, clients.length),
  );
  plainSockets.forEach((ws, i) =>
    startTimer(
      () => ws.readyState === WebSocket.OPEN && ws.send(`plain ${i} says hi`),
      i,
      plainSockets.length,
    ),
  );
  return {
    clients,
    plainSockets,
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t); // clears timeouts too
      for (const { client } of clients) client.close();
      for (const ws of idleSockets) ws.close();
      for (const ws of plainSockets) ws.close();
    },
  };
}

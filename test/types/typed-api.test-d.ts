/**
 * Type tests of the typed API (issue 11). This file is compiled, not run: `npm run typecheck` (tsc over `test/`)
 * fails if an `expectTypeOf` does not hold, or if a line under `@ts-expect-error` compiles, i.e. if a wrong
 * payload shape became accepted.
 */
import type { IncomingMessage, Server } from 'node:http';
import { expectTypeOf } from 'vitest';
import type { WebSocket } from 'ws';
import {
  WebSocketConnectionManager,
  type AttachOptions,
  type AuthResult,
  type HelloAuth,
  type BroadcastResult,
  type ClientInfo,
  type Listener,
  type ManagerEvents,
  type SendOutcome,
} from '../../src/server/index.js';
import { StabilizerClient } from '../../src/client/index.js';
import { attachExpress } from '../../src/adapters/express.js';
import type { FastifyStabilizerOptions } from '../../src/adapters/fastify.js';
import { createHonoStabilizer, type FetchApp } from '../../src/adapters/hono.js';
import { StabilizerWsAdapter } from '../../src/adapters/nestjs.js';

/** What clients send. */
type ChatCommand = { type: 'say'; room: string; text: string } | { type: 'typing'; room: string };
/** What the server sends. */
type ChatEvent = { type: 'chat'; from: string; text: string };
/** Per-connection data. */
type User = { userId: string; name: string };

declare const server: Server;
declare const socket: WebSocket;
declare const fetchApp: FetchApp;

// ------------------------------------------------------------------ typed manager

const typed = new WebSocketConnectionManager<ChatCommand, ChatEvent, User>(
  {},
  {
    authorizeResume: (ctx) => {
      expectTypeOf(ctx.data).toEqualTypeOf<User | undefined>();
      expectTypeOf(ctx.session.data).toEqualTypeOf<User | undefined>();
      return ctx.data?.userId === ctx.session.data?.userId;
    },
    authorizeSubscribe: (ctx) => {
      expectTypeOf(ctx.data).toEqualTypeOf<User | undefined>();
      return ctx.topic.startsWith(`user:${ctx.data?.userId}`);
    },
  },
);

typed.on('message', (e) => {
  expectTypeOf(e.data).toEqualTypeOf<ChatCommand>();
  if (e.data.type === 'say') expectTypeOf(e.data.text).toBeString();
});
typed.on('connect', (e) => {
  expectTypeOf(e.data).toEqualTypeOf<User | undefined>();
});
// Events that carry neither `In` nor `Data` are unchanged.
typed.on('disconnect', (e) => expectTypeOf(e.code).toBeNumber());

// Out: the same type flows into sendToClient, broadcast and publish.
expectTypeOf(typed.sendToClient('a', { type: 'chat', from: 'b', text: 'hi' })).toEqualTypeOf<SendOutcome>();
expectTypeOf(typed.broadcast({ type: 'chat', from: 'b', text: 'hi' })).toEqualTypeOf<BroadcastResult>();
// Cluster-wide operations by client id: the synchronous join/leave keep returning a boolean; the async ones resolve
// once the operation took effect, and fetchClient carries the manager's `Data`.
expectTypeOf(typed.join('a', 'room')).toEqualTypeOf<boolean>();
expectTypeOf(typed.leave('a', 'room')).toEqualTypeOf<boolean>();
expectTypeOf(typed.clusterJoin('a', 'room', { timeoutMs: 1000 })).toEqualTypeOf<Promise<boolean>>();
expectTypeOf(typed.clusterLeave('a', 'room')).toEqualTypeOf<Promise<boolean>>();
expectTypeOf(typed.clusterDisconnect('a', 4503, 'banned')).toEqualTypeOf<Promise<boolean>>();
expectTypeOf(typed.fetchClient('a')).toEqualTypeOf<Promise<ClientInfo<User> | undefined>>();
expectTypeOf(
  typed.publish('room:1', { type: 'chat', from: 'b', text: 'hi' }),
).toEqualTypeOf<BroadcastResult>();
// @ts-expect-error a misspelt property is not an `Out`
typed.sendToClient('x', { tpye: 'oops' });
// @ts-expect-error a missing property
typed.sendToClient('x', { type: 'chat', from: 'b' });
// @ts-expect-error a wrong discriminant
typed.broadcast({ type: 'shout', from: 'b', text: 'hi' });
// @ts-expect-error a wrong property type
typed.publish('room:1', { type: 'chat', from: 'b', text: 42 });
// @ts-expect-error a string is an `Out` only if `Out` includes it
typed.sendToClient('x', 'hello');
// @ts-expect-error numbers too
typed.broadcast(42);
// Bytes go as a binary frame whatever `Out` is, as with the client's `send`.
typed.sendToClient('x', Buffer.from('hi'));
typed.broadcast(new Uint8Array([1, 2]), { exclude: ['x'] });
typed.publish('room:1', new ArrayBuffer(2));

// Data: the authenticate result, connect's options.
typed.attach(server, { authenticate: () => ({ data: { userId: 'u1', name: 'Ann' }, principal: 'u1' }) });
typed.attach(server, { authenticate: async () => false });
typed.attach(server, { authenticate: () => true }); // accepted without data: `connect` sees `undefined`
// @ts-expect-error `data` must be a `User`
typed.attach(server, { authenticate: () => ({ data: { userId: 1 } }) });
// @ts-expect-error also from createUpgradeHandler
typed.createUpgradeHandler({ authenticate: async () => ({ data: 'ann' }) });
void typed.connect(socket, 'a', { data: { userId: 'u1', name: 'Ann' } });
// @ts-expect-error connect's `data` must be a `User`
void typed.connect(socket, 'a', { data: { name: 'Ann' } });
expectTypeOf<AttachOptions<User>['authenticate']>().toEqualTypeOf<
  ((request: IncomingMessage, hello?: HelloAuth) => AuthResult<User> | Promise<AuthResult<User>>) | undefined
>();
// The client's `auth` type flows into the hook's second argument.
typed.attach<{ token: string }>(server, {
  authenticate: (_req, hello) => {
    expectTypeOf(hello?.auth).toEqualTypeOf<{ token: string } | undefined>();
    return hello?.auth?.token === 'ok' ? { data: { userId: 'u1', name: 'Ann' } } : 'expired';
  },
});

// @ts-expect-error `Out` must be something the manager can send (`undefined` is not)
export type NotSendable = WebSocketConnectionManager<unknown, undefined>;

// ------------------------------------------------------------------ listeners may return anything

const untyped = new WebSocketConnectionManager();
// The one-line echo that was TS2322 while a listener had to return `void | Promise<void>`.
untyped.on('message', (e) => untyped.broadcast(e.data as string));
untyped.on('connect', (e) => untyped.sendToClient(e.clientId, 'welcome'));
untyped.on('message', async (e) => {
  await Promise.resolve(e.clientId);
  return 1;
});
expectTypeOf<Listener<ManagerEvents['message']>>().returns.toBeUnknown();

// ------------------------------------------------------------------ defaults keep the untyped API

untyped.on('message', (e) => expectTypeOf(e.data).toBeUnknown());
untyped.on('connect', (e) => expectTypeOf(e.data).toBeUnknown());
untyped.sendToClient('a', 'text');
untyped.sendToClient('a', { any: ['json', 1] });
untyped.broadcast(7);
untyped.publish('t', null);
untyped.attach(server, { authenticate: () => ({ data: 'anything', clientId: 'a' }) });
void untyped.connect(socket, undefined, { data: 42 });
expectTypeOf<ManagerEvents['message']['data']>().toBeUnknown();

// ------------------------------------------------------------------ adapters take a typed manager

attachExpress(typed, server, {
  authenticate: (req) => ({ data: { userId: String(req.headers['x-user']), name: 'n' } }),
});
// @ts-expect-error the Express adapter's authenticate returns the manager's `Data`
attachExpress(typed, server, { authenticate: () => ({ data: { id: 1 } }) });
const hono = createHonoStabilizer(typed, { app: fetchApp });
hono.upgrade(() => ({ data: { userId: 'u', name: 'n' } }));
// @ts-expect-error the Hono adapter's authenticate returns the manager's `Data`
hono.upgrade(() => ({ data: 'u' }));
// Fastify and NestJS carry the manager's types too (test/types/adapters.test-d.ts); untyped options still take it.
export const fastifyOptions: FastifyStabilizerOptions = { manager: typed };
new StabilizerWsAdapter(server, { manager: typed });
// And a typed manager goes wherever an untyped one is expected.
export const asUntyped: WebSocketConnectionManager = typed;

// ------------------------------------------------------------------ the client mirrors the manager

const client = new StabilizerClient<ChatEvent, ChatCommand>('ws://localhost/');
client.on('message', (event) => expectTypeOf(event).toEqualTypeOf<ChatEvent>());
const seen: ChatEvent[] = [];
client.on('message', (event) => seen.push(event)); // the client's listeners may return anything too
void client.send({ type: 'say', room: 'r', text: 'hi' });
void client.send(new Uint8Array([1])); // bytes, as on the server
// @ts-expect-error the client's `Out` is the server's `In`
void client.send({ type: 'say', room: 'r' });
// @ts-expect-error a misspelt property, volatile too
client.sendVolatile({ tpye: 'typing', room: 'r' });

/**
 * Type tests of the Fastify and NestJS adapters with a typed manager (compiled by `npm run typecheck`, not run).
 * The Fastify decorator typed by declaring `FastifyStabilizerTypes` is checked in an isolated consumer project
 * (test/e2e/consumer-types.test.ts): a module augmentation here would retype it for every test file.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { expectTypeOf } from 'vitest';
import { z } from 'zod';
import {
  fastifyStabilizer,
  type FastifyStabilizerAppOptions,
  type FastifyStabilizerManager,
  type FastifyStabilizerOptions,
} from '../../src/adapters/fastify.js';
import { SessionSocket, StabilizerWsAdapter } from '../../src/adapters/nestjs.js';
import { WebSocketConnectionManager, type SendData, type SendOutcome } from '../../src/server/index.js';

type ChatCommand = { event: 'say'; data: { text: string } };
type ChatEvent = { event: 'chat'; data: { from: string; text: string } };
type User = { userId: string };

declare const server: Server;
declare const app: FastifyInstance;
const typed = new WebSocketConnectionManager<ChatCommand, ChatEvent, User>();

// ------------------------------------------------------------------ Fastify

// The options are generic in the manager's types: authenticate, hooks and config.schema follow them.
export const fastifyTyped: FastifyStabilizerOptions<ChatCommand, ChatEvent, User> = {
  manager: typed,
  path: '/ws',
  authenticate: () => ({ data: { userId: 'u1' } }),
  hooks: { authorizeResume: (ctx) => ctx.data?.userId === ctx.session.data?.userId },
};
export const fastifyBadData: FastifyStabilizerOptions<ChatCommand, ChatEvent, User> = {
  // @ts-expect-error authenticate must return the manager's Data
  authenticate: () => ({ data: { id: 1 } }),
};
export const fastifyBadSchema: FastifyStabilizerOptions<ChatCommand, ChatEvent, User> = {
  // @ts-expect-error config.schema must produce the manager's In
  config: { schema: { inbound: z.object({ event: z.literal('other') }) } },
};
// Without a declaration (FastifyStabilizerTypes), the decorator and the plugin's options are untyped.
expectTypeOf(app.websocketStabilizer).toEqualTypeOf<WebSocketConnectionManager>();
expectTypeOf<FastifyStabilizerManager>().toEqualTypeOf<WebSocketConnectionManager>();
expectTypeOf<FastifyStabilizerAppOptions>().toEqualTypeOf<FastifyStabilizerOptions>();
void app.register(fastifyStabilizer, {
  path: '/ws',
  authenticate: (req) => {
    expectTypeOf(req).toEqualTypeOf<IncomingMessage>();
    return { data: 'anything' };
  },
});
void app.register(fastifyStabilizer, { manager: typed }); // a typed manager is accepted
// A typed manager read back from the decorator with Fastify's own getter.
expectTypeOf(
  app.getDecorator<WebSocketConnectionManager<ChatCommand, ChatEvent, User>>('websocketStabilizer'),
).toEqualTypeOf(typed);

// ------------------------------------------------------------------ NestJS

const adapter = new StabilizerWsAdapter(server, { manager: typed });
expectTypeOf(adapter).toEqualTypeOf<StabilizerWsAdapter<ChatCommand, ChatEvent, User>>();
// What `@WebSocketServer()` injects is the typed manager.
expectTypeOf(adapter.manager).toEqualTypeOf(typed);
expectTypeOf(adapter.create(0)).toEqualTypeOf(typed);
adapter.bindClientConnect(adapter.manager, (socket) => {
  expectTypeOf(socket).toEqualTypeOf<SessionSocket<ChatEvent, User>>();
  expectTypeOf(socket.data).toEqualTypeOf<User | undefined>();
  expectTypeOf(socket.send({ event: 'chat', data: { from: 'a', text: 'hi' } })).toEqualTypeOf<SendOutcome>();
  socket.send(new Uint8Array([1])); // bytes, always
  // @ts-expect-error the session socket sends the manager's Out
  socket.send({ event: 'chat', data: { text: 'no sender' } });
  socket.emit('anything', { free: 'form' }); // Nest's { event, data } envelope
});
// A gateway's handler signature with the socket typed.
export function handleConnection(client: SessionSocket<ChatEvent, User>): string | undefined {
  return client.data?.userId;
}

// The request type comes from authenticate's parameter (what the middleware adds), Data from the manager.
type SessionRequest = IncomingMessage & { session: { userId?: string } };
new StabilizerWsAdapter(server, {
  manager: typed,
  authenticate: (req: SessionRequest) =>
    req.session.userId ? { data: { userId: req.session.userId } } : false,
});
new StabilizerWsAdapter(server, {
  manager: typed,
  // @ts-expect-error authenticate must return the manager's Data
  authenticate: () => ({ data: { id: 1 } }),
});

// Built by the adapter: In inferred from config.schema, Data from the hooks.
const built = new StabilizerWsAdapter(server, {
  config: { schema: { inbound: z.object({ event: z.string(), data: z.unknown() }) } },
  hooks: { authorizeSubscribe: (ctx: { data: User | undefined; topic: string }) => ctx.data !== undefined },
});
built.manager.on('message', (e) => expectTypeOf(e.data.event).toBeString());
expectTypeOf(built.manager).toEqualTypeOf<
  WebSocketConnectionManager<{ event: string; data: unknown }, SendData, User>
>();

// Untyped by default.
const untyped = new StabilizerWsAdapter(server);
expectTypeOf(untyped.manager).toEqualTypeOf<WebSocketConnectionManager>();

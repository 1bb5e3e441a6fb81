/**
 * Type tests of request/reply (issue 11): compiled by `npm run typecheck`, not run. A line under
 * `@ts-expect-error` that compiles (a wrong request or reply shape accepted) fails the check.
 */
import { expectTypeOf } from 'vitest';
import {
  StabilizerError,
  WebSocketConnectionManager,
  type ReplyOf,
  type RequestContext,
} from '../../src/server/index.js';
import { StabilizerClient } from '../../src/client/index.js';
import { withRequests, type ClientRequests } from '../../src/client/request.js';
import { attachExpress } from '../../src/adapters/express.js';

/** Requests the client sends; the server answers. The labels are documentation; `type` tells them apart. */
interface ChatClientRequests {
  history: { request: { type: 'history'; room: string }; reply: { texts: string[] } };
  whoami: { request: { type: 'whoami' }; reply: { userId: string } };
}
/** Requests the server sends; the client answers. */
interface ChatServerRequests {
  confirm: { request: { type: 'confirm'; question: string }; reply: boolean };
}
interface ChatRpc {
  client: ChatClientRequests;
  server: ChatServerRequests;
}
type User = { userId: string };

// ------------------------------------------------------------------ server

const manager = new WebSocketConnectionManager<{ say: string }, { said: string }, User, ChatRpc>();

manager.onRequest((req, ctx) => {
  expectTypeOf(req).toEqualTypeOf<{ type: 'history'; room: string } | { type: 'whoami' }>();
  expectTypeOf(ctx).toEqualTypeOf<RequestContext<User>>();
  if (req.type === 'history') return { texts: [req.room] };
  return { userId: ctx.data?.userId ?? '' };
});
manager.onRequest(async (req) => (req.type === 'whoami' ? { userId: 'u' } : { texts: [] }));
// @ts-expect-error a reply that is no reply of the map
manager.onRequest(() => ({ texts: 'not an array' }));
// @ts-expect-error the request has no such field
manager.onRequest((req) => req.nope);

expectTypeOf(manager.request('c1', { type: 'confirm', question: 'sure?' })).toEqualTypeOf<Promise<boolean>>();
// @ts-expect-error a request the client does not answer
void manager.request('c1', { type: 'history', room: 'r' });
// @ts-expect-error a wrong field type
void manager.request('c1', { type: 'confirm', question: 1 });
void manager.request('c1', { type: 'confirm', question: 'q' }, { timeoutMs: 1000 });
// @ts-expect-error the option carries its unit
void manager.request('c1', { type: 'confirm', question: 'q' }, { timeout: 1000 });

// A manager typed with requests still passes where an untyped one is expected (adapters, helpers).
declare const app: Parameters<typeof attachExpress>[1];
attachExpress(manager, app as never);
const untypedView: WebSocketConnectionManager = manager;
void untypedView;

// Without the type parameter: any shape, replies `unknown`.
const untyped = new WebSocketConnectionManager();
untyped.onRequest((req) => {
  expectTypeOf(req).toBeUnknown();
  return { anything: true };
});
expectTypeOf(untyped.request('c1', 42)).toEqualTypeOf<Promise<unknown>>();

// A direction declared empty sends no requests.
const noServerRequests = new WebSocketConnectionManager<
  unknown,
  string,
  unknown,
  { client: ChatClientRequests; server: Record<never, never> }
>();
// @ts-expect-error this server declares no requests of its own
void noServerRequests.request('c1', { type: 'confirm', question: 'q' });

// ------------------------------------------------------------------ client

const client = new StabilizerClient<{ said: string }, { say: string }>('ws://localhost/ws');
const rpc = withRequests<ChatRpc>(client);
expectTypeOf(rpc).toEqualTypeOf<ClientRequests<ChatRpc>>();
expectTypeOf(rpc.request({ type: 'history', room: 'r1' })).toEqualTypeOf<Promise<{ texts: string[] }>>();
expectTypeOf(rpc.request({ type: 'whoami' })).toEqualTypeOf<Promise<{ userId: string }>>();
// @ts-expect-error unknown request kind
void rpc.request({ type: 'delete-everything' });
// @ts-expect-error missing field
void rpc.request({ type: 'history' });
rpc.onRequest((q) => {
  expectTypeOf(q).toEqualTypeOf<{ type: 'confirm'; question: string }>();
  return q.question.length > 0;
});
// @ts-expect-error the server expects a boolean
rpc.onRequest(() => 'yes');

const anyRpc = withRequests(client);
expectTypeOf(anyRpc.request({ whatever: 1 })).toEqualTypeOf<Promise<unknown>>();

// The reply helper on its own.
expectTypeOf<ReplyOf<ChatClientRequests, { type: 'whoami' }>>().toEqualTypeOf<{ userId: string }>();

// Errors carry the request codes.
declare const err: StabilizerError;
if (err.code === 'REQUEST_TIMEOUT' || err.code === 'HANDLER_ERROR' || err.code === 'NO_HANDLER') void err;

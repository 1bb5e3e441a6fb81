/**
 * `websocket-stabilizer/client/request`: request/reply for {@link StabilizerClient} (PROTOCOL.md §2.8), kept out
 * of the core client so that its bundle stays small. `withRequests(client)` adds `request()` (answered by the
 * server's `manager.onRequest`) and `onRequest()` (answers the server's `manager.request`).
 */
import type { DataMessage } from '../protocol/messages.js';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  RequestErrorCode,
  type AnyReplyOf,
  type AnyRequestTypes,
  type ReplyOf,
  type RequestOf,
  type RequestOptions,
  type RequestsOf,
  type RequestTypes,
} from '../protocol/requests.js';
import type { StabilizerClient } from './client.js';
import { ClientError } from './errors.js';

export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  RequestErrorCode,
  type AnyReplyOf,
  type AnyRequests,
  type AnyRequestTypes,
  type ReplyOf,
  type RequestOf,
  type RequestOptions,
  type RequestPair,
  type RequestsOf,
  type RequestTypes,
} from '../protocol/requests.js';

/** Answers a server request: the return value (or what the promise resolves to) is the reply. */
export type ClientRequestHandler<Q = unknown, R = unknown> = (request: Q) => R | Promise<R>;

/** Request/reply on one client; see {@link withRequests}. */
export interface ClientRequests<Rpc extends RequestTypes = AnyRequestTypes> {
  /**
   * Sends a request and resolves with the reply of the server's `onRequest` handler. The request is a reliable
   * message (queued while offline, resent after a resume), and the server runs its handler once for it. Rejects
   * with a {@link ClientError}:
   * - `REQUEST_TIMEOUT` when no reply came within `timeoutMs` (default 30 s; the clock runs while queued). The
   *   server may still handle the request (once); its reply is then dropped;
   * - `HANDLER_ERROR` when the server's handler threw, `NO_HANDLER` when the server has none;
   * - `SESSION_LOST` when the session was replaced (`fresh`) before the reply;
   * - `CLIENT_CLOSED` when the client is or becomes closed first;
   * - `QUEUE_FULL` / `MESSAGE_TOO_BIG` as for `send()`;
   *
   * or with a `TypeError` for bytes or a value that is not JSON. Ignoring the promise is safe.
   */
  request<Q extends RequestOf<RequestsOf<Rpc, 'client'>>>(
    data: Q,
    options?: RequestOptions,
  ): Promise<ReplyOf<RequestsOf<Rpc, 'client'>, Q>>;
  /**
   * Answers the server's requests (`manager.request`). It runs once per request, even across resumes. A throw or
   * rejection answers `HANDLER_ERROR` (with a generic message); without a handler the client answers
   * `NO_HANDLER`. A second call replaces the handler.
   */
  onRequest(
    handler: ClientRequestHandler<
      RequestOf<RequestsOf<Rpc, 'server'>>,
      AnyReplyOf<RequestsOf<Rpc, 'server'>>
    >,
  ): void;
  /** Requests sent and not yet answered. */
  readonly pending: number;
}

interface Pending {
  ok(reply: unknown): void;
  fail(err: Error): void;
  /** The server acked the request: it has it, and only its session can answer it. */
  acked?: boolean;
}

/** The core client's hooks for this module (see `send` and `_data` in client.ts). */
interface Hooks {
  send(payload: unknown, fields: string): Promise<void>;
  on(event: 'rpc', fn: (m: DataMessage) => void): () => void;
}

const attached = new WeakMap<object, ClientRequests>();
const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isBytes = (v: unknown): boolean => v instanceof ArrayBuffer || ArrayBuffer.isView(v);

/**
 * Request/reply on `client`. `Rpc` declares the request and reply shapes of both directions, like the server's
 * `WebSocketConnectionManager<In, Out, Data, Rpc>` (the same type on both sides). Calling it again on the same
 * client returns the same object.
 *
 * ```ts
 * const rpc = withRequests<ChatRpc>(client);
 * const { texts } = await rpc.request({ type: 'history', room: 'r1' }, { timeoutMs: 5000 });
 * rpc.onRequest((q) => ({ ok: true }));
 * ```
 */
export function withRequests<Rpc extends RequestTypes = AnyRequestTypes>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any typed client
  client: StabilizerClient<any, any>,
): ClientRequests<Rpc> {
  const known = attached.get(client);
  if (known) return known as ClientRequests<Rpc>;
  const core = client as unknown as Hooks;
  const pending = new Map<number, Pending>();
  let lastId = 0;
  let handler: ClientRequestHandler | undefined;

  const reply = (id: number, data: unknown, code?: string): void => {
    const fields = `,"r":${id}${code ? `,"e":"${code}"` : ''}`;
    core.send(data ?? null, fields).catch((err: unknown) => {
      // Not JSON (or bytes): say so instead of leaving the server waiting for its timeout.
      if (err instanceof TypeError)
        void core.send('request handler failed', `,"r":${id},"e":"HANDLER_ERROR"`);
    });
  };

  const answer = (id: number, data: unknown): void => {
    const h = handler;
    if (!h) return reply(id, 'no request handler', RequestErrorCode.NoHandler);
    new Promise((ok) => ok(h(data))).then(
      (value) =>
        isBytes(value)
          ? reply(id, 'request handler failed', RequestErrorCode.HandlerError)
          : reply(id, value),
      () => reply(id, 'request handler failed', RequestErrorCode.HandlerError),
    );
  };

  core.on('rpc', (m) => {
    if (isId(m.q)) return answer(m.q, m.p);
    const p = isId(m.r) ? pending.get(m.r) : undefined;
    if (!p) return; // a late reply (the request timed out) or a stray one
    if (m.e === undefined) p.ok(m.p);
    else {
      const code = m.e === RequestErrorCode.NoHandler ? m.e : RequestErrorCode.HandlerError;
      p.fail(new ClientError(code, `server answered ${m.e}: ${String(m.p)}`));
    }
  });
  // A fresh session cannot answer what the old one acked. Unacked requests are resent (or were rejected with
  // SESSION_LOST by the outbox if they had been written).
  client.on('fresh', () => {
    const lost = new ClientError('SESSION_LOST', 'session lost before the reply');
    for (const p of [...pending.values()]) if (p.acked) p.fail(lost);
  });
  client.on('close', ({ code, willReconnect }) => {
    if (willReconnect) return;
    const closed = new ClientError('CLIENT_CLOSED', `client closed (${code})`);
    for (const p of [...pending.values()]) p.fail(closed);
  });

  const api: ClientRequests = {
    request(data, options = {}) {
      const id = ++lastId;
      const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
      const promise = new Promise<unknown>((ok, fail) => {
        if (isBytes(data)) throw new TypeError('requests carry JSON, not bytes');
        let timer: ReturnType<typeof setTimeout> | undefined;
        const settle = (): boolean => {
          clearTimeout(timer);
          return pending.delete(id);
        };
        const p: Pending = {
          ok(reply) {
            if (settle()) ok(reply);
          },
          fail(err) {
            if (settle()) fail(err);
          },
        };
        pending.set(id, p);
        if (timeoutMs > 0) {
          timer = setTimeout(
            () => p.fail(new ClientError(RequestErrorCode.RequestTimeout, `no reply within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }
        core.send(data, `,"q":${id}`).then(() => (p.acked = true), p.fail);
      });
      promise.catch(() => {});
      return promise;
    },
    onRequest(h) {
      handler = h;
    },
    get pending() {
      return pending.size;
    },
  };
  attached.set(client, api);
  return api as ClientRequests<Rpc>;
}

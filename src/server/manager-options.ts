import type { AuthResult } from './upgrade/auth-result.js';
import type { AuthorizeSubscribe } from './topics/membership.js';
import type { AuthorizeResume } from './session/resume.js';
import type { TracingOptions } from './operations/tracing.js';

/** Options of `connect`; `Data` is the manager's. */
export interface ConnectOptions<Data = unknown> {
  /** Remote IP, for logs and the per-IP limit. */
  remoteAddress?: string;
  /**
   * Whether `remoteAddress` is known to be the client's own address, not maybe a proxy's. The default
   * `maxSessionsPerIp` counts only such addresses. `attach` sets it to `false` for a loopback or private peer that
   * no trusted proxy forwarded (see `trustProxy`).
   * @default true
   */
  clientAddress?: boolean;
  /**
   * Application data (e.g. the authenticated user), echoed in `connect` events, `authorizeResume` and
   * `authorizeSubscribe`.
   * @default undefined
   */
  data?: Data;
  /**
   * The stable identity of the authenticated user (e.g. a user id). A protocol session remembers the principal of
   * the connection that created it, and a resume from a connection with another principal (or with none, when the
   * session has one, and vice versa) is answered `fresh` with reason `token-rejected`.
   * `maxSessionsPerPrincipal` counts sessions by it.
   * @default undefined (no principal: resumable only by connections without one)
   */
  principal?: string;
  /**
   * Protocol mode: authenticate at the `hello` instead. Called with the `hello`'s `auth` field before any token
   * is read; an object result sets the client id, `data` and `principal` (over the ones above), and a refusal
   * closes with 4504 (`false`), 4505 (`'expired'`), 4503 (a thrown status 403), 4504 (another thrown 4xx) or
   * 1011 (another throw). `attach` sets it for clients that offer `stabilizer.auth`.
   * @default undefined (no check at the hello)
   */
  authenticateHello?: (auth: unknown) => AuthResult<Data> | Promise<AuthResult<Data>>;
}

/** Server-wide options that are functions, so they stay out of the validated config. `Data` is the manager's. */
export interface ManagerHooks<Data = unknown> {
  /** Protocol mode: re-check authorization when a session resumes. Refusal closes with 4503. */
  authorizeResume?: AuthorizeResume<Data>;
  /**
   * Protocol mode: may this client subscribe to this topic itself? Without the hook, client subscriptions are
   * refused (`TOPIC_FORBIDDEN`); the server's own `join` needs no permission.
   */
  authorizeSubscribe?: AuthorizeSubscribe<Data>;
  /**
   * OpenTelemetry spans (`ws.upgrade`, `ws.handshake`/`ws.resume`, `ws.publish`/`ws.broadcast`), with the trace
   * context of a client's `hello` propagated into `connect` handlers: `{ api }` where `api` is
   * `@opentelemetry/api` (`import * as otel from '@opentelemetry/api'`).
   * @default undefined (no tracing, and nothing of OpenTelemetry is touched)
   */
  tracing?: TracingOptions;
}

/** What `getStats()` returns: counts for dashboards and `GET /stats`. */
export interface ManagerStats {
  connections: number;
  handshaking: number;
  sessions: number;
  detachedSessions: number;
  /** Estimated bytes held by detached sessions (replay buffers plus overhead), against `maxDetachedSessionBytes`. */
  detachedSessionBytes: number;
  backend: string;
  shuttingDown: boolean;
  /** `drain()` was called: readiness is false, connections still served. */
  draining: boolean;
}

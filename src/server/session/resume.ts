import { ErrorCode } from '../../protocol/error-codes.js';
import type { FreshReason, HelloMessage } from '../../protocol/messages.js';
import type { ReplayEntry, ReplayLimits } from '../../backends/replay-buffer.js';
import type { SessionRecord } from '../../backends/types.js';
import type { StorageBackend } from '../storage-backend.js';
import { StabilizerError } from '../errors.js';
import type { Logger } from '../operations/logger.js';
import type { ReconnectTokenService, VerifiedToken } from './tokens.js';

/** Context handed to the application's `authorizeResume` hook; `Data` is the manager's. */
export interface ResumeAuthorizationContext<Data = unknown> {
  /** The session (client id) the token resumes. */
  clientId: string;
  /** The resuming connection's remote address. */
  remoteAddress: string | undefined;
  /** What the `authenticate` hook returned as `data` for the resuming connection, if anything. */
  data: Data | undefined;
  /** What the `authenticate` hook returned as `principal` for the resuming connection. */
  principal: string | undefined;
  /**
   * The session being resumed, as its creator's connection had it. `principal` always equals the resuming one (a
   * mismatch is refused before the hook runs). On the Redis backend `data` is the JSON round trip of the creator's.
   */
  session: { data: Data | undefined; principal: string | undefined };
}

/** Re-checks authorization on resume. Return `false` to refuse (close 4503); resume never bypasses it. */
export type AuthorizeResume<Data = unknown> = (
  ctx: ResumeAuthorizationContext<Data>,
) => boolean | Promise<boolean>;

/** How a resume is answered. All or nothing: `replay` holds the whole gap. */
export type ResumePlan =
  | { kind: 'resumed'; session: SessionRecord; lastSeq: number; replay: ReplayEntry[] }
  | { kind: 'fresh'; reason: FreshReason; replayed?: boolean };
/**
 * What a `hello` leads to, before the replay is planned (see {@link planReplay}). `fresh` with `replayed`: the
 * token was authentic but already used, so the fresh session must not replace any existing one. `stale`: an
 * abandoned connection attempt (its token was used, its session lives on): refused, nothing touched.
 */
export type HelloOutcome =
  | { kind: 'found'; session: SessionRecord; lastSeq: number }
  | { kind: 'fresh'; reason: FreshReason; replayed?: boolean }
  | { kind: 'forbidden' }
  | { kind: 'stale' };

/** The connection a `hello` arrived on. */
export interface HelloContext {
  /** The connection's own id: the `authenticate` hook's `clientId`, or a random one. */
  clientId: string;
  remoteAddress: string | undefined;
  data: unknown;
  principal: string | undefined;
}

export interface ResumeDeps {
  tokens: ReconnectTokenService;
  backend: StorageBackend;
  limits: ReplayLimits;
  log: Logger;
  authorizeResume: AuthorizeResume | undefined;
  /** The token's nonce was claimed for this hello (see `ProtocolHandler` for the confirmation rule). */
  onClaimed?: (nonce: string) => void;
  /** A nonce is spent for good (its token's successor is in use): a connection holding it must not give it back. */
  onSpent?: (nonce: string) => void;
  /** Whether an already-claimed nonce may be taken over (its resume was never confirmed by the client). */
  reclaim?: (nonce: string) => boolean;
  /**
   * Whether the nonce this hello claimed was spent for good meanwhile (`onSpent`: the token its resume issued
   * elsewhere is in use). The hello is then an attempt its client gave up, and stale.
   */
  overtaken?: () => boolean;
}

function rejected(deps: ResumeDeps, ctx: HelloContext, why: string, clientId?: string): HelloOutcome {
  deps.log.warn(
    { event: 'token.rejected', code: why, clientId, remoteAddress: ctx.remoteAddress },
    'resume token rejected',
  );
  return { kind: 'fresh', reason: why === ErrorCode.TokenExpired ? 'expired' : 'token-rejected' };
}

/**
 * Decide how to answer a `hello`: authenticate the token, check that the resuming connection has the session's
 * principal (before the nonce is consumed, so another user cannot burn the owner's token), consume the nonce
 * (single use), re-check authorization, find the session incarnation the token was issued for. Pure decision;
 * the manager applies it synchronously so that nothing sent meanwhile is lost.
 */
export async function decideHello(
  hello: HelloMessage,
  ctx: HelloContext,
  deps: ResumeDeps,
): Promise<HelloOutcome> {
  if (hello.token === undefined) return { kind: 'fresh', reason: 'new' };
  let verified: VerifiedToken;
  try {
    verified = deps.tokens.authenticate(hello.token, hello.sessionId);
  } catch (err) {
    return rejected(deps, ctx, err instanceof StabilizerError ? err.code : 'UNKNOWN');
  }
  const { clientId, incarnation } = verified;
  // A token without an incarnation is not a resume token (e.g. generateReconnectToken's).
  if (incarnation === undefined) return rejected(deps, ctx, 'no-incarnation', clientId);
  const info = await deps.backend.inspectSession(clientId);
  const mine = info?.incarnation === incarnation ? info : undefined;
  if (mine && mine.principal !== ctx.principal) return rejected(deps, ctx, 'principal-mismatch', clientId);
  try {
    await deps.tokens.consume(verified, deps.reclaim);
    deps.onClaimed?.(verified.nonce);
    // Its predecessor may have been given back (a welcome lost, as it seemed): this token's use proves it was not.
    if (verified.parentNonce !== undefined) {
      deps.onSpent?.(verified.parentNonce);
      await deps.tokens.spend(verified.parentNonce, verified.expiresAtMs);
    }
  } catch (err) {
    const code = err instanceof StabilizerError ? err.code : 'UNKNOWN';
    if (code === ErrorCode.BackendUnavailable) throw err; // the nonce store is down: retry later, keep the session
    if (code !== ErrorCode.TokenReplayed) return rejected(deps, ctx, code, clientId);
    // Used before: a hello from an attempt its client gave up (or a stolen token). While a session lives under the
    // token's id or this connection's id, it must not be replaced: refuse this socket, touch nothing.
    const held =
      info !== undefined ||
      (ctx.clientId !== clientId && (await deps.backend.inspectSession(ctx.clientId)) !== undefined);
    if (held) {
      deps.log.warn(
        { event: 'resume.stale', clientId, remoteAddress: ctx.remoteAddress },
        'stale hello: token already used',
      );
      return { kind: 'stale' };
    }
    return { ...rejected(deps, ctx, code, clientId), replayed: true } as HelloOutcome;
  }
  if (mine) {
    const session = { data: mine.data, principal: mine.principal };
    if (deps.authorizeResume && !(await deps.authorizeResume({ ...ctx, clientId, session })))
      return { kind: 'forbidden' };
  }
  // The client came back with a newer token while this hello waited (e.g. in authorizeResume): never claim the
  // session from it (a claim would take the session's generation), and never replace it.
  if (deps.overtaken?.()) return { kind: 'stale' };
  const lookup = await deps.backend.findSession(clientId, deps.limits, incarnation);
  if (deps.overtaken?.()) return { kind: 'stale' };
  // Overtaken by a newer hello for the same session: this one is the older attempt, and must not replace it.
  if (!lookup.found) {
    return lookup.reason === 'superseded' ? { kind: 'stale' } : { kind: 'fresh', reason: lookup.reason };
  }
  // Not inspected as ours (a race with a create cannot produce this incarnation): never resume unchecked.
  if (!mine) return { kind: 'fresh', reason: 'unknown-session' };
  return { kind: 'found', session: lookup.session, lastSeq: hello.lastSeq ?? 0 };
}

/**
 * Compute the replay for `lastSeq` on `session`, or `fresh`/`gap` if any message after it is gone. Called
 * synchronously right before the socket is attached, so the replay holds every message sent during the awaits.
 */
export function planReplay(session: SessionRecord, lastSeq: number, backend: StorageBackend): ResumePlan {
  if (backend.getSession(session.id) !== session) return { kind: 'fresh', reason: 'expired' };
  const replay = lastSeq <= session.lastSeq ? session.buffer.since(lastSeq) : undefined;
  if (!replay) return { kind: 'fresh', reason: 'gap' };
  return { kind: 'resumed', session, lastSeq, replay };
}

import { ErrorCode } from '../protocol/error-codes.js';
import type { FreshReason, HelloMessage } from '../protocol/messages.js';
import type { ReplayEntry, ReplayLimits } from '../backends/replay-buffer.js';
import type { SessionRecord, StorageBackend } from '../backends/types.js';
import { StabilizerError } from './errors.js';
import type { Logger } from './logger.js';
import type { ReconnectTokenService } from './tokens.js';

/** Context handed to the application's `authorizeResume` hook. */
export interface ResumeAuthorizationContext {
  /** The session (client id) the token resumes. */
  clientId: string;
  remoteAddress: string | undefined;
  /** What the `authenticate` hook returned for this upgrade, if any. */
  data: unknown;
}

/** Re-checks authorization on resume. Return `false` to refuse (close 4503); resume never bypasses it. */
export type AuthorizeResume = (ctx: ResumeAuthorizationContext) => boolean | Promise<boolean>;

/** How a resume is answered. All or nothing: `replay` holds the whole gap. */
export type ResumePlan =
  | { kind: 'resumed'; session: SessionRecord; lastSeq: number; replay: ReplayEntry[] }
  | { kind: 'fresh'; reason: FreshReason };
/** What a `hello` leads to, before the replay is planned (see {@link planReplay}). */
export type HelloOutcome =
  | { kind: 'found'; session: SessionRecord; lastSeq: number }
  | { kind: 'fresh'; reason: FreshReason }
  | { kind: 'forbidden' };

export interface ResumeDeps {
  tokens: ReconnectTokenService;
  backend: StorageBackend;
  limits: ReplayLimits;
  log: Logger;
  authorizeResume: AuthorizeResume | undefined;
  /** The token's nonce was claimed for this hello (see `ProtocolHandler` for the confirmation rule). */
  onClaimed?: (nonce: string) => void;
  /** Whether an already-claimed nonce may be taken over (its resume was never confirmed by the client). */
  reclaim?: (nonce: string) => boolean;
}

/**
 * Decide how to answer a `hello`: validate the token (single use), re-check authorization, find the session and
 * compute the replay. Pure decision; the manager applies it synchronously so that nothing sent meanwhile is lost.
 */
export async function decideHello(
  hello: HelloMessage,
  ctx: Omit<ResumeAuthorizationContext, 'clientId'>,
  deps: ResumeDeps,
): Promise<HelloOutcome> {
  if (hello.token === undefined) return { kind: 'fresh', reason: 'new' };
  let clientId: string;
  try {
    const verified = await deps.tokens.validate(hello.token, hello.sessionId, deps.reclaim);
    clientId = verified.clientId;
    deps.onClaimed?.(verified.nonce);
  } catch (err) {
    const code = err instanceof StabilizerError ? err.code : 'UNKNOWN';
    if (code === ErrorCode.BackendUnavailable) throw err; // the nonce store is down: retry later, keep the session
    deps.log.warn(
      { event: 'token.rejected', code, remoteAddress: ctx.remoteAddress },
      'resume token rejected',
    );
    return { kind: 'fresh', reason: code === ErrorCode.TokenExpired ? 'expired' : 'token-rejected' };
  }
  if (deps.authorizeResume && !(await deps.authorizeResume({ ...ctx, clientId })))
    return { kind: 'forbidden' };

  const lookup = await deps.backend.findSession(clientId, deps.limits);
  if (!lookup.found) return { kind: 'fresh', reason: lookup.reason };
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

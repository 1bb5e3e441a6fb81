import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode } from '../../protocol/error-codes.js';
import { StabilizerError, TokenError } from '../errors.js';
import type { ResolvedConfig } from '../config-types.js';

/** What a valid token proves. */
export interface VerifiedToken {
  clientId: string;
  keyId: string;
  expiresAtMs: number;
  /** The single-use nonce this validation consumed. */
  nonce: string;
  /**
   * Resume tokens only: the session incarnation the token was issued for (`SessionRecord.incarnation`). A token
   * resumes that incarnation and never a newer session under the same client id.
   */
  incarnation?: string;
  /**
   * Resume tokens only: the nonce of the token whose resume issued this one. Using this token spends that nonce for
   * good: a token given back after a lost welcome cannot resume once its successor was used.
   */
  parentNonce?: string;
}

/** Stores a token's nonce once; `false` means it was already used. Implemented by each storage backend. */
export type NonceClaimer = (nonce: string, expiresAtMs: number) => boolean | Promise<boolean>;

const VERSION = 'v1';
const B64URL = /^[A-Za-z0-9_-]+$/;
const SIGNATURE_BYTES = 32;

function strictBase64url(part: string): Buffer | undefined {
  if (!B64URL.test(part)) return undefined;
  const buf = Buffer.from(part, 'base64url');
  // Reject non-canonical encodings (trailing bits set): re-encoding must give the same text.
  return buf.toString('base64url') === part ? buf : undefined;
}

/**
 * Signed, single-use reconnect tokens: `v1.<keyId>.<payload>.<signature>`, where the payload is base64url JSON
 * `{ sub, exp, n, i? }` (`i`: the session incarnation of a resume token) and the signature is HMAC-SHA256 over `v1.<keyId>.<payload>`.
 */
export class ReconnectTokenService {
  constructor(
    private readonly config: ResolvedConfig['tokens'],
    private readonly claimNonce: NonceClaimer,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get enabled(): boolean {
    return this.config.secret !== undefined;
  }

  /**
   * Issue a token for `clientId`, valid for `ttlMs` (default: `tokens.ttlMs`) and usable once. `incarnation` binds a
   * resume token to one session incarnation.
   */
  generate(
    clientId: string,
    ttlMs: number = this.config.ttlMs,
    incarnation?: string,
    parentNonce?: string,
  ): string {
    const secret = this.config.secret;
    if (!secret) throw new StabilizerError(ErrorCode.TokensDisabled, 'reconnect tokens need tokens.secret');
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) {
      throw new StabilizerError(ErrorCode.InvalidConfig, 'ttlMs must be a positive integer');
    }
    const payload = Buffer.from(
      JSON.stringify({
        sub: clientId,
        exp: this.now() + ttlMs,
        n: randomBytes(16).toString('base64url'),
        i: incarnation,
        p: parentNonce,
      }),
    ).toString('base64url');
    const signed = `${VERSION}.${this.config.keyId}.${payload}`;
    const token = `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
    if (token.length > this.config.maxTokenLength) {
      throw new StabilizerError(ErrorCode.InvalidConfig, 'client id too long for tokens.maxTokenLength');
    }
    return token;
  }

  /**
   * Check a token and consume its nonce. Throws a {@link TokenError} whose code is one of `TOKEN_MALFORMED`,
   * `TOKEN_UNKNOWN_KEY`, `TOKEN_BAD_SIGNATURE`, `TOKEN_EXPIRED`, `TOKEN_REPLAYED`, `TOKEN_WRONG_SESSION`, or
   * `TOKENS_DISABLED` without a secret.
   * The nonce is consumed only once everything else checks out, so a forged token cannot burn a real one.
   * `reclaim` may accept an already-claimed nonce (a resume retried before its first attempt was confirmed).
   */
  async validate(
    token: unknown,
    expectedClientId?: string,
    reclaim?: (nonce: string) => boolean,
  ): Promise<VerifiedToken> {
    const verified = this.authenticate(token, expectedClientId);
    await this.consume(verified, reclaim);
    return verified;
  }

  /**
   * The checks of {@link validate} that need no storage (structure, key, signature, expiry, session), without
   * consuming the nonce: `consume` does that once the caller has decided the token may be used.
   */
  authenticate(token: unknown, expectedClientId?: string): VerifiedToken {
    const verified = this.verify(token);
    if (expectedClientId !== undefined && verified.clientId !== expectedClientId) {
      throw new TokenError(ErrorCode.TokenWrongSession, 'token was issued for another session');
    }
    return verified;
  }

  /** Mark a nonce as used until `expiresAtMs`, whether or not it was before (a parent token, see `parentNonce`). */
  async spend(nonce: string, expiresAtMs: number): Promise<void> {
    await this.claimNonce(nonce, expiresAtMs);
  }

  /** Consume the nonce of an authenticated token; throws `TOKEN_REPLAYED` if it was used before. */
  async consume(verified: VerifiedToken, reclaim?: (nonce: string) => boolean): Promise<void> {
    if (!(await this.claimNonce(verified.nonce, verified.expiresAtMs)) && !reclaim?.(verified.nonce)) {
      throw new TokenError(ErrorCode.TokenReplayed, 'token was already used');
    }
  }

  private verify(token: unknown): VerifiedToken {
    const malformed = (why: string) => new TokenError(ErrorCode.TokenMalformed, `malformed token: ${why}`);
    if (typeof token !== 'string' || token.length === 0) throw malformed('not a string');
    if (token.length > this.config.maxTokenLength) throw malformed('too long');
    const parts = token.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) throw malformed('bad structure');
    const [, keyId, payloadPart, sigPart] = parts as [string, string, string, string];
    const payloadBytes = strictBase64url(payloadPart);
    const signature = strictBase64url(sigPart);
    if (!payloadBytes || !signature) throw malformed('bad base64url');

    const secret = this.keyFor(keyId);
    const expected = createHmac('sha256', secret).update(`${VERSION}.${keyId}.${payloadPart}`).digest();
    if (signature.length !== SIGNATURE_BYTES || !timingSafeEqual(signature, expected)) {
      throw new TokenError(ErrorCode.TokenBadSignature, 'token signature does not match');
    }
    let claims: unknown;
    try {
      claims = JSON.parse(payloadBytes.toString('utf8'));
    } catch {
      throw malformed('bad payload');
    }
    const c = claims as { sub?: unknown; exp?: unknown; n?: unknown; i?: unknown; p?: unknown };
    if (
      typeof c.sub !== 'string' ||
      typeof c.exp !== 'number' ||
      typeof c.n !== 'string' ||
      (c.i !== undefined && typeof c.i !== 'string') ||
      (c.p !== undefined && typeof c.p !== 'string')
    ) {
      throw malformed('bad claims');
    }
    if (c.exp <= this.now()) throw new TokenError(ErrorCode.TokenExpired, 'token has expired');
    const verified: VerifiedToken = { clientId: c.sub, keyId, expiresAtMs: c.exp, nonce: c.n };
    if (c.i !== undefined) verified.incarnation = c.i;
    if (c.p !== undefined) verified.parentNonce = c.p;
    return verified;
  }

  private keyFor(keyId: string): Uint8Array {
    const { secret, previous } = this.config;
    if (!secret) throw new TokenError(ErrorCode.TokensDisabled, 'reconnect tokens need tokens.secret');
    if (keyId === this.config.keyId) return secret;
    if (previous && keyId === previous.keyId) {
      if (this.now() <= previous.acceptUntilMs) return previous.secret;
      throw new TokenError(ErrorCode.TokenUnknownKey, 'token key has been retired');
    }
    throw new TokenError(ErrorCode.TokenUnknownKey, 'token key is unknown');
  }
}

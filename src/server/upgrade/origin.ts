/**
 * The `Origin` check of every entry into a session (Cross-Site WebSocket Hijacking): a browser sends `Origin` with
 * every WebSocket upgrade, and a page on another site must not open a socket that carries the user's cookies.
 */

/** `allowedOrigins`: `'*'` turns the check off; a list adds origins to the request's own. */
export type AllowedOrigins = '*' | readonly string[];

/** The request's own origin, as the client sees it (see `ClientView`: TLS and host, forwarded only by a trusted proxy). */
export interface OwnOrigin {
  secure: boolean;
  host: string | undefined;
}

/** The verdict on an upgrade's `Origin`; a refusal carries the origin it expected, for the log. */
export type OriginVerdict = { allowed: true } | { allowed: false; expected: string | undefined };

const ALLOWED: OriginVerdict = { allowed: true };

/** Normalised allowlists, by the array given (config is resolved once). */
const normalisedLists = new WeakMap<readonly string[], Set<string>>();

/**
 * Whether an upgrade with this `Origin` header may proceed: no header (a non-browser client), `allowedOrigins`
 * `'*'` (or a list holding `'*'`), the request's own origin (scheme, host and port), or an origin in the list.
 * Origins are compared normalised (`HTTPS://App.example:443` is `https://app.example`); `null` (a sandboxed or
 * `file:` page) passes only if listed.
 */
export function checkOrigin(
  origin: string | undefined,
  own: OwnOrigin,
  allowed: AllowedOrigins | undefined,
): OriginVerdict {
  if (origin === undefined || allowed === '*') return ALLOWED;
  const seen = normaliseOrigin(origin);
  const expected = own.host === undefined ? undefined : ownOrigin(own);
  if (seen !== undefined && seen === expected) return ALLOWED;
  if (allowed !== undefined && seen !== undefined) {
    let list = normalisedLists.get(allowed);
    if (!list) {
      list = new Set(allowed.map((o) => (o === '*' ? '*' : (normaliseOrigin(o) ?? o))));
      normalisedLists.set(allowed, list);
    }
    if (list.has('*') || list.has(seen)) return ALLOWED;
  }
  return { allowed: false, expected };
}

/** `scheme://host[:port]` of the request itself (default ports left out), or undefined for a malformed host. */
function ownOrigin(own: OwnOrigin): string | undefined {
  return normaliseOrigin(`${own.secure ? 'https' : 'http'}://${own.host}`);
}

/**
 * An origin in the form browsers send (`scheme://host[:port]`, lower case, default port left out); `'null'` and
 * other opaque origins as given (lower case); undefined when it is not one (a path, user info, garbage).
 */
export function normaliseOrigin(text: string): string | undefined {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'null') return 'null';
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return trimmed; // e.g. chrome-extension://id
  if (url.username || url.password || url.search || url.hash) return undefined;
  if (url.pathname !== '/' && url.pathname !== '') return undefined;
  return url.origin;
}

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ResolvedDashboardOptions } from './options.js';

/** The cookie that the login form sets: an HMAC of the token, never the token itself. */
export const SESSION_COOKIE = 'wss_dashboard';

/**
 * Who a request is, for the dashboard: `token` (bearer header or login cookie), `hook` (`authorize` said yes),
 * `loopback` (let in without credentials by `allowLoopback`), or refused with the HTTP status to answer: 403 for a
 * cross-site request or an `authorize` that said no, 401 for missing or wrong credentials.
 */
export type AccessVerdict =
  { ok: true; by: 'token' | 'hook' | 'loopback' } | { ok: false; status: 401 | 403 };

/** The cookie value that stands for `token`. */
export function sessionCookieValue(token: string): string {
  return createHmac('sha256', token).update('websocket-stabilizer dashboard session').digest('base64url');
}

/** Constant-time string comparison (different lengths compare unequal, without a timing hint of where). */
export function sameSecret(a: string, b: string): boolean {
  const x = createHmac('sha256', 'cmp').update(a).digest();
  const y = createHmac('sha256', 'cmp').update(b).digest();
  return timingSafeEqual(x, y);
}

/**
 * A browser sends `Origin` on cross-origin fetches and on every POST. One whose host is not the request's own
 * `Host` is another site's page reaching in with the viewer's cookie: refused. A request without `Origin` (a
 * navigation, curl) passes this check.
 */
export function isCrossSite(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const host = req.headers.host;
  if (host === undefined) return true;
  try {
    return new URL(origin).host !== host.toLowerCase();
  } catch {
    return true; // `null` or garbage
  }
}

/** A host name that only ever means this machine. */
const LOCAL_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d+)?$/i;

/**
 * A peer on this machine, not relayed by a proxy on this machine, that asked for this machine by name (`Host`:
 * localhost, 127.x or [::1]; another name pointing here is DNS rebinding: another site's page on a loopback
 * address, whose `Origin` then matches its `Host`).
 */
export function isLocalRequest(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h.forwarded !== undefined || h['x-forwarded-for'] !== undefined || h['x-real-ip'] !== undefined)
    return false;
  if (!LOCAL_HOST.test(h.host ?? '')) return false;
  const address = req.socket.remoteAddress ?? '';
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hasValidToken(req: IncomingMessage, token: string): boolean {
  const auth = req.headers.authorization;
  if (auth !== undefined && /^bearer /i.test(auth)) return sameSecret(auth.slice(7).trim(), token);
  const cookie = cookieValue(req, SESSION_COOKIE);
  return cookie !== undefined && sameSecret(cookie, sessionCookieValue(token));
}

/** Decide whether `req` may see the dashboard (see {@link AccessVerdict}). */
export async function checkAccess(
  req: IncomingMessage,
  options: ResolvedDashboardOptions,
): Promise<AccessVerdict> {
  if (isCrossSite(req)) return { ok: false, status: 403 };
  if (options.token !== undefined && hasValidToken(req, options.token)) return { ok: true, by: 'token' };
  if (options.allowLoopback && isLocalRequest(req)) return { ok: true, by: 'loopback' };
  if (options.authorize) {
    if (await options.authorize(req)) return { ok: true, by: 'hook' };
    return { ok: false, status: 403 };
  }
  return { ok: false, status: 401 };
}

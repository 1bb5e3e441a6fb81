import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocketConnectionManager } from '../server/manager.js';
import {
  checkAccess,
  isCrossSite,
  sameSecret,
  SESSION_COOKIE,
  sessionCookieValue,
  type AccessVerdict,
} from './access.js';
import { runAction } from './actions.js';
import type { ResolvedDashboardOptions } from './options.js';
import { loginPage, dashboardPage } from './page.js';
import type { DashboardSampler } from './sampler.js';
import type { DashboardPoint, DashboardSnapshot } from './snapshot.js';

/** Largest request body read (login form, action): anything longer is a 413. */
const MAX_BODY_BYTES = 4096;
/** A viewer that does not read its stream is cut off past this many buffered bytes. */
const MAX_VIEWER_BACKLOG_BYTES = 1 << 20;

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not `no-referrer`: with it a browser sends `Origin: null` on the login form's POST, which the check refuses.
  'referrer-policy': 'same-origin',
};

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

function sendHtml(res: ServerResponse, status: number, html: (nonce: string) => string, extra = {}): void {
  const nonce = randomBytes(16).toString('base64');
  const body = html(nonce);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    // Only the inlined script and style of this response run; the page talks to its own origin only.
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    ...extra,
  });
  res.end(body);
}

/** Read a small body; `undefined` when it is too large (answered 413 here). */
function readBody(req: IncomingMessage, res: ServerResponse): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        sendText(res, 413, 'request body too large');
        resolve(undefined);
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= MAX_BODY_BYTES) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', () => resolve(undefined));
  });
}

/** Routes the dashboard's requests: the page, the login form's POST, the update stream and the actions. */
export class DashboardRoutes {
  private lastSnapshot: DashboardSnapshot | undefined;
  private lastFrame = '';
  private readonly streams = new Set<ServerResponse>();

  constructor(
    private readonly manager: WebSocketConnectionManager,
    private readonly options: ResolvedDashboardOptions,
    private readonly sampler: DashboardSampler,
  ) {}

  /** Whether `pathname` is one of the dashboard's. */
  owns(pathname: string): boolean {
    const base = this.options.path;
    return pathname === base || pathname.startsWith(base + '/');
  }

  async handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const base = this.options.path;
    const sub = pathname.slice(base.length) || '/';
    const method = req.method ?? 'GET';
    if (sub === '/login' && method === 'POST') return this.login(req, res);
    const verdict = await checkAccess(req, this.options);
    if (!verdict.ok) return this.refuse(req, res, verdict.status, sub);
    if (sub === '/' && (method === 'GET' || method === 'HEAD'))
      return sendHtml(res, 200, (nonce) =>
        dashboardPage(nonce, base, this.options.actions && verdict.by !== 'loopback'),
      );
    if (sub === '/events' && method === 'GET') return this.stream(req, res);
    if (sub.startsWith('/actions/') && method === 'POST') return this.action(req, res, sub.slice(9), verdict);
    sendText(res, 404, 'not found');
  }

  private refuse(req: IncomingMessage, res: ServerResponse, status: 401 | 403, sub: string): void {
    if (status === 403) return sendText(res, 403, 'forbidden');
    const wantsPage = sub === '/' && (req.method === 'GET' || req.method === 'HEAD');
    if (wantsPage && this.options.token !== undefined)
      return sendHtml(res, 401, (nonce) => loginPage(nonce, this.options.path, false));
    sendText(res, 401, 'unauthorized', { 'www-authenticate': 'Bearer realm="dashboard"' });
  }

  /** `POST path/login` with `token=...` (a form): sets the session cookie and goes back to the page. */
  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { token, path } = this.options;
    // The form carries the credentials; only another site's page posting it is refused.
    if (isCrossSite(req)) return sendText(res, 403, 'forbidden');
    const body = await readBody(req, res);
    if (body === undefined) return;
    const given = new URLSearchParams(body).get('token') ?? '';
    if (token === undefined || !sameSecret(given, token)) {
      this.manager.log.warn(
        { event: 'dashboard.login-failed', remoteAddress: req.socket.remoteAddress },
        'dashboard login refused',
      );
      return sendHtml(res, 401, (nonce) => loginPage(nonce, path, true));
    }
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true ? '; Secure' : '';
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: path,
      'set-cookie': `${SESSION_COOKIE}=${sessionCookieValue(token)}; Path=${path}; HttpOnly; SameSite=Strict; Max-Age=43200${secure}`,
    });
    res.end();
  }

  /** The update stream (Server-Sent Events): one `data:` line of JSON per sample. */
  private stream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'x-accel-buffering': 'no', // nginx: pass each event on at once
    });
    res.write('retry: 2000\n\n');
    const stop = this.sampler.watch((snapshot, history) => {
      if (res.writableLength > MAX_VIEWER_BACKLOG_BYTES) return void res.destroy();
      res.write(history ? this.frame(snapshot, history) : this.sharedFrame(snapshot));
    });
    this.streams.add(res);
    res.on('close', () => {
      this.streams.delete(res);
      stop();
    });
  }

  /** End every update stream (the sampler stops with the last one). */
  close(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
    this.sampler.close();
  }

  private frame(snapshot: DashboardSnapshot, history: DashboardPoint[] | undefined): string {
    return `data: ${JSON.stringify(history ? { ...snapshot, history } : snapshot)}\n\n`;
  }

  /** A sample is serialized once for every viewer. */
  private sharedFrame(snapshot: DashboardSnapshot): string {
    if (snapshot !== this.lastSnapshot) {
      this.lastSnapshot = snapshot;
      this.lastFrame = this.frame(snapshot, undefined);
    }
    return this.lastFrame;
  }

  private async action(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    verdict: AccessVerdict & { ok: true },
  ): Promise<void> {
    // Actions need real credentials: never for a loopback request let in without any.
    if (!this.options.actions || verdict.by === 'loopback') return sendText(res, 403, 'actions are off');
    const body = await readBody(req, res);
    if (body === undefined) return;
    const outcome = await runAction(this.manager, name, body, {
      by: verdict.by,
      remoteAddress: req.socket.remoteAddress,
    });
    sendText(res, outcome.status, outcome.text);
  }
}

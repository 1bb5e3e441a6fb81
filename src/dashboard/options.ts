import type { IncomingMessage } from 'node:http';

/** Options of {@link createDashboard}. At least one of `token`, `authorize` or `allowLoopback` is required. */
export interface DashboardOptions {
  /**
   * Where the dashboard is served: the page at `path`, its update stream at `path + '/events'`, the login form's
   * target at `path + '/login'` and the actions at `path + '/actions/<name>'`.
   * @default '/dashboard'
   */
  path?: string;
  /**
   * A shared secret. A request is let in with `Authorization: Bearer <token>`, or with the cookie that the page's
   * login form sets (`POST path/login`; an HttpOnly, SameSite=Strict cookie holding an HMAC of the token, never
   * the token itself). A token in the URL is never accepted. Compared in constant time.
   * @default undefined (no token)
   */
  token?: string;
  /**
   * Your own check (a session cookie, an admin role, ...): a request is let in when it resolves `true`; `false` is
   * answered 403. Runs only for requests that the token (if any) did not already let in. A throw is a 500.
   * @default undefined (no hook)
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
  /**
   * Let requests from this machine in without credentials: a peer address in 127.0.0.0/8 or `::1`, and no
   * `Forwarded` / `X-Forwarded-For` / `X-Real-IP` header (a request through a local reverse proxy is not local).
   * For development only (the chat demo); logged once at creation as a warning.
   * @default false
   */
  allowLoopback?: boolean;
  /**
   * The actions `disconnect` (a client, with close code 1000 or 4000 for "resume") and `drain` (this node),
   * answered on `POST path/actions/<name>`, each one logged with who asked. Same auth as the page, and never for
   * loopback-without-credentials requests. Off: the dashboard is read-only.
   * @default false
   */
  actions?: boolean;
  /**
   * How often the page gets a new sample while someone watches (ms). Nothing is sampled while nobody does.
   * @default 1000
   */
  sampleIntervalMs?: number;
  /**
   * Samples kept for the charts (at the default interval, 300 is five minutes). Cleared when the last viewer leaves.
   * @default 300
   */
  historySamples?: number;
  /**
   * Topics listed, the ones with the most members first (the count of the rest is summed).
   * @default 20
   */
  maxTopics?: number;
  /**
   * Member ids listed per topic ("who is in a topic"); the rest are counted.
   * @default 10
   */
  maxMembersPerTopic?: number;
  /**
   * With a backend that lists the connections of the whole cluster (the Redis backend's `getClusterConnections`),
   * how often the per-node counts are read from it (ms), while someone watches.
   * @default 5000
   */
  clusterIntervalMs?: number;
}

/** The options with their defaults applied. */
export interface ResolvedDashboardOptions {
  path: string;
  token: string | undefined;
  authorize: ((req: IncomingMessage) => boolean | Promise<boolean>) | undefined;
  allowLoopback: boolean;
  actions: boolean;
  sampleIntervalMs: number;
  historySamples: number;
  maxTopics: number;
  maxMembersPerTopic: number;
  clusterIntervalMs: number;
}

const positiveInt = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`dashboard: ${name} must be a positive integer`);
  return v;
};

/** Apply the defaults and check the options; throws a `TypeError` for a dashboard nobody could open. */
export function resolveDashboardOptions(o: DashboardOptions): ResolvedDashboardOptions {
  const path = (o.path ?? '/dashboard').replace(/\/+$/, '');
  if (!path.startsWith('/')) throw new TypeError('dashboard: path must start with /');
  if (o.token !== undefined && o.token.length < 16)
    throw new TypeError('dashboard: token must be at least 16 characters');
  if (o.token === undefined && o.authorize === undefined && o.allowLoopback !== true)
    throw new TypeError('dashboard: configure token, authorize or allowLoopback (it is never open to all)');
  return {
    path,
    token: o.token,
    authorize: o.authorize,
    allowLoopback: o.allowLoopback === true,
    actions: o.actions === true,
    sampleIntervalMs: positiveInt('sampleIntervalMs', o.sampleIntervalMs, 1000),
    historySamples: positiveInt('historySamples', o.historySamples, 300),
    maxTopics: positiveInt('maxTopics', o.maxTopics, 20),
    maxMembersPerTopic: positiveInt('maxMembersPerTopic', o.maxMembersPerTopic, 10),
    clusterIntervalMs: positiveInt('clusterIntervalMs', o.clusterIntervalMs, 5000),
  };
}

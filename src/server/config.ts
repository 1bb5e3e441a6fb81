import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { PresetName, ReplayConfig, ResolvedConfig, WebSocketConfig } from './config-types.js';
import type { RateLimiterLike } from './inbound/shared-limits.js';

/** The default `maxSessionsPerIp`, counted only for client addresses (see `WebSocketConfig.maxSessionsPerIp`). */
const DEFAULT_MAX_SESSIONS_PER_CLIENT_IP = 1000;

export type * from './config-types.js';

/**
 * Heartbeat presets. Proxies cut idle connections: nginx `proxy_read_timeout` 60 s, AWS ALB 60 s, Cloudflare
 * 100 s. A connection is pinged after `pingIntervalMs` of silence (plus at most half a sweep), so:
 * - `conservative` (30 s): safe behind all three. The default.
 * - `aggressive` (5 s, dead peers found within ~15 s): low-latency apps, mobile networks that drop silently.
 * - `relaxed` (60 s): only direct connections or Cloudflare (100 s); NOT behind nginx or ALB at their defaults.
 */
export const presets: Readonly<Record<PresetName, { pingIntervalMs: number; pongTimeoutMs: number }>> = {
  conservative: { pingIntervalMs: 30_000, pongTimeoutMs: 10_000 },
  aggressive: { pingIntervalMs: 5_000, pongTimeoutMs: 10_000 },
  relaxed: { pingIntervalMs: 60_000, pongTimeoutMs: 30_000 },
};

const posInt = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be an integer`)
    .positive(`${what} must be positive`);
const secret = z.union([z.string(), z.instanceof(Uint8Array)]).refine((s) => byteLength(s) >= 32, {
  message: 'must be at least 32 bytes',
});
const limiter = z.custom<RateLimiterLike>(
  (v) => typeof (v as { consume?: unknown } | null)?.consume === 'function',
  'must be a rate limiter with a consume(key, points) method (e.g. RateLimiterMemory from rate-limiter-flexible)',
);
const standardSchema = z.custom<unknown>(
  (v) =>
    typeof (v as { '~standard'?: { validate?: unknown } } | null)?.['~standard']?.validate === 'function',
  'must be a Standard Schema (zod, valibot, arktype, ...): an object with ~standard.validate',
);
const keyId = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 characters of [A-Za-z0-9_-]');

/** History or replay bounds, every field optional (unset ones fall back to `replay`). */
const historyBounds = (what: string) =>
  z
    .object({
      maxMessages: posInt(`${what}.maxMessages`).optional(),
      maxBytes: posInt(`${what}.maxBytes`).optional(),
      maxAgeMs: posInt(`${what}.maxAgeMs`).optional(),
    })
    .strict();

const schema = z
  .object({
    preset: z.enum(['conservative', 'aggressive', 'relaxed']).default('conservative'),
    pingIntervalMs: posInt('pingIntervalMs').optional(),
    pongTimeoutMs: posInt('pongTimeoutMs').optional(),
    hiddenPongTimeoutMs: posInt('hiddenPongTimeoutMs').default(300_000),
    maxConnections: posInt('maxConnections').optional(),
    maxConnectionsPerIp: posInt('maxConnectionsPerIp').optional(),
    maxPayloadBytes: posInt('maxPayloadBytes').default(1024 * 1024),
    maxBufferedBytes: posInt('maxBufferedBytes').default(4 * 1024 * 1024),
    msgpack: z.boolean().default(true),
    closeTimeoutMs: posInt('closeTimeoutMs').default(2000),
    allowedOrigins: z.union([z.literal('*'), z.array(z.string().min(1))]).optional(),
    duplicateIdPolicy: z.enum(['replace', 'reject']).default('replace'),
    handshakeTimeoutMs: posInt('handshakeTimeoutMs').default(10_000),
    sessionTtlMs: posInt('sessionTtlMs').default(120_000),
    maxSessions: posInt('maxSessions').default(100_000),
    maxSessionsPerIp: posInt('maxSessionsPerIp').optional(),
    maxSessionsPerPrincipal: posInt('maxSessionsPerPrincipal').default(100),
    maxDetachedSessionBytes: posInt('maxDetachedSessionBytes').default(256 * 1024 * 1024),
    replay: z
      .object({
        maxMessages: posInt('replay.maxMessages').default(1000),
        maxBytes: posInt('replay.maxBytes').optional(),
        maxAgeMs: posInt('replay.maxAgeMs').default(300_000),
      })
      .strict()
      .default({ maxMessages: 1000, maxAgeMs: 300_000 }),
    topics: z
      .object({
        maxPerConnection: posInt('topics.maxPerConnection').default(100),
        maxNameLength: posInt('topics.maxNameLength').max(255).default(128),
        history: historyBounds('topics.history').optional(),
        overrides: z
          .array(
            z.object({ prefix: z.string(), history: historyBounds('topics.overrides.history') }).strict(),
          )
          .default([]),
      })
      .strict()
      .default({ maxPerConnection: 100, maxNameLength: 128, overrides: [] }),
    tokens: z
      .object({
        secret: secret.optional(),
        keyId: keyId.default('k1'),
        previous: z
          .object({
            keyId,
            secret,
            acceptUntil: z.union([z.number(), z.date()]),
          })
          .strict()
          .optional(),
        ttlMs: posInt('tokens.ttlMs').optional(),
        maxTokenLength: posInt('tokens.maxTokenLength').default(512),
      })
      .strict()
      .refine((t) => t.secret !== undefined || (t.ttlMs === undefined && t.previous === undefined), {
        message: 'a token TTL or previous key needs tokens.secret',
        path: ['secret'],
      })
      .refine((t) => t.previous === undefined || t.previous.keyId !== t.keyId, {
        message: 'must differ from tokens.keyId',
        path: ['previous', 'keyId'],
      })
      .default({ keyId: 'k1', maxTokenLength: 512 }),
    rateLimit: z
      .object({
        messagesPerSecond: posInt('rateLimit.messagesPerSecond'),
        burst: posInt('rateLimit.burst').optional(),
      })
      .strict()
      .optional(),
    rateLimiters: z
      .object({ messagesPerPrincipal: limiter.optional(), upgradesPerIp: limiter.optional() })
      .strict()
      .optional(),
    compression: z
      .object({
        enabled: z.boolean().default(false),
        thresholdBytes: z.number().int().nonnegative().default(1024),
        level: z.number().int().min(1).max(9).default(1),
        serverMaxWindowBits: z.number().int().min(9).max(15).default(15),
        memLevel: z.number().int().min(1).max(9).default(8),
        asyncThresholdBytes: posInt('compression.asyncThresholdBytes').default(16 * 1024),
      })
      .strict()
      .default({
        enabled: false,
        thresholdBytes: 1024,
        level: 1,
        serverMaxWindowBits: 15,
        memLevel: 8,
        asyncThresholdBytes: 16 * 1024,
      }),
    shutdownRetryAfterMs: z.number().int().nonnegative().default(1000),
    logger: z.any().optional(),
    backend: z.any().optional(),
    schema: z.object({ inbound: standardSchema.optional() }).strict().optional(),
  })
  .strict()
  .refine((c) => c.replay.maxBytes === undefined || c.replay.maxBytes <= c.maxBufferedBytes / 2, {
    message: 'must be at most half of maxBufferedBytes, so a whole replay always fits an empty socket buffer',
    path: ['replay', 'maxBytes'],
  });

/** The resolved `replay` bounds, with the fields of `bounds` that are set taking precedence. */
function withBounds(base: Required<ReplayConfig>, bounds: ReplayConfig | undefined): Required<ReplayConfig> {
  return {
    maxMessages: bounds?.maxMessages ?? base.maxMessages,
    maxBytes: bounds?.maxBytes ?? base.maxBytes,
    maxAgeMs: bounds?.maxAgeMs ?? base.maxAgeMs,
  };
}

function byteLength(s: string | Uint8Array): number {
  return typeof s === 'string' ? Buffer.byteLength(s) : s.byteLength;
}

function toBytes(s: string | Uint8Array): Uint8Array {
  return typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
}

/**
 * Validate a {@link WebSocketConfig} and fill in defaults. Throws a {@link ConfigError} (`INVALID_CONFIG`) whose
 * message names every wrong field and why, e.g. `pongTimeoutMs: pongTimeoutMs must be positive`.
 */
export function resolveConfig(input: WebSocketConfig<unknown> = {}): ResolvedConfig {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      path: i.path.join('.') || '(root)',
      message: i.code === 'unrecognized_keys' ? `unknown option(s): ${i.keys.join(', ')}` : i.message,
    }));
    throw new ConfigError(
      `Invalid WebSocketConfig: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const c = parsed.data;
  const preset = presets[c.preset];
  const t = c.tokens;
  const replay = {
    maxMessages: c.replay.maxMessages,
    maxBytes: c.replay.maxBytes ?? Math.min(1024 * 1024, Math.floor(c.maxBufferedBytes / 2)),
    maxAgeMs: c.replay.maxAgeMs,
  };
  return {
    preset: c.preset,
    pingIntervalMs: c.pingIntervalMs ?? preset.pingIntervalMs,
    pongTimeoutMs: c.pongTimeoutMs ?? preset.pongTimeoutMs,
    hiddenPongTimeoutMs: Math.max(c.hiddenPongTimeoutMs, c.pongTimeoutMs ?? preset.pongTimeoutMs),
    maxConnections: c.maxConnections,
    maxConnectionsPerIp: c.maxConnectionsPerIp,
    maxPayloadBytes: c.maxPayloadBytes,
    maxBufferedBytes: c.maxBufferedBytes,
    msgpack: c.msgpack,
    closeTimeoutMs: c.closeTimeoutMs,
    allowedOrigins: c.allowedOrigins,
    duplicateIdPolicy: c.duplicateIdPolicy,
    handshakeTimeoutMs: c.handshakeTimeoutMs,
    sessionTtlMs: c.sessionTtlMs,
    maxSessions: c.maxSessions,
    maxSessionsPerIp: c.maxSessionsPerIp ?? DEFAULT_MAX_SESSIONS_PER_CLIENT_IP,
    maxSessionsPerIpEveryAddress: c.maxSessionsPerIp !== undefined,
    maxSessionsPerPrincipal: c.maxSessionsPerPrincipal,
    maxDetachedSessionBytes: c.maxDetachedSessionBytes,
    replay,
    topics: {
      maxPerConnection: c.topics.maxPerConnection,
      maxNameLength: c.topics.maxNameLength,
      history: withBounds(replay, c.topics.history),
      overrides: c.topics.overrides.map((o) => ({
        prefix: o.prefix,
        history: withBounds(withBounds(replay, c.topics.history), o.history),
      })),
    },
    tokens: {
      secret: t.secret === undefined ? undefined : toBytes(t.secret),
      keyId: t.keyId,
      previous: t.previous && {
        keyId: t.previous.keyId,
        secret: toBytes(t.previous.secret),
        acceptUntilMs: +t.previous.acceptUntil,
      },
      ttlMs: t.ttlMs ?? 120_000,
      maxTokenLength: t.maxTokenLength,
    },
    rateLimit: c.rateLimit && {
      messagesPerSecond: c.rateLimit.messagesPerSecond,
      burst: c.rateLimit.burst ?? c.rateLimit.messagesPerSecond,
    },
    rateLimiters: {
      messagesPerPrincipal: c.rateLimiters?.messagesPerPrincipal,
      upgradesPerIp: c.rateLimiters?.upgradesPerIp,
    },
    shutdownRetryAfterMs: c.shutdownRetryAfterMs,
    compression: c.compression,
  };
}

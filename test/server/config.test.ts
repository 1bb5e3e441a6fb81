import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  StabilizerError,
  WebSocketConnectionManager,
  presets,
  resolveConfig,
  type WebSocketConfig,
} from '../../src/server/index.js';
import { closeAllServers, startServer } from '../helpers/server.js';
import { cleanup } from './support.js';

const SECRET = 'x'.repeat(32);

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

/** The ConfigError a config produces (fails the test if it is accepted). */
function rejectionOf(config: unknown): ConfigError {
  try {
    resolveConfig(config as WebSocketConfig);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`config was accepted: ${JSON.stringify(config)}`);
}

describe('config validation', () => {
  it('compression is off by default, fills its defaults, and rejects out-of-range values', () => {
    expect(resolveConfig({}).compression).toEqual({
      enabled: false,
      thresholdBytes: 1024,
      level: 1,
      serverMaxWindowBits: 15,
      memLevel: 8,
      asyncThresholdBytes: 16384,
    });
    expect(resolveConfig({ compression: { enabled: true, level: 6 } }).compression).toMatchObject({
      enabled: true,
      level: 6,
      thresholdBytes: 1024,
    });
    expect(rejectionOf({ compression: { level: 10 } }).issues[0]!.path).toBe('compression.level');
    expect(rejectionOf({ compression: { serverMaxWindowBits: 8 } }).issues[0]!.path).toBe(
      'compression.serverMaxWindowBits',
    );
    expect(rejectionOf({ compression: { asyncThresholdBytes: 0 } }).message).toContain(
      'compression.asyncThresholdBytes must be positive',
    );
    expect(rejectionOf({ compression: { enable: true } }).message).toContain('unknown option(s): enable');
  });

  it('names the field and the reason for a non-positive pongTimeoutMs', () => {
    const err = rejectionOf({ pongTimeoutMs: 0 });
    expect(err).toBeInstanceOf(StabilizerError);
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('pongTimeoutMs must be positive');
    expect(err.issues).toEqual([{ path: 'pongTimeoutMs', message: 'pongTimeoutMs must be positive' }]);
  });

  it('closeTimeoutMs defaults to 2000 and must be a positive integer', () => {
    expect(resolveConfig({}).closeTimeoutMs).toBe(2000);
    expect(resolveConfig({ closeTimeoutMs: 250 }).closeTimeoutMs).toBe(250);
    expect(rejectionOf({ closeTimeoutMs: 0 }).issues).toEqual([
      { path: 'closeTimeoutMs', message: 'closeTimeoutMs must be positive' },
    ]);
    expect(rejectionOf({ closeTimeoutMs: 1.5 }).message).toContain('closeTimeoutMs must be an integer');
  });

  it('rejects tokens.ttlMs (or a previous key) without tokens.secret', () => {
    expect(rejectionOf({ tokens: { ttlMs: 1000 } }).issues).toEqual([
      { path: 'tokens.secret', message: 'a token TTL or previous key needs tokens.secret' },
    ]);
    const previous = { keyId: 'old', secret: SECRET, acceptUntil: Date.now() };
    expect(rejectionOf({ tokens: { previous } }).message).toContain('tokens.secret');
  });

  it('rejects an unknown option by name, at the root and nested', () => {
    expect(rejectionOf({ pingIntervalMS: 5 }).message).toContain('unknown option(s): pingIntervalMS');
    const nested = rejectionOf({ tokens: { secret: SECRET, ttl: 5 } });
    expect(nested.issues).toEqual([{ path: 'tokens', message: 'unknown option(s): ttl' }]);
  });

  it('rejects a secret shorter than 32 bytes (strings count UTF-8 bytes)', () => {
    expect(rejectionOf({ tokens: { secret: 'short' } }).issues).toEqual([
      { path: 'tokens.secret', message: 'must be at least 32 bytes' },
    ]);
    expect(rejectionOf({ tokens: { secret: new Uint8Array(31) } }).message).toContain('tokens.secret');
    // 16 two-byte characters are 32 bytes: accepted.
    expect(resolveConfig({ tokens: { secret: 'é'.repeat(16) } }).tokens.secret?.byteLength).toBe(32);
  });

  it('lists every wrong field at once', () => {
    const err = rejectionOf({
      pingIntervalMs: 1.5,
      maxConnections: -1,
      preset: 'fast',
      rateLimit: { messagesPerSecond: 0 },
    });
    expect(err.issues.map((i) => i.path).sort()).toEqual(
      ['maxConnections', 'pingIntervalMs', 'preset', 'rateLimit.messagesPerSecond'].sort(),
    );
    expect(err.message).toContain('pingIntervalMs must be an integer');
    expect(err.message).toContain('maxConnections must be positive');
  });

  it('rejects wrong types and enum values, naming the field', () => {
    expect(rejectionOf({ pingIntervalMs: '100' }).message).toContain(
      'pingIntervalMs: pingIntervalMs must be a number',
    );
    expect(rejectionOf({ duplicateIdPolicy: 'kick' }).issues[0]!.path).toBe('duplicateIdPolicy');
    expect(rejectionOf({ tokens: { secret: SECRET, keyId: 'bad id!' } }).issues[0]!.path).toBe(
      'tokens.keyId',
    );
    expect(rejectionOf({ replay: { maxMessages: 0 } }).issues[0]!.path).toBe('replay.maxMessages');
    expect(
      rejectionOf({ tokens: { secret: SECRET, previous: { keyId: 'k1', secret: SECRET, acceptUntil: 0 } } })
        .issues,
    ).toEqual([{ path: 'tokens.previous.keyId', message: 'must differ from tokens.keyId' }]);
  });

  it('the manager constructor throws the same ConfigError', () => {
    expect(() => new WebSocketConnectionManager({ pongTimeoutMs: -5 })).toThrow(ConfigError);
    expect(() => new WebSocketConnectionManager({ pongTimeoutMs: -5 })).toThrow(
      /pongTimeoutMs must be positive/,
    );
  });
});

describe('config presets and defaults', () => {
  it('has the documented preset values', () => {
    expect(presets.conservative).toEqual({ pingIntervalMs: 30_000, pongTimeoutMs: 10_000 });
    expect(presets.aggressive).toEqual({ pingIntervalMs: 5_000, pongTimeoutMs: 10_000 });
    expect(presets.relaxed).toEqual({ pingIntervalMs: 60_000, pongTimeoutMs: 30_000 });
    for (const name of ['conservative', 'aggressive', 'relaxed'] as const) {
      expect(resolveConfig({ preset: name })).toMatchObject({ preset: name, ...presets[name] });
    }
  });

  it('defaults to conservative with documented defaults', () => {
    const c = resolveConfig();
    expect(c).toMatchObject({
      preset: 'conservative',
      pingIntervalMs: 30_000,
      pongTimeoutMs: 10_000,
      maxConnections: undefined,
      maxConnectionsPerIp: undefined,
      maxPayloadBytes: 1024 * 1024,
      maxBufferedBytes: 4 * 1024 * 1024,
      duplicateIdPolicy: 'replace',
      handshakeTimeoutMs: 10_000,
      sessionTtlMs: 120_000,
      replay: { maxMessages: 1000, maxBytes: 1024 * 1024, maxAgeMs: 300_000 },
      rateLimit: undefined,
      shutdownRetryAfterMs: 1000,
    });
    expect(c.tokens).toMatchObject({ secret: undefined, keyId: 'k1', ttlMs: 120_000, maxTokenLength: 512 });
  });

  it('an explicit field overrides the preset, the other preset field stays', () => {
    expect(resolveConfig({ preset: 'aggressive', pingIntervalMs: 2_000 })).toMatchObject({
      pingIntervalMs: 2_000,
      pongTimeoutMs: 10_000,
    });
    expect(resolveConfig({ preset: 'relaxed', pongTimeoutMs: 1_000 })).toMatchObject({
      pingIntervalMs: 60_000,
      pongTimeoutMs: 1_000,
    });
  });

  it('normalizes derived values: rate-limit burst, secret bytes, acceptUntil as epoch ms', () => {
    const until = new Date('2030-01-01T00:00:00Z');
    const c = resolveConfig({
      rateLimit: { messagesPerSecond: 7 },
      tokens: { secret: SECRET, keyId: 'k2', previous: { keyId: 'k1', secret: SECRET, acceptUntil: until } },
    });
    expect(c.rateLimit).toEqual({ messagesPerSecond: 7, burst: 7 });
    expect(c.tokens.secret).toBeInstanceOf(Uint8Array);
    expect(c.tokens.previous?.acceptUntilMs).toBe(until.getTime());
  });

  it('a running manager exposes the resolved config', async () => {
    const s = await startServer({ preset: 'aggressive', pongTimeoutMs: 4_000, maxConnections: 3 });
    expect(s.manager.config).toMatchObject({
      pingIntervalMs: 5_000,
      pongTimeoutMs: 4_000,
      maxConnections: 3,
    });
  });
});

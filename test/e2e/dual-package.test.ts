// The ESM and CommonJS builds are two copies of every class (the dual-package hazard). Errors and the manager
// carry a Symbol.for brand, so `instanceof` holds across the copies. Needs dist/ (`npx tsup`).
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

type Server = typeof import('../../src/server/index.js');
type Client = typeof import('../../src/client/index.js');
const dist = (file: string) => new URL(`../../dist/${file}`, import.meta.url).href;
const esm = (await import(dist('index.js'))) as Server;
const esmClient = (await import(dist('client.js'))) as Client;
const require = createRequire(import.meta.url);
const cjs = require('../../dist/index.cjs') as Server;
const cjsClient = require('../../dist/client.cjs') as Client;

describe('dual package (ESM and CJS builds)', () => {
  it('are two copies of each class', () => {
    expect(cjs.StabilizerError).not.toBe(esm.StabilizerError);
  });

  it('StabilizerError, TokenError and ConfigError are recognised across the builds, subclasses included', async () => {
    const fromCjs = new cjs.TokenError('TOKEN_EXPIRED', 'expired');
    expect(fromCjs instanceof esm.StabilizerError).toBe(true);
    expect(fromCjs instanceof esm.TokenError).toBe(true);
    expect(fromCjs instanceof esm.ConfigError).toBe(false);
    expect(fromCjs instanceof Error).toBe(true);
    let configError: unknown;
    try {
      new esm.WebSocketConnectionManager({ pingIntervalMs: -1 });
    } catch (err) {
      configError = err;
    }
    expect(configError instanceof cjs.ConfigError).toBe(true);
    expect(configError instanceof cjs.StabilizerError).toBe(true);
    expect(configError instanceof cjs.TokenError).toBe(false);
    // Unrelated values are not.
    expect(new Error('x') instanceof esm.StabilizerError).toBe(false);
    expect((null as unknown as object) instanceof esm.StabilizerError).toBe(false);
    expect({ code: 'TOKEN_EXPIRED', name: 'TokenError' } instanceof esm.TokenError).toBe(false);
    // A base-class instance is not a subclass instance.
    expect(new cjs.StabilizerError('UNKNOWN_CLIENT', 'x') instanceof esm.TokenError).toBe(false);
  });

  it("an application's own subclass keeps the ordinary instanceof", () => {
    class AppError extends esm.StabilizerError {}
    const mine = new AppError('UNKNOWN_CLIENT', 'x');
    expect(mine instanceof AppError).toBe(true);
    expect(mine instanceof esm.StabilizerError).toBe(true);
    expect(mine instanceof cjs.StabilizerError).toBe(true);
    expect(new esm.StabilizerError('UNKNOWN_CLIENT', 'x') instanceof AppError).toBe(false);
    expect(new cjs.TokenError('TOKEN_EXPIRED', 'x') instanceof AppError).toBe(false);
  });

  it('the manager is recognised across the builds', () => {
    const manager = new cjs.WebSocketConnectionManager();
    expect(manager instanceof esm.WebSocketConnectionManager).toBe(true);
    expect({} instanceof esm.WebSocketConnectionManager).toBe(false);
    expect(new cjs.StabilizerError('UNKNOWN_CLIENT', 'x') instanceof esm.WebSocketConnectionManager).toBe(
      false,
    );
    void manager.gracefulShutdown({ timeoutMs: 10 });
  });

  it('ClientError is recognised across the client builds', () => {
    const err = new cjsClient.ClientError('QUEUE_FULL', 'full');
    expect(err instanceof esmClient.ClientError).toBe(true);
    expect(new esm.StabilizerError('UNKNOWN_CLIENT', 'x') instanceof esmClient.ClientError).toBe(false);
    expect(new Error('x') instanceof cjsClient.ClientError).toBe(false);
  });

  it('no build file imports a framework at runtime (they are optional peers)', () => {
    const dist = new URL('../../dist/', import.meta.url);
    const files = readdirSync(dist).filter((f) => /\.c?js$/.test(f));
    const framework = /(?:from\s*|require\()\s*['"](?:express|fastify|hono|@nestjs\/[\w-]+|rxjs)['"]/;
    expect(files.filter((f) => framework.test(readFileSync(new URL(f, dist), 'utf8')))).toEqual([]);
    expect(files).toContain('nestjs.cjs');
  });
});

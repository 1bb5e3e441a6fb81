// A TypeScript consumer of the built package (dist/ and package.json, as npm installs them) under each
// `moduleResolution`: every subpath must resolve with its types, and the typed API must hold through the published
// declarations. node10 is what `module: commonjs` picks (the old Nest CLI default). Needs dist/ (`npx tsup`).
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const consumer = `
import { WebSocketConnectionManager } from 'websocket-stabilizer';
import { StabilizerClient } from 'websocket-stabilizer/client';
import { withRequests } from 'websocket-stabilizer/client/request';
import { CloseCode } from 'websocket-stabilizer/protocol';
import { RedisBackend } from 'websocket-stabilizer/redis';
import { closeCodeLabel } from 'websocket-stabilizer/metrics';
import { createDashboard } from 'websocket-stabilizer/dashboard';
import { attachExpress } from 'websocket-stabilizer/express';
import { fastifyStabilizer } from 'websocket-stabilizer/fastify';
import { createHonoStabilizer } from 'websocket-stabilizer/hono';
import { StabilizerWsAdapter } from 'websocket-stabilizer/nestjs';

const manager = new WebSocketConnectionManager<{ type: 'say' }, { type: 'chat'; text: string }, { name: string }>();
manager.on('message', (e) => manager.broadcast({ type: 'chat', text: e.data.type }));
manager.on('connect', (e) => e.data?.name);
const dashboard = createDashboard(manager, { token: 'a-token-of-16-chars-or-more' });
const sampling: boolean = dashboard.sampling;
void sampling;
// @ts-expect-error a wrong payload shape must not compile through the published declarations
manager.sendToClient('x', { tpye: 'oops' });
const client = new StabilizerClient<{ type: 'chat'; text: string }, { type: 'say' }>('ws://localhost/');
// @ts-expect-error the client's Out is the manager's In
void client.send({ type: 'shout' });
type Rpc = { client: { echo: { request: { type: 'echo'; n: number }; reply: number } }; server: {} };
const rpc = withRequests<Rpc>(client);
const answer: Promise<number> = rpc.request({ type: 'echo', n: 1 });
// @ts-expect-error a wrong request shape must not compile through the published declarations
void rpc.request({ type: 'echo', n: 'one' });
new WebSocketConnectionManager<unknown, string, unknown, Rpc>().onRequest((q) => q.n + 1);
void answer;
export { CloseCode, RedisBackend, closeCodeLabel, attachExpress, fastifyStabilizer, createHonoStabilizer, StabilizerWsAdapter };
`;

/** A Fastify app that declares its manager's types once: the decorator and the plugin's options follow them. */
const fastifyConsumer = `
import Fastify from 'fastify';
import { WebSocketConnectionManager } from 'websocket-stabilizer';
import { fastifyStabilizer } from 'websocket-stabilizer/fastify';

type ChatCommand = { type: 'say'; text: string };
type ChatEvent = { type: 'chat'; text: string };
type User = { name: string };
declare module 'websocket-stabilizer/fastify' {
  interface FastifyStabilizerTypes {
    in: ChatCommand;
    out: ChatEvent;
    data: User;
  }
}

const app = Fastify();
void app.register(fastifyStabilizer, { path: '/ws', authenticate: () => ({ data: { name: 'ann' } }) });
// @ts-expect-error authenticate returns the declared Data
void app.register(fastifyStabilizer, { path: '/ws', authenticate: () => ({ data: { id: 1 } }) });
// @ts-expect-error hooks see the declared Data
void app.register(fastifyStabilizer, { hooks: { authorizeResume: (ctx) => ctx.data?.id === 1 } });
const typedManager: WebSocketConnectionManager<ChatCommand, ChatEvent, User> = app.websocketStabilizer;
app.websocketStabilizer.on('message', (e) => {
  const text: string = e.data.text;
  app.websocketStabilizer.broadcast({ type: 'chat', text });
});
app.websocketStabilizer.on('connect', (e) => e.data?.name.toUpperCase());
// @ts-expect-error Out is declared
app.websocketStabilizer.broadcast({ tpye: 'oops' });
export { typedManager };
`;

/** Type-check `consumer` in a fresh project that has the package installed; resolves with tsc's output. */
function typeCheck(
  compilerOptions: Record<string, string>,
  packageType: 'commonjs' | 'module',
  source = consumer,
  frameworks: string[] = [],
) {
  const dir = mkdtempSync(join(tmpdir(), 'stabilizer-consumer-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules/websocket-stabilizer'), 'dir');
  for (const name of frameworks)
    symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: packageType }));
  writeFileSync(join(dir, 'index.ts'), source);
  const options = { ...compilerOptions, target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true };
  // `types: []`: the consumer's own code needs no ambient types; the package's declarations bring theirs.
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { ...options, types: [] }, files: ['index.ts'] }),
  );
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, [tsc, '-p', dir], { cwd: dir }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe('the published types, as a TypeScript consumer sees them', () => {
  it('module commonjs (moduleResolution node10) resolves every subpath, typed', async () => {
    const result = await typeCheck({ module: 'commonjs', moduleResolution: 'node10' }, 'commonjs');
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('module node16 from CommonJS resolves every subpath, typed', async () => {
    const result = await typeCheck({ module: 'node16', moduleResolution: 'node16' }, 'commonjs');
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('moduleResolution bundler resolves every subpath, typed', async () => {
    const result = await typeCheck({ module: 'esnext', moduleResolution: 'bundler' }, 'module');
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('a Fastify app that declares FastifyStabilizerTypes gets a typed decorator and typed plugin options', async () => {
    const result = await typeCheck(
      { module: 'esnext', moduleResolution: 'bundler' },
      'module',
      fastifyConsumer,
      ['fastify'],
    );
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parse } from 'yaml';
import { StabilizerClient } from '../../src/client/index.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort, repoRoot, startNginxWithConfig, substitute } from '../helpers/nginx.js';
import type { RunningProxy } from '../helpers/proxy-process.js';
import { upgradeStatus, waitFor } from '../helpers/server.js';
import { startRedis, type TestRedis } from '../redis/redis-server.js';

requireBinary('nginx');

// docker-compose.yml and the Dockerfile cannot be built or run here (no Docker daemon). This file checks them
// against the repository and runs the same topology without Docker: a private redis-server, the nodes' command and
// environment from the compose file, and a real nginx with deploy/compose/nginx.conf, whose service names are mapped
// to the local processes. The nodes run the built demo: `npx tsup` (or `npm run build`) first.

type Service = {
  build?: string;
  image?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
  ports?: string[];
};
const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
};
const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const nginxConf = readFileSync(join(repoRoot, 'deploy/compose/nginx.conf'), 'utf8');
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const nodeNames = ['node1', 'node2'];
/** The demo's command, from the Dockerfile's exec-form CMD. */
const command = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];

describe('Dockerfile', () => {
  it('copies what exists, runs a file that exists, and installs package.json versions of what dist imports', () => {
    for (const [, src] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of src!.split(' ')) expect(existsSync(join(repoRoot, path)), path).toBe(true);
    }
    expect(command[0]).toBe('node');
    expect(existsSync(join(repoRoot, command[1]!))).toBe(true);
    const installed = Object.fromEntries(
      [...dockerfile.matchAll(/ ((?:@[\w-]+\/)?[\w-]+)@(\^[\d.]+)/g)].map((m) => [m[1]!, m[2]!]),
    );
    const want = { ...pkg.dependencies, ...pkg.devDependencies };
    for (const [name, range] of Object.entries(installed)) expect(range, name).toBe(want[name]);
    // The runtime dependencies the built library needs, plus the demo's logger and Redis client.
    expect(Object.keys(installed).sort()).toEqual(['ioredis', 'pino', 'ws', 'zod']);
    expect(/^EXPOSE (\d+)$/m.exec(dockerfile)?.[1]).toBe(compose.services.node1!.environment!.PORT);
  });
});

describe('docker-compose.yml', () => {
  it('has Redis, two nodes of the Dockerfile on it, and nginx in front with deploy/compose/nginx.conf', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['nginx', 'node1', 'node2', 'redis']);
    expect(compose.services.redis!.image).toMatch(/^redis:/);
    for (const name of nodeNames) {
      const node = compose.services[name]!;
      expect(node.build).toBe('.');
      expect(node.environment!.REDIS_URL).toBe('redis://redis:6379');
      expect(Object.keys(node.depends_on!)).toEqual(['redis']);
      // nginx sends to this service's name and PORT.
      expect(nginxConf).toContain(`server ${name}:${node.environment!.PORT};`);
    }
    const nginx = compose.services.nginx!;
    expect(nginx.volumes).toEqual(['./deploy/compose/nginx.conf:/etc/nginx/conf.d/default.conf:ro']);
    expect(nginx.ports).toEqual(['8080:80']);
    expect(nginxConf).toContain('listen 80;');
  });
});

describe('the compose topology, run without Docker', () => {
  let redis: TestRedis | undefined;
  const nodes: ChildProcess[] = [];
  const stops: RunningProxy[] = [];
  const clients: StabilizerClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(stops.splice(0).map((p) => p.stop()));
    await Promise.all(
      nodes.splice(0).map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.exitCode !== null || n.signalCode !== null) return resolve();
            n.once('exit', () => resolve());
            n.kill('SIGKILL');
          }),
      ),
    );
  });
  afterAll(async () => redis?.stop());

  /** Start one compose node: its command and environment, with Redis and the port mapped to this machine. */
  async function startNode(name: string): Promise<{ port: number; proc: ChildProcess }> {
    const port = await freePort();
    const env = { ...compose.services[name]!.environment } as Record<string, string>;
    env.PORT = String(port);
    env.REDIS_URL = env.REDIS_URL!.replace('redis://redis:6379', redis!.url);
    env.TOKEN_SECRET = 'compose-test-secret-0123456789abcdef0123456789';
    env.LOG_LEVEL = 'warn';
    const proc = spawn(command[0]!, command.slice(1), {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    nodes.push(proc);
    const deadline = Date.now() + 15_000;
    while (!(await probe(port))) {
      if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}`);
      if (Date.now() > deadline) throw new Error(`${name} did not answer /readyz`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { port, proc };
  }
  const probe = (port: number) =>
    fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );

  it('a client through nginx lands on a node, and resumes on the other one when its node is killed', async () => {
    redis = await startRedis();
    const started: Array<{ port: number; proc: ChildProcess }> = [];
    for (const name of nodeNames) started.push(await startNode(name));
    const proxyPort = await freePort();
    let conf = substitute(nginxConf, 'listen 80;', `listen 127.0.0.1:${proxyPort};`);
    nodeNames.forEach((name, i) => {
      conf = substitute(conf, `server ${name}:3000;`, `server 127.0.0.1:${started[i]!.port};`);
    });
    stops.push(await startNginxWithConfig(conf, proxyPort));

    const c = new StabilizerClient(`ws://127.0.0.1:${proxyPort}/ws`, {
      WebSocket: WebSocket as never,
      minDelayMs: 100,
      maxDelayMs: 300,
    });
    clients.push(c);
    const outcomes: string[] = [];
    c.on('fresh', ({ reason }) => outcomes.push(`fresh:${reason}`));
    c.on('resumed', () => outcomes.push('resumed'));
    await waitFor(() => c.state === 'open', 'the client to open', 10_000);
    const id = c.sessionId!;
    // A browser page served through nginx connects (its origin is nginx's host:port); another site's does not.
    const ws = `ws://127.0.0.1:${proxyPort}/ws`;
    expect(await upgradeStatus(ws, { Origin: `http://127.0.0.1:${proxyPort}` })).toBe(101);
    expect(await upgradeStatus(ws, { Origin: 'http://evil.example' })).toBe(403);

    const counts = async () =>
      Promise.all(
        started.map(async ({ port }) => {
          const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as {
            connections: number;
          };
          return stats.connections;
        }),
      );
    // The probe's socket above closes on its own time: wait until only the client is counted.
    let before = await counts();
    for (const start = Date.now(); before[0]! + before[1]! !== 1 && Date.now() - start < 10_000;) {
      await new Promise((r) => setTimeout(r, 50));
      before = await counts();
    }
    expect([...before].sort()).toEqual([0, 1]);
    const home = started[before.indexOf(1)]!;
    home.proc.kill('SIGKILL'); // the node dies without a goodbye
    await waitFor(() => outcomes.length === 2, 'the client to come back through nginx', 15_000);
    expect(outcomes).toEqual(['fresh:new', 'resumed']);
    expect(c.sessionId).toBe(id);
    const other = started.find((n) => n !== home)!;
    const stats = (await (await fetch(`http://127.0.0.1:${other.port}/stats`)).json()) as {
      connections: number;
    };
    expect(stats.connections).toBe(1);
  });
});

import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/server/index.ts',
      protocol: 'src/protocol/index.ts',
      metrics: 'src/metrics/index.ts',
      redis: 'src/redis/index.ts',
      dashboard: 'src/dashboard/index.ts',
      // Framework adapters: a few KB each over the server core; the frameworks are optional peers.
      express: 'src/adapters/express.ts',
      fastify: 'src/adapters/fastify.ts',
      hono: 'src/adapters/hono.ts',
      nestjs: 'src/adapters/nestjs.ts',
    },
    format: ['esm', 'cjs'],
    // Shared chunks in CJS too: otherwise redis.cjs carries its own copy of StabilizerError, Payload, ... and
    // `instanceof` checks between the entry points fail for require() users.
    splitting: true,
    dts: true,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    external: ['ioredis', 'prom-client', 'express', 'fastify', 'hono', '@nestjs/common', 'rxjs'],
  },
  {
    // The client is platform-neutral: no Node-only imports, so it runs in browsers and Node. Its MessagePack codec
    // is a separate entry (msgpackr, an optional peer, stays external) so the default bundle does not grow, and so
    // is `client/request` (request/reply over the core client, outside its size budget).
    entry: {
      client: 'src/client/index.ts',
      'client-msgpack': 'src/client/msgpack.ts',
      'client-request': 'src/client/request.ts',
    },
    // One self-contained file per entry (no shared chunk): the default client stays a single module.
    splitting: false,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    target: 'es2020',
    platform: 'neutral',
    esbuildOptions(options) {
      // Size budget (6 KB min+gzip): fields are plain assignments in the constructor (no define helper per field),
      // and internal members spelled `_name` get short names in the bundle. The types (.d.ts) are unaffected.
      delete options.tsconfig;
      options.tsconfigRaw = {
        compilerOptions: { useDefineForClassFields: false, verbatimModuleSyntax: true },
      };
      options.mangleProps = /^_/;
    },
  },
]);

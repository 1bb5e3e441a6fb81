import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import type { WebSocketConfig } from '../server/config-types.js';
import { WebSocketConnectionManager, type ManagerHooks } from '../server/manager.js';
import type { ShutdownOptions } from '../server/shutdown.js';
import type { AttachOptions } from '../server/upgrade.js';

/** Options of the {@link fastifyStabilizer} plugin: those of `manager.attach`, plus the manager or its config. */
export interface FastifyStabilizerOptions extends AttachOptions {
  /**
   * A manager you built; without one the plugin builds one from `config` and `hooks`.
   * @default new WebSocketConnectionManager(config, hooks)
   */
  manager?: WebSocketConnectionManager;
  /** Config of the manager the plugin builds (ignored with `manager`). @default {} */
  config?: WebSocketConfig;
  /** Hooks of the manager the plugin builds (ignored with `manager`). @default {} */
  hooks?: ManagerHooks;
  /**
   * How `app.close()` drains: clients get 1001 (or 1012 with `restart`) and the retry hint.
   * @default {}
   */
  shutdown?: ShutdownOptions;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The websocket-stabilizer manager serving this app's WebSocket upgrades. */
    websocketStabilizer: WebSocketConnectionManager;
  }
}

/**
 * Fastify plugin: serves WebSocket upgrades of `app.server` on `options.path` with every check of
 * `manager.attach` (404, 503 with Retry-After, 403, 401), decorates the app with `websocketStabilizer` (the
 * manager), and drains in a `preClose` hook, i.e. before Fastify closes its server, so `app.close()` gives
 * clients 1001/1012 with the retry hint. (In `onClose` it would be too late: `server.close()` first waits for
 * every socket, and `forceCloseConnections` would drop them with 1006.)
 */
export const fastifyStabilizer: FastifyPluginCallback<FastifyStabilizerOptions> = (
  app: FastifyInstance,
  options: FastifyStabilizerOptions,
  done: (err?: Error) => void,
) => {
  const { manager: given, config, hooks, shutdown, ...attach } = options;
  const manager = given ?? new WebSocketConnectionManager(config, hooks);
  const detach = manager.attach(app.server, attach);
  app.decorate('websocketStabilizer', manager);
  app.addHook('preClose', async () => {
    await manager.gracefulShutdown(shutdown);
    detach();
  });
  done();
};

// What `fastify-plugin` does: no encapsulation, so the decorator is visible on the app that registers it.
Object.assign(fastifyStabilizer, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'websocket-stabilizer',
  [Symbol.for('plugin-meta')]: { name: 'websocket-stabilizer', fastify: '>=5' },
});

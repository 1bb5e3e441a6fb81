import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import type { WebSocketConfig } from '../server/config-types.js';
import { WebSocketConnectionManager, type ManagerHooks } from '../server/manager.js';
import type { SendData } from '../frames/payload.js';
import type { ShutdownOptions } from '../server/operations/shutdown.js';
import type { AttachOptions } from '../server/upgrade/upgrade.js';

/**
 * Options of the {@link fastifyStabilizer} plugin: those of `manager.attach`, plus the manager or its config.
 * `In`, `Out` and `Data` are the manager's (see {@link FastifyStabilizerTypes}): `authenticate` returns `Data`.
 */
export interface FastifyStabilizerOptions<
  In = unknown,
  Out extends SendData = SendData,
  Data = unknown,
> extends AttachOptions<Data> {
  /**
   * A manager you built; without one the plugin builds one from `config` and `hooks`.
   * @default new WebSocketConnectionManager(config, hooks)
   */
  manager?: WebSocketConnectionManager<In, Out, Data>;
  /** Config of the manager the plugin builds (ignored with `manager`). @default {} */
  config?: WebSocketConfig<In>;
  /** Hooks of the manager the plugin builds (ignored with `manager`). @default {} */
  hooks?: ManagerHooks<Data>;
  /**
   * How `app.close()` drains: clients get 1001 (or 1012 with `restart`) and the retry hint.
   * @default {}
   */
  shutdown?: ShutdownOptions;
}

/**
 * The app's message and data types, for `app.websocketStabilizer` and the plugin's options. Empty by default
 * (everything untyped); an app declares its types once, as with `@fastify/jwt`'s payload:
 *
 * ```ts
 * declare module 'websocket-stabilizer/fastify' {
 *   interface FastifyStabilizerTypes {
 *     in: ChatCommand; // what clients send
 *     out: ChatEvent; // what the server sends
 *     data: User; // what authenticate returns as data
 *   }
 * }
 * ```
 *
 * Then `app.websocketStabilizer` is a `WebSocketConnectionManager<ChatCommand, ChatEvent, User>`, and the plugin
 * accepts only a manager, `config.schema`, `hooks` and `authenticate` of those types. Each key is optional.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by module augmentation
export interface FastifyStabilizerTypes {}

type Declared<K extends string, Default> = FastifyStabilizerTypes extends { [P in K]: infer T } ? T : Default;
type DeclaredOut = Declared<'out', SendData> extends infer O extends SendData ? O : SendData;

/** `app.websocketStabilizer`: a manager of the types declared in {@link FastifyStabilizerTypes}. */
export type FastifyStabilizerManager = WebSocketConnectionManager<
  Declared<'in', unknown>,
  DeclaredOut,
  Declared<'data', unknown>
>;

/** The plugin's options, of the types declared in {@link FastifyStabilizerTypes}. */
export type FastifyStabilizerAppOptions = FastifyStabilizerOptions<
  Declared<'in', unknown>,
  DeclaredOut,
  Declared<'data', unknown>
>;

declare module 'fastify' {
  interface FastifyInstance {
    /** The websocket-stabilizer manager serving this app's WebSocket upgrades (typed: `FastifyStabilizerTypes`). */
    websocketStabilizer: FastifyStabilizerManager;
  }
}

/**
 * Fastify plugin: serves WebSocket upgrades of `app.server` on `options.path` with every check of
 * `manager.attach` (404, 503 with Retry-After, 403, 401), decorates the app with `websocketStabilizer` (the
 * manager), and drains in a `preClose` hook, i.e. before Fastify closes its server, so `app.close()` gives
 * clients 1001/1012 with the retry hint. (In `onClose` it would be too late: `server.close()` first waits for
 * every socket, and `forceCloseConnections` would drop them with 1006.)
 */
export const fastifyStabilizer: FastifyPluginCallback<FastifyStabilizerAppOptions> = (
  app: FastifyInstance,
  options: FastifyStabilizerAppOptions,
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

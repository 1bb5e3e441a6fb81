import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { INestApplicationContext, WebSocketAdapter, WsMessageHandler } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type { WebSocketConfig } from '../server/config-types.js';
import { WebSocketConnectionManager, type ManagerHooks } from '../server/manager.js';
import type { SendOutcome } from '../server/messaging.js';
import type { BinaryPayload, SendData } from '../frames/payload.js';
import { runMiddleware, type ConnectMiddleware } from '../server/upgrade/middleware.js';
import type { ShutdownOptions } from '../server/operations/shutdown.js';
import type { AttachOptions, AuthResult, HelloAuth } from '../server/upgrade/upgrade.js';

/**
 * Options of {@link StabilizerWsAdapter}. `In`, `Out` and `Data` are the manager's (inferred from `manager`, or
 * from `config.schema` and `hooks`); `Req` is the upgrade request as the middleware leaves it.
 */
export interface StabilizerAdapterOptions<
  In = unknown,
  Out extends SendData = SendData,
  Data = unknown,
  Req extends IncomingMessage = IncomingMessage,
> extends Omit<AttachOptions<Data>, 'authenticate'> {
  /** A manager you built; without one the adapter builds one from `config` and `hooks`. @default undefined */
  manager?: WebSocketConnectionManager<In, Out, Data>;
  /** Config of the manager the adapter builds. @default {} */
  config?: WebSocketConfig<In>;
  /** Hooks of the manager the adapter builds. @default {} */
  hooks?: ManagerHooks<Data>;
  /**
   * Connect-style middleware run on each upgrade request before `authenticate`, e.g. the express-session
   * middleware you gave `app.use()`. @default []
   */
  middleware?: ReadonlyArray<ConnectMiddleware<Req>>;
  /**
   * Runs after the middleware; `false` answers 401. For a client that sends `auth` in its hello it runs at the
   * hello, with `{ auth }` as second argument (see `AttachOptions.authenticate`). @default accept every upgrade
   */
  authenticate?: (req: Req, hello?: HelloAuth) => AuthResult<Data> | Promise<AuthResult<Data>>;
  /** How the drain at `app.close()` closes clients (1001, or 1012 with `restart`). @default {} */
  shutdown?: ShutdownOptions;
}

/**
 * The `client` a gateway's handlers get: one exactly-once session, not one socket. It outlives network drops (a
 * resume is invisible to the gateway: no `handleDisconnect`/`handleConnection`), and what you send while the
 * client is away is replayed when it resumes. `Out` and `Data` are the manager's: `handleConnection(client:
 * SessionSocket<ChatEvent, User>)`.
 */
export class SessionSocket<Out extends SendData = SendData, Data = unknown> {
  constructor(
    /** The session id (the manager's `clientId`). */
    readonly id: string,
    /** What `authenticate` returned as `data`. */
    readonly data: Data | undefined,
    private readonly manager: WebSocketConnectionManager<unknown, Out, Data>,
  ) {}

  /** Send reliably (buffered while the client is away); see `manager.sendToClient`. */
  send(data: Out | BinaryPayload, options?: { volatile?: boolean }): SendOutcome {
    return this.manager.sendToClient(this.id, data, options);
  }

  /** Send `{ event, data }`, the shape `@SubscribeMessage` handlers receive. */
  emit(event: string, data?: unknown): SendOutcome {
    return this.send({ event, data } as Out); // the `{ event, data }` envelope is Nest's convention, not `Out`
  }

  /** Close the connection; a terminal code (1000, the default) also ends the session. */
  close(code?: number, reason?: string): Promise<boolean> {
    return this.manager.disconnect(this.id, code, reason);
  }

  /** Whether a socket is connected right now (false while the session waits for a resume). */
  get connected(): boolean {
    return this.manager.isConnected(this.id);
  }
}

type Bound = { handler: WsMessageHandler; transform: (data: unknown) => Observable<unknown> };
type Entry<Out extends SendData, Data> = {
  socket: SessionSocket<Out, Data>;
  bound: Bound[];
  onDisconnect: Array<(reason: string) => void>;
};

/** Options Nest passes from `@WebSocketGateway(port, options)`; only `path` is used. */
export interface GatewayOptions {
  path?: string;
}

/**
 * A NestJS `WebSocketAdapter` over exactly-once sessions: `app.useWebSocketAdapter(new StabilizerWsAdapter(app,
 * options))`. Gateways receive `{ event, data }` messages in their `@SubscribeMessage(event)` handlers, and a
 * handler's return value (or each value of a returned Observable) is sent back as is. `@WebSocketServer()` is the
 * manager. Upgrades keep every check (404, 503, 403, 401). `app.close()` drains: Nest calls `close()` after every
 * `beforeApplicationShutdown` hook and before it closes the HTTP server, so clients get 1001/1012 with the retry
 * hint. One gateway path per adapter.
 */
export class StabilizerWsAdapter<
  In = unknown,
  Out extends SendData = SendData,
  Data = unknown,
  Req extends IncomingMessage = IncomingMessage,
> implements WebSocketAdapter<
  WebSocketConnectionManager<In, Out, Data>,
  SessionSocket<Out, Data>,
  GatewayOptions
> {
  /** The manager behind every gateway of this adapter (what `@WebSocketServer()` injects). */
  readonly manager: WebSocketConnectionManager<In, Out, Data>;
  private readonly httpServer: Server | undefined;
  private readonly sessions = new Map<string, Entry<Out, Data>>();
  private readonly onConnect: Array<(socket: SessionSocket<Out, Data>) => void> = [];
  private path: string | undefined;
  private detach: (() => void) | undefined;
  private ownServer: Server | undefined;

  constructor(
    app?: INestApplicationContext | Server,
    private readonly options: StabilizerAdapterOptions<In, Out, Data, Req> = {},
  ) {
    this.httpServer =
      app && 'getHttpServer' in app ? (app as { getHttpServer(): Server }).getHttpServer() : (app as Server);
    const m = (this.manager =
      options.manager ?? new WebSocketConnectionManager(options.config, options.hooks));
    m.on('connect', ({ clientId, resume, data }) => {
      if (resume === 'resumed' && this.sessions.has(clientId)) return; // the same session, back
      this.end(clientId, 'replaced');
      const socket = new SessionSocket(clientId, data, m);
      this.sessions.set(clientId, { socket, bound: [], onDisconnect: [] });
      for (const callback of this.onConnect) callback(socket);
    });
    m.on('disconnect', ({ clientId, reason, sessionRetained }) => {
      if (!sessionRetained && reason !== 'replaced') this.end(clientId, reason);
    });
    m.on('session-end', ({ clientId, reason }) => this.end(clientId, reason));
    m.on('message', ({ clientId, data }) => this.dispatch(clientId, data));
  }

  create(port: number, options: GatewayOptions = {}): WebSocketConnectionManager<In, Out, Data> {
    const path = options.path ?? this.options.path ?? '/';
    if (this.path !== undefined && this.path !== path) {
      throw new Error(
        `StabilizerWsAdapter serves one gateway path (${this.path}); ${path} needs its own adapter`,
      );
    }
    if (this.detach) return this.manager;
    this.path = path;
    let server = this.httpServer;
    if (port > 0 || !server) {
      server = this.ownServer = createServer((_req, res) => void res.writeHead(426).end());
      server.listen(port);
    }
    const { middleware = [], authenticate } = this.options;
    this.detach = this.manager.attach(server, {
      path,
      trustProxy: this.options.trustProxy,
      authenticate: async (req, hello) => {
        await runMiddleware(req as Req, middleware);
        return authenticate ? authenticate(req as Req, hello) : true;
      },
    });
    return this.manager;
  }

  bindClientConnect(
    _server: WebSocketConnectionManager<In, Out, Data>,
    callback: (socket: SessionSocket<Out, Data>) => void,
  ): void {
    this.onConnect.push(callback);
  }

  bindClientDisconnect(client: SessionSocket<Out, Data>, callback: (reason: string) => void): void {
    this.sessions.get(client.id)?.onDisconnect.push(callback);
  }

  bindMessageHandlers(
    client: SessionSocket<Out, Data>,
    handlers: WsMessageHandler[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    const entry = this.sessions.get(client.id);
    if (entry) for (const handler of handlers) entry.bound.push({ handler, transform });
  }

  /** A client that connected while the app was still starting: closed with 1013 (try again later). */
  closeClient(client: SessionSocket<Out, Data>): void {
    void client.close(1013, 'server starting');
  }

  /** Drain: refuse new upgrades, close every client with the retry hint, then detach. */
  async close(_server?: WebSocketConnectionManager<In, Out, Data>): Promise<void> {
    await this.manager.gracefulShutdown(this.options.shutdown);
    this.detach?.();
    this.detach = undefined;
    const own = this.ownServer;
    if (own) await new Promise((resolve) => own.close(resolve));
  }

  async dispose(): Promise<void> {}

  /** `{ event, data }` to the handler bound for `event`; each value it yields goes back to the client. */
  private dispatch(clientId: string, message: unknown): void {
    const entry = this.sessions.get(clientId);
    if (!entry || typeof message !== 'object' || message === null) return;
    const { event, data } = message as { event?: unknown; data?: unknown };
    const found = entry.bound.find((b) => b.handler.message === event);
    if (!found) return; // not for a gateway: `manager.on('message')` still sees it
    const report = (err: unknown) => this.manager.reportError(clientId, err);
    try {
      found.transform(found.handler.callback(data, event)).subscribe({
        next: (value) => {
          if (value === undefined || value === null) return;
          try {
            entry.socket.send(value as Out); // what the handler returned: unchecked, as in Nest
          } catch (err) {
            report(err); // the session is gone
          }
        },
        error: report,
      });
    } catch (err) {
      report(err);
    }
  }

  private end(clientId: string, reason: string): void {
    const entry = this.sessions.get(clientId);
    if (!entry) return;
    this.sessions.delete(clientId);
    for (const callback of entry.onDisconnect) callback(reason);
  }
}

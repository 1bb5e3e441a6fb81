import type { WebSocket } from 'ws';
import type { Connection } from './connection.js';
import { rejectedFrameCloseCode, rejectedFrameReason } from './rejected-frame.js';

const kConnection = Symbol('stabilizer.connection');
type TaggedSocket = WebSocket & { [kConnection]?: Connection };

/** The manager, as the socket listeners see it. */
export interface SocketListenerTarget {
  readonly nowMs: number;
  handleFrame(conn: Connection, data: Buffer, isBinary: boolean): void;
  handleClosed(conn: Connection, code: number): void;
  reportError(clientId: string | undefined, err: unknown): void;
}

/**
 * The `ws` event listeners of a manager: one set shared by every socket (no closures per connection). A socket
 * carries its `Connection` under a symbol; inside the listeners `this` is the socket.
 */
export class SocketListeners {
  private readonly onMessage: (this: TaggedSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onPong: (this: TaggedSocket) => void;
  private readonly onClose: (this: TaggedSocket, code: number) => void;
  private readonly onError: (this: TaggedSocket, err: Error & { code?: string }) => void;

  constructor(manager: SocketListenerTarget) {
    this.onMessage = function (data, isBinary) {
      const conn = this[kConnection];
      if (conn) manager.handleFrame(conn, data, isBinary);
    };
    this.onPong = function () {
      const conn = this[kConnection];
      if (!conn) return;
      conn.counters.countHeartbeatAnswer(conn.pingSentAtMs);
      conn.lastInboundMs = manager.nowMs;
    };
    this.onClose = function (code) {
      const conn = this[kConnection];
      if (conn) manager.handleClosed(conn, code);
    };
    this.onError = function (err) {
      const conn = this[kConnection];
      if (!conn) return;
      // ws rejected a frame and has already sent its close code: report that code, not the 1006 of a peer that
      // never answers. Only while the TCP socket is alive: on a dead one, ws could send nothing.
      const code = rejectedFrameCloseCode(err);
      const raw = (this as unknown as { _socket?: { destroyed?: boolean } | null })._socket;
      if (code !== undefined && raw?.destroyed !== true) conn.closedBySocket(code, rejectedFrameReason(code));
      else conn.closeReason ??= 'socket-error';
      manager.reportError(conn.id, err);
    };
  }

  /** Tag `socket` with its connection and add the shared listeners. */
  listen(socket: WebSocket, conn: Connection): void {
    (socket as TaggedSocket)[kConnection] = conn;
    socket.on('message', this.onMessage);
    socket.on('pong', this.onPong);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }
}

import { CloseCode } from '../../protocol/close-codes.js';
import type { Connection } from '../transport/connection.js';

/** Options of `gracefulShutdown`. */
export interface ShutdownOptions {
  /**
   * How long clients get to finish the close handshake before they are terminated.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * `true` closes with 1012 (service restart) instead of 1001 (going away).
   * @default false
   */
  restart?: boolean;
  /**
   * Reconnect hint sent to protocol clients (and in the close reason for plain ones).
   * @default config.shutdownRetryAfterMs
   */
  retryAfterMs?: number;
}

/** What a graceful shutdown did. */
export interface ShutdownStats {
  /** Clients that completed the close handshake in time. */
  closed: number;
  /** Clients terminated at the deadline. */
  terminated: number;
  /** Clients whose close attempt threw (already broken sockets); they were terminated too. */
  failed: number;
  durationMs: number;
}

/**
 * Close every connection with a reconnect hint and wait for the close handshakes, up to `timeoutMs`.
 * Protocol clients first get `{"t":"reconnect","retryAfterMs":N}`; plain clients read the hint from the close
 * reason (`retry-after=N`).
 */
export async function runGracefulShutdown(
  connections: Connection[],
  defaultRetryAfterMs: number,
  options: ShutdownOptions,
): Promise<ShutdownStats> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retryAfterMs = options.retryAfterMs ?? defaultRetryAfterMs;
  const code = options.restart ? CloseCode.ServiceRestart : CloseCode.GoingAway;
  const reason = `${options.restart ? 'restarting' : 'shutting down'}; retry-after=${retryAfterMs}`;
  const hintMessage = {
    t: 'reconnect',
    retryAfterMs,
    reason: options.restart ? 'restart' : 'shutdown',
  } as const;
  const hint = JSON.stringify(hintMessage);
  let packedHint: Buffer | undefined; // encoded once, for the MessagePack connections
  let closed = 0;
  let failed = 0;
  const waits: Array<Promise<boolean>> = [];

  for (const conn of connections) {
    if (conn.socket.readyState === 3) {
      closed++;
      continue;
    }
    waits.push(
      new Promise<boolean>((resolve) => {
        conn.socket.once('close', () => resolve(true));
        try {
          const mp = conn.msgpack;
          if (mp) conn.socket.send((packedHint ??= mp.packMessage(hintMessage)));
          else if (conn.protocol) conn.socket.send(hint);
          conn.closeReason ??= 'shutdown';
          conn.sentCloseCode ??= code; // reported by `disconnect` even if the peer is terminated at the deadline
          conn.socket.close(code, reason);
        } catch {
          failed++;
          conn.socket.terminate();
        }
      }),
    );
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const all = Promise.all(waits);
  const first = await Promise.race([all, deadline]);
  clearTimeout(timer);
  let terminated = 0;
  if (first === 'timeout') {
    for (const conn of connections) {
      if (conn.socket.readyState !== 3) {
        terminated++;
        conn.socket.terminate();
      }
    }
    await all;
  }
  closed += waits.length - terminated - failed;
  return { closed, terminated, failed, durationMs: Date.now() - started };
}

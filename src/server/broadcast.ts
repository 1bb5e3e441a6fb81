import type { SessionRecord } from '../backends/types.js';
import type { Connection, WriteOutcome } from './connection.js';
import { Payload, type SendData } from './payload.js';

/** Options of `broadcast`. */
export interface BroadcastOptions {
  /** Client ids that do not receive this message. */
  exclude?: Iterable<string>;
  /**
   * Volatile messages are not sequenced, buffered or replayed, and are dropped (not closed) for a slow consumer.
   * Plain-mode sockets ignore this flag.
   * @default false
   */
  volatile?: boolean;
}

/** A recipient the message could not be written to; it has been disconnected. */
export interface DeliveryFailure {
  clientId: string;
  /** `slow-consumer` (over `maxBufferedBytes`, closed 4001) or `send-failed` (socket error, terminated). */
  reason: 'slow-consumer' | 'send-failed';
}

/** Partial-failure report of one broadcast. */
export interface BroadcastResult {
  /** Sockets the frame was written to. */
  delivered: number;
  /**
   * Protocol sessions that keep it for replay on resume: detached ones, and those whose socket could not take it
   * (closing, failed or over `maxBufferedBytes`: the socket is dropped with a resumable code).
   */
  buffered: number;
  /** Volatile messages skipped for a slow consumer. */
  dropped: number;
  /** Plain-mode recipients whose write failed: the message is lost for them, and each was disconnected. */
  failed: DeliveryFailure[];
  /**
   * Cluster backends only: the counts above are 0 and delivery happens on every node once Redis has sequenced the
   * message. Resolves then (the message is durable), rejects with `BACKEND_UNAVAILABLE` or `HISTORY_LOST`.
   */
  cluster?: Promise<ClusterBroadcastReport>;
}

/** What a cluster broadcast reached. */
export interface ClusterBroadcastReport {
  /** Protocol sessions (attached or detached, on any node) it was sequenced on. */
  sessions: number;
  /** Nodes it was published to. */
  nodes: number;
}

/** What the broadcast path needs from the manager. */
export interface FanOutTarget {
  readonly connections: ReadonlyMap<string, Connection>;
  readonly detachedSessions: ReadonlySet<SessionRecord>;
  readonly nowMs: number;
  /** Assign the next sequence on a session and keep the message for replay. */
  sequence(session: SessionRecord, payload: Payload): number;
  /** Handle a failed write: disconnect the client and report it. */
  onWriteFailure(conn: Connection, outcome: WriteOutcome): DeliveryFailure['reason'];
}

/**
 * The one broadcast path: the payload is serialized once (a `Payload` is shared by every recipient and every
 * replay buffer); per recipient only a sequence header is added. A bad socket never makes it throw.
 */
export function fanOut(
  target: FanOutTarget,
  data: SendData,
  options: BroadcastOptions = {},
): BroadcastResult {
  const payload = data instanceof Payload ? data : new Payload(data);
  const volatile = options.volatile === true;
  const exclude = options.exclude ? new Set(options.exclude) : undefined;
  const result: BroadcastResult = { delivered: 0, buffered: 0, dropped: 0, failed: [] };
  const now = target.nowMs;

  for (const conn of target.connections.values()) {
    if (exclude?.has(conn.id)) continue;
    const session = conn.session;
    const seq = session && !volatile ? target.sequence(session, payload) : undefined;
    const outcome = conn.writePayload(payload, seq, now);
    if (outcome === 'ok') result.delivered++;
    else if (seq !== undefined) {
      // Reliable protocol message: it is in the replay buffer. Drop the socket; the resume delivers it.
      result.buffered++;
      if (outcome !== 'closed') target.onWriteFailure(conn, outcome);
    } else if (outcome === 'closed')
      continue; // already closing (e.g. 4001 sent): not a failure, no terminate
    else if (outcome === 'slow' && volatile) result.dropped++;
    else result.failed.push({ clientId: conn.id, reason: target.onWriteFailure(conn, outcome) });
  }
  if (!volatile) {
    for (const session of target.detachedSessions) {
      if (exclude?.has(session.id)) continue;
      target.sequence(session, payload);
      result.buffered++;
    }
  }
  return result;
}

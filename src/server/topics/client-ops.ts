import { randomUUID } from 'node:crypto';
import { isRetryableCloseCode } from '../../protocol/close-codes.js';
import { ErrorCode } from '../../protocol/error-codes.js';
import { BROADCAST_TOPIC } from '../../protocol/messages.js';
import type { SessionRecord } from '../../backends/types.js';
import type { StorageBackend } from '../storage-backend.js';
import type { Connection } from '../transport/connection.js';
import { StabilizerError } from '../errors.js';
import type { ManagerEvents } from '../events.js';
import type { Memberships } from './membership.js';
import type {
  ClientInfo,
  ClientOp,
  ClientOpAnswer,
  ClientOpOptions,
  ClientOpRoute,
  ClientOpValue,
} from './client-op-types.js';

export type { ClientInfo, ClientOp, ClientOpAnswer, ClientOpOptions, ClientOpRoute, ClientOpValue };

/** What the operations need from the manager. */
export interface ClientOpsHost {
  readonly connections: ReadonlyMap<string, Connection>;
  readonly backend: StorageBackend;
  readonly topics: Memberships;
  disconnect(clientId: string, code: number, reason: string): Promise<boolean>;
  endSession(session: SessionRecord, reason: ManagerEvents['session-end']['reason']): void;
  reportError(clientId: string | undefined, err: unknown): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const ABSENT: ClientOpAnswer = { done: false, why: 'absent' };
const RETRY: ClientOpAnswer = { done: false, why: 'retry' };
const RETRY_CHANGED: ClientOpAnswer = { done: false, why: 'retry', changed: true };
const done = (value: ClientOpValue): ClientOpAnswer => ({ done: true, value });

/** Rejects with `OPERATION_TIMEOUT` once `deadline` (epoch ms) has passed. */
function beforeDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StabilizerError(ErrorCode.OperationTimeout, `${what} did not take effect in time`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * The cluster-wide operations on a client by id (`clusterJoin`, `clusterLeave`, `clusterDisconnect`,
 * `fetchClient`): applied here when this process holds the client, otherwise routed by the backend to the
 * process that does (or applied to the stored session when none does), and retried until they took effect once
 * (a resume that moves the session meanwhile makes the old holder answer `retry`).
 */
export class ClientOperations {
  constructor(private readonly host: ClientOpsHost) {}

  /** Run `op` wherever its client is; resolves with its value once it took effect. */
  async run(op: ClientOp, timeoutMs: number | undefined): Promise<ClientOpValue> {
    const backend = this.host.backend;
    const budgetMs = timeoutMs ?? backend.clientOpTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + budgetMs;
    const what = `${op.op} on client ${op.clientId}`;
    const requestId = randomUUID();
    let changed = false;
    for (let attempt = 0; ; attempt++) {
      let answer = await beforeDeadline(this.apply(op), deadline, what);
      if (!answer.done && answer.why === 'absent') {
        if (!backend.routeClientOp) throw unknownClient(op.clientId);
        const left = deadline - Date.now();
        answer = await beforeDeadline(backend.routeClientOp(op, requestId, left), deadline, what);
      }
      if (answer.done) return answer.value === false && changed ? true : answer.value;
      if (answer.changed) changed = true;
      const left = deadline - Date.now();
      if (left <= 0) throw new StabilizerError(ErrorCode.OperationTimeout, `${what} timed out`);
      await new Promise((r) => setTimeout(r, Math.min(left, 5 * 2 ** Math.min(attempt, 6))));
    }
  }

  /**
   * The synchronous `join`/`leave` for a client that this process does not hold, on a cluster backend: run in
   * the background (a failure is reported as an `error` event). Returns `false` when it is not such a client.
   */
  forward(op: ClientOp): boolean {
    const { backend, connections } = this.host;
    if (!backend.routeClientOp || connections.has(op.clientId) || backend.getSession(op.clientId))
      return false;
    this.run(op, undefined).catch((err: unknown) => {
      // A leave of a client that is gone anywhere is what `leave` answers `false` for, not an error.
      if (op.op === 'leave' && err instanceof StabilizerError && err.code === ErrorCode.UnknownClient) return;
      this.host.reportError(op.clientId, err);
    });
    return true;
  }

  /** Apply `op` in this process if it holds the client. */
  async apply(op: ClientOp): Promise<ClientOpAnswer> {
    const { connections, backend } = this.host;
    const id = op.clientId;
    const conn = connections.get(id);
    const session = conn ? conn.session : backend.getSession(id);
    if (!conn && !session) return ABSENT;
    if (backend.isClientBusy?.(id)) return RETRY;
    switch (op.op) {
      case 'join':
        return this.join(op, conn, session);
      case 'leave':
        return this.settle(op, session, this.host.topics.leave(id, op.topic, 'server'));
      case 'disconnect':
        return this.disconnect(op, conn, session);
      default:
        return done(this.info(id, conn, session));
    }
  }

  private async join(
    op: ClientOp & { op: 'join' },
    conn: Connection | undefined,
    session: SessionRecord | undefined,
  ): Promise<ClientOpAnswer> {
    const { topics, backend } = this.host;
    const id = op.clientId;
    const stale = topics.table.get(op.topic);
    if (session && !session.topics.has(op.topic) && stale?.members.has(id) && !backend.topicReady?.(stale)) {
      // In the topic here but not in its session: a resume reloaded the session from shared storage after a
      // join reached it (the join was not stored yet). Leave the table, so that the join below is a real one.
      topics.table.leave(op.topic, id);
    }
    const joined = topics.join(id, op.topic, 'server') !== undefined;
    // A cluster backend may still be loading the topic here: the member learns its offset once it is in step.
    const topic = topics.table.get(op.topic);
    const ready = topic && backend.topicReady?.(topic);
    if (ready) await ready;
    const now = this.host.connections.get(id);
    const held = now ? now.session : backend.getSession(id);
    const retry = joined ? RETRY_CHANGED : RETRY;
    if (held !== session || (!session && now !== conn)) return retry; // moved meanwhile
    if (session ? !session.topics.has(op.topic) : !conn!.topics?.has(op.topic)) return retry;
    return this.settle(op, session, joined);
  }

  private async disconnect(
    op: ClientOp & { op: 'disconnect' },
    conn: Connection | undefined,
    session: SessionRecord | undefined,
  ): Promise<ClientOpAnswer> {
    const ends = !isRetryableCloseCode(op.code);
    if (conn) {
      await this.host.disconnect(op.clientId, op.code, op.reason);
      return ends && session ? this.settle(op, session, true) : done(true);
    }
    if (!ends) return done(false); // a detached session has no socket to close, and it is kept
    this.host.endSession(session!, 'ended');
    return this.settle(op, session, true);
  }

  /** Resolve once shared storage reflects the change (cluster backends), or `retry` if the session moved first. */
  private async settle(
    op: ClientOp,
    session: SessionRecord | undefined,
    value: boolean,
  ): Promise<ClientOpAnswer> {
    const backend = this.host.backend;
    if (!session || !backend.confirmClientOp) return done(value);
    const retry = value ? RETRY_CHANGED : RETRY;
    if (!(await backend.confirmClientOp(session, op))) return retry;
    // Stored, but a resume may have reloaded the session here from what was stored before: check it again.
    if (backend.isClientBusy?.(op.clientId)) return retry;
    if ((op.op === 'join' || op.op === 'leave') && backend.getSession(op.clientId) === session) {
      if (session.topics.has(op.topic) !== (op.op === 'join')) return retry;
    }
    return done(value);
  }

  private info(id: string, conn: Connection | undefined, session: SessionRecord | undefined): ClientInfo {
    return {
      clientId: id,
      nodeId: this.host.backend.nodeId,
      connected: conn !== undefined,
      session: session !== undefined,
      principal: conn ? conn.principal : session?.principal,
      data: conn ? conn.data : session?.data,
      topics: this.host.topics.topicsOf(id),
    };
  }
}

export function unknownClient(clientId: string): StabilizerError {
  return new StabilizerError(ErrorCode.UnknownClient, `no client with id ${clientId}`);
}

/** The topics of a stored session's topic hash, `$all` left out. */
export function namedTopics(names: Iterable<string>): string[] {
  return [...names].filter((n) => n !== BROADCAST_TOPIC);
}

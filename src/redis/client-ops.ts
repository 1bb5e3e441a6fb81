import { randomBytes } from 'node:crypto';
import type { SessionRecord } from '../backends/types.js';
import type { BackendHost } from '../server/storage-backend.js';
import { isRetryableCloseCode } from '../protocol/close-codes.js';
import { ErrorCode } from '../protocol/error-codes.js';
import {
  namedTopics,
  unknownClient,
  type ClientInfo,
  type ClientOp,
  type ClientOpAnswer,
  type ClientOpValue,
} from '../server/topics/client-ops.js';
import { StabilizerError } from '../server/errors.js';
import { decodeOwner } from './codec.js';
import { typedRedisError } from './errors.js';
import type { RedisLink } from './link.js';
import type { ResolvedRedisOptions } from './options.js';
import { assertCapacity } from './routing.js';
import { topicKeys } from './topic-scripts.js';

/** A request on the owner's node channel: `{"k":"r","i":<request id>,"f":<asking node>,"op":<ClientOp>}`. */
interface OpRequest {
  k: 'r';
  i: string;
  f: string;
  op: ClientOp;
}

/**
 * The owner's answer on the asking node's channel: `{"k":"a","i":<request id>,"r":...}`, `r` = `done` (with
 * `v`, the value), `absent` (it does not hold the client), `retry` (it is moving; `v: true` if it changed
 * something first), or `error` (`c` code, `m`).
 */
interface OpAnswer {
  k: 'a';
  i: string;
  r: 'done' | 'absent' | 'retry' | 'error';
  v?: ClientOpValue;
  c?: string;
  m?: string;
}

const REQUEST_PREFIX = '{"k":"r",';
const ANSWER_PREFIX = '{"k":"a",';
/** How long an owner keeps the outcome of a request, so that a repeated one is answered without a second run. */
const ANSWER_KEEP_MS = 60_000;

function isClientOp(v: unknown): v is ClientOp {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.clientId !== 'string') return false;
  if (o.op === 'join' || o.op === 'leave') return typeof o.topic === 'string';
  if (o.op === 'disconnect') return typeof o.code === 'number' && typeof o.reason === 'string';
  return o.op === 'fetch';
}

/** A value as JSON for another node: `data` that does not serialize goes as `undefined`. */
function encodeAnswer(a: OpAnswer): string {
  try {
    return JSON.stringify(a);
  } catch {
    const info = a.v as ClientInfo;
    return JSON.stringify({ ...a, v: { ...info, data: undefined } });
  }
}

/**
 * The Redis side of the cluster-wide client operations. The asking node runs `wssClientOp`, which finds the
 * session's owner (or the node with the socket) and publishes the request on that node's channel in the same
 * script, or, when no live node owns the session, applies the operation to the stored session. The owner applies
 * it as a local operation (client-ops.ts) and answers on the asking node's channel; an owner that does not answer
 * within half of `nodeTimeoutMs` is asked again (same request id: it runs the operation once), until its heartbeat
 * expires and the script applies the operation to the stored session instead.
 */
export class ClusterClientOps {
  private readonly waiting = new Map<string, (a: OpAnswer | undefined) => void>();
  /** Outcomes of requests run here, by request id (a request repeated while it runs shares its run). */
  private readonly runs = new Map<string, Promise<OpAnswer>>();

  constructor(
    private readonly link: RedisLink,
    private readonly opts: ResolvedRedisOptions,
    private readonly host: () => BackendHost | undefined,
    /** Whether this node has a local session under the id, in any state (a claim in flight included). */
    private readonly holds: (clientId: string) => boolean,
  ) {}

  /** Default `timeoutMs`: long enough for a dead owner to be detected (`nodeTimeoutMs`) and worked around. */
  get timeoutMs(): number {
    return Math.max(5000, 2 * this.opts.nodeTimeoutMs);
  }

  /** Run `op` on a client that this node does not hold (see `StorageBackend.routeClientOp`). */
  async route(op: ClientOp, requestId: string, attemptTimeoutMs: number): Promise<ClientOpAnswer> {
    if (this.link.degraded) {
      throw new StabilizerError(ErrorCode.BackendUnavailable, `redis is unavailable: ${op.op} deferred`);
    }
    assertCapacity(this.link, this.opts);
    const value = op.op === 'join' ? await this.joinPosition(op.topic) : '';
    const waitMs = Math.min(attemptTimeoutMs, Math.max(250, this.opts.nodeTimeoutMs / 2));
    const request = JSON.stringify({ k: 'r', i: requestId, f: this.opts.nodeId, op } satisfies OpRequest);
    let skip = '';
    for (let tries = 0; tries < 2; tries++) {
      const answered = this.wait(requestId, waitMs);
      let reply: unknown[];
      try {
        reply = (await this.link.call('wssClientOp', [
          requestId,
          this.opts.nodeId,
          this.opts.nodeTimeoutMs,
          op.op,
          op.clientId,
          op.op === 'join' || op.op === 'leave' ? op.topic : '',
          value,
          op.op === 'disconnect' && !isRetryableCloseCode(op.code) ? '1' : '0',
          request,
          skip,
          this.host()?.config.topics?.maxPerConnection ?? 100,
        ])) as unknown[];
      } catch (err) {
        this.cancel(requestId);
        throw typedRedisError(err, op.op);
      }
      if (reply[0] !== 'node') this.cancel(requestId);
      if (reply[0] === 'unknown') throw unknownClient(op.clientId);
      if (reply[0] === 'limit') {
        throw new StabilizerError(ErrorCode.TopicLimit, `client ${op.clientId} is in too many topics`);
      }
      if (reply[0] === 'self') {
        if (this.holds(op.clientId)) return { done: false, why: 'retry' };
        skip = `${this.opts.nodeId} ${String(reply[1])}`; // Redis names this node, which no longer has it
        continue;
      }
      if (reply[0] === 'done') return { done: true, value: this.storedValue(op, reply) };
      const a = await answered;
      if (!a || a.r === 'retry') return { done: false, why: 'retry', changed: a?.v === true };
      if (a.r === 'done') return { done: true, value: a.v as ClientOpValue };
      if (a.r === 'error')
        throw new StabilizerError((a.c ?? ErrorCode.BackendUnavailable) as ErrorCode, a.m ?? 'failed');
      skip = `${String(reply[1])} ${String(reply[2])}`; // absent: that node lost it without Redis knowing
    }
    return { done: false, why: 'retry' };
  }

  /** `true` once Redis reflects what this node applied to `session` (see `StorageBackend.confirmClientOp`). */
  async confirm(session: SessionRecord, op: ClientOp): Promise<boolean> {
    if (op.op === 'fetch') return true;
    const kind = op.op === 'join' ? 'in' : op.op === 'leave' ? 'out' : 'gone';
    const topic = op.op === 'disconnect' ? '' : op.topic;
    try {
      const r = await this.link.call('wssClientOpCheck', [session.id, kind, topic, session.incarnation]);
      return r === 1;
    } catch (err) {
      throw typedRedisError(err, op.op);
    }
  }

  /** A message on this node's channel: handled here (`true`) if it is a request or an answer. */
  dispatch(text: string): boolean {
    if (text.startsWith(ANSWER_PREFIX)) {
      const a = this.parse(text) as OpAnswer | undefined;
      if (a && typeof a.i === 'string') this.waiting.get(a.i)?.(a);
      return true;
    }
    if (!text.startsWith(REQUEST_PREFIX)) return false;
    const m = this.parse(text) as OpRequest | undefined;
    if (!m || typeof m.i !== 'string' || typeof m.f !== 'string' || !isClientOp(m.op)) {
      this.link.log.warn({ event: 'redis.bad-message' }, 'unexpected client operation request');
      return true;
    }
    let run = this.runs.get(m.i);
    if (!run) {
      run = this.runHere(m.op);
      const id = m.i;
      this.runs.set(id, run);
      // Only a done (or failed) run answers a repeat; a node the client moves to must run it again.
      void run.then((a) => {
        if (a.r !== 'done' && a.r !== 'error') return void this.runs.delete(id);
        setTimeout(() => this.runs.delete(id), ANSWER_KEEP_MS).unref();
      });
    }
    void run.then((a) =>
      this.link.cmd
        .publish(`${this.opts.controlPrefix}n:${m.f}`, encodeAnswer({ ...a, i: m.i }))
        .catch(() => {}),
    );
    return true;
  }

  private async runHere(op: ClientOp): Promise<OpAnswer> {
    const host = this.host();
    if (!host) return { k: 'a', i: '', r: 'absent' };
    try {
      const a = await host.applyClientOp(op);
      if (a.done) return { k: 'a', i: '', r: 'done', v: a.value };
      return a.changed ? { k: 'a', i: '', r: a.why, v: true } : { k: 'a', i: '', r: a.why };
    } catch (err) {
      const code = err instanceof StabilizerError ? err.code : ErrorCode.BackendUnavailable;
      return { k: 'a', i: '', r: 'error', c: code, m: err instanceof Error ? err.message : String(err) };
    }
  }

  private parse(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }

  private wait(requestId: string, ms: number): Promise<OpAnswer | undefined> {
    return new Promise((resolve) => {
      const settle = (a: OpAnswer | undefined) => {
        clearTimeout(timer);
        if (this.waiting.get(requestId) === settle) this.waiting.delete(requestId);
        resolve(a);
      };
      const timer = setTimeout(() => settle(undefined), ms);
      timer.unref();
      this.waiting.set(requestId, settle);
    });
  }

  private cancel(requestId: string): void {
    this.waiting.get(requestId)?.(undefined);
  }

  /**
   * Where a stored session joins `topic`: its current offset and epoch (`"<offset> <epoch>"`), the epoch set here
   * if the topic has none yet (as its first read or publish would), so that the resume finds the same history.
   */
  private async joinPosition(topic: string): Promise<string> {
    const meta = topicKeys(this.opts.keyPrefix, topic).meta;
    try {
      const res = await this.link.cmd
        .multi()
        .hsetnx(meta, 'e', randomBytes(12).toString('base64url'))
        .hmget(meta, 'o', 'e')
        .exec();
      const h = (res?.[1]?.[1] ?? []) as Array<string | null>;
      return `${Number(h[0] ?? 0)} ${h[1] ?? ''}`;
    } catch (err) {
      throw typedRedisError(err, 'join');
    }
  }

  private storedValue(op: ClientOp, reply: unknown[]): ClientOpValue {
    if (op.op !== 'fetch') return Number(reply[1]) === 1;
    const owner = decodeOwner(String(reply[1]), String(reply[2]));
    const names = Array.isArray(reply[3]) ? (reply[3] as unknown[]).map(String) : [];
    return {
      clientId: op.clientId,
      nodeId: undefined,
      connected: false,
      session: true,
      principal: owner.principal,
      data: owner.data,
      topics: namedTopics(names),
    };
  }
}

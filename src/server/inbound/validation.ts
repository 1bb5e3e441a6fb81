import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ErrorCode } from '../../protocol/error-codes.js';
import type { Connection } from '../transport/connection.js';
import type { ServerCounters } from '../operations/counters.js';
import type { InvalidMessageEvent, InvalidMessageIssue } from './invalid-message.js';
import type { Logger } from '../operations/logger.js';

export type { InvalidMessageEvent, InvalidMessageIssue };

/**
 * Run-time checks of what clients send, with any validator that implements Standard Schema
 * (https://standardschema.dev): zod ≥ 3.24, valibot ≥ 1, arktype ≥ 2, effect, …
 */
export interface InboundSchemas<In = unknown> {
  /**
   * Checks every inbound data message before `message` listeners see it; they see the schema's **output** (so a
   * transform or a default applies), and the manager's `In` is inferred from it. What is checked is what `message`
   * would carry: protocol mode, the decoded JSON payload or a `Buffer`; plain mode, the text as a `string` or a
   * `Buffer` (parse JSON in the schema, e.g. `z.string().transform(JSON.parse).pipe(...)`). A message that fails
   * is not delivered: it gets an `INVALID_MESSAGE` error answer and an `invalid-message` event (README "Typed
   * messages", PROTOCOL.md §2.5); a reliable one is still acked, so the client's stream goes on. Async validators
   * are awaited in arrival order, per connection. A validator that throws counts as a failure (and `error` is
   * emitted).
   * @default undefined (no validation: `data` is what the client sent, typed as declared)
   */
  inbound?: StandardSchemaV1<unknown, In>;
}

/** What the validator said about one message. */
export type Verdict = StandardSchemaV1.Result<unknown>;

/** Issues in an error answer: at most this many, each message cut to {@link maxIssueChars}. */
export const maxIssuesAnswered = 5;
export const maxIssueChars = 200;

/** What the validation needs from the manager. */
export interface ValidationHost {
  readonly counters: ServerCounters;
  readonly log: Logger;
  nowMs: number;
  reportError(clientId: string | undefined, err: unknown): void;
  /** Hand a checked (or unchecked) message to `message` listeners. */
  deliver(
    conn: Connection,
    data: unknown,
    isBinary: boolean,
    reliable: boolean,
    seq?: number,
    messageId?: string,
  ): void;
  /** Emit `invalid-message` for `conn`. */
  announceInvalid(conn: Connection, event: InvalidMessageEvent): void;
}

const isThenable = (v: unknown): v is PromiseLike<Verdict> =>
  typeof (v as PromiseLike<Verdict> | undefined)?.then === 'function';

/** Inbound validation of one manager; without a schema every method is a pass-through. */
export class InboundValidation {
  constructor(
    private readonly schema: StandardSchemaV1 | undefined,
    private readonly host: ValidationHost,
  ) {}

  /**
   * Validate `data`. `undefined` without a schema; a promise for an async validator (it never rejects: a throw or
   * rejection is reported and becomes an issue).
   */
  check(conn: Connection, data: unknown): Verdict | Promise<Verdict> | undefined {
    if (!this.schema) return undefined;
    const fail = (err: unknown): Verdict => {
      this.host.reportError(conn.id, err);
      return { issues: [{ message: 'validator failed' }] };
    };
    try {
      const result = this.schema['~standard'].validate(data);
      return isThenable(result) ? Promise.resolve(result).then(undefined, fail) : result;
    } catch (err) {
      return fail(err);
    }
  }

  /** Whether the verdict of {@link check} must be awaited. */
  isPending(verdict: Verdict | Promise<Verdict> | undefined): verdict is Promise<Verdict> {
    return verdict !== undefined && isThenable(verdict);
  }

  /** Deliver a message its verdict allows (the schema's output), or answer an invalid one. */
  settle(
    conn: Connection,
    data: unknown,
    isBinary: boolean,
    verdict: Verdict | undefined,
    reliable: boolean,
    seq?: number,
    messageId?: string,
  ): void {
    if (!verdict) return this.host.deliver(conn, data, isBinary, reliable, seq, messageId);
    if (!verdict.issues) {
      return this.host.deliver(conn, verdict.value, isBinary, reliable, seq, messageId);
    }
    const issues = verdict.issues.map(plainIssue);
    const h = this.host;
    h.counters.invalidMessages++;
    h.log.warn(
      { event: 'invalid-message', clientId: conn.id, seq, issues: issues.length, first: issues[0]?.message },
      'invalid message',
    );
    // The answer goes first: a reliable message's ack follows it, so the client sees the error before the ack.
    const answer: Record<string, unknown> = {
      t: 'error',
      code: ErrorCode.InvalidMessage,
      message: 'invalid message',
      issues: issues.slice(0, maxIssuesAnswered),
    };
    if (seq !== undefined) answer.s = seq;
    conn.write(JSON.stringify(answer), false, h.nowMs);
    h.announceInvalid(conn, { clientId: conn.id, data, isBinary, reliable, seq, messageId, issues });
  }
}

function plainIssue(issue: StandardSchemaV1.Issue): InvalidMessageIssue {
  const message =
    issue.message.length > maxIssueChars ? `${issue.message.slice(0, maxIssueChars - 1)}…` : issue.message;
  if (!issue.path?.length) return { message };
  const path = issue.path.map((p) => {
    const key = typeof p === 'object' ? p.key : p;
    return typeof key === 'number' ? key : String(key);
  });
  return { message, path };
}

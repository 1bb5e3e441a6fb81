import type { DataMessage, ProtocolMessage } from '../../protocol/messages.js';
import type { SessionRecord } from '../../backends/types.js';
import type { Connection } from '../transport/connection.js';
import type { ManagerHost } from '../manager-host.js';
import type { Verdict } from '../inbound/validation.js';

type Violation = (conn: Connection, why: string) => void;

/**
 * A frame on a welcomed protocol connection: data (client sequences checked, delivered in order once, acked once
 * durable; shared rate limits keep arrival order), acks, pings, and topic subscriptions.
 */
export function handleSessionMessage(
  m: ManagerHost,
  conn: Connection,
  msg: ProtocolMessage,
  isBinary: boolean,
  violation: Violation,
): void {
  const session = conn.session!;
  switch (msg.t) {
    case 'd':
      return handleData(m, conn, msg, isBinary, violation);
    case 'ack':
    case 'pong':
      if (msg.t === 'pong') conn.counters.countHeartbeatAnswer(conn.pingSentAtMs);
      if (msg.s === undefined) return;
      if (msg.s > session.lastSeq) return violation(conn, 'ack ahead of sent');
      session.buffer.ack(msg.s);
      m.backend.onAck?.(session, msg.s);
      return;
    case 'ping':
      conn.pong(m.nowMs);
      return;
    case 'vis':
      conn.hidden = msg.hidden;
      return;
    case 'sub':
    case 'unsub':
      // Not before data messages sent earlier that still wait for a shared rate limiter.
      if (conn.inboundTail) return m.admission.afterPending(conn, () => subscription(m, conn, msg));
      return subscription(m, conn, msg);
    default:
      return violation(conn, `unexpected ${msg.t}`);
  }
}

function subscription(m: ManagerHost, conn: Connection, msg: { t: 'sub' | 'unsub'; c: string }): void {
  if (msg.t === 'sub') void m.topics.subscribe(conn, msg.c);
  else m.topics.unsubscribe(conn, msg.c);
}

function handleData(
  m: ManagerHost,
  conn: Connection,
  msg: DataMessage,
  isBinary: boolean,
  violation: Violation,
): void {
  const session = conn.session!;
  if (msg.s === undefined) {
    if (!m.withinRateLimit(conn)) return;
    const p = msg.p;
    const verdict = m.validation.check(conn, p);
    if (m.admission.mustWait(conn) || m.validation.isPending(verdict)) {
      m.admission.admit(conn, (v) => m.validation.settle(conn, p, isBinary, v, false), verdict);
    } else m.validation.settle(conn, p, isBinary, verdict, false);
    return;
  }
  // Sequenced messages still waiting for a shared limiter count as received for the order checks; the session
  // only records (and acks) one once it is delivered.
  const last = conn.admittedClientSeq ?? session.lastClientSeq;
  if (msg.s <= last) {
    // A duplicate after a resume: ack again, deliver nothing (one still waiting is acked once delivered).
    if (msg.s <= session.lastClientSeq) ackDurable(m, conn, session, session.lastClientSeq);
    return;
  }
  if (msg.s !== last + 1) return violation(conn, 'client sequence gap');
  if (!m.withinRateLimit(conn)) return; // not processed: the client resends it after resuming
  const seq = msg.s;
  const data = isBinary ? Buffer.from(msg.p as Uint8Array) : msg.p;
  // Requests and replies are not application messages: the inbound schema does not apply to them.
  const verdict = msg.q === undefined && msg.r === undefined ? m.validation.check(conn, data) : undefined;
  if (!m.admission.mustWait(conn) && !m.validation.isPending(verdict)) {
    return acceptReliable(m, conn, session, msg, data, isBinary, verdict);
  }
  // Until its verdict (and any shared limiter) is in, later messages wait, and a resend counts as a duplicate.
  conn.admittedClientSeq = seq;
  m.admission.admit(conn, (v) => acceptReliable(m, conn, session, msg, data, isBinary, v), verdict);
}

/** Record, deliver (or answer as invalid) and ack one reliable message: an invalid one is acked too. */
function acceptReliable(
  m: ManagerHost,
  conn: Connection,
  session: SessionRecord,
  msg: DataMessage,
  data: unknown,
  isBinary: boolean,
  verdict: Verdict | undefined,
): void {
  const seq = msg.s!;
  session.lastClientSeq = seq;
  if (msg.q !== undefined) m.requests.handleRequest(conn, session, msg.q, msg.p, seq);
  else if (msg.r !== undefined) m.requests.handleReply(conn, session, msg.r, msg.p, msg.e);
  else m.validation.settle(conn, data, isBinary, verdict, true, seq, `${session.incarnation}:${seq}`);
  ackDurable(m, conn, session, seq);
}

/** Ack once the backend has stored the client sequence (a cluster backend); at once otherwise. */
function ackDurable(m: ManagerHost, conn: Connection, session: SessionRecord, seq: number): void {
  const durable = m.backend.persistClientSeq?.(session, seq);
  if (!durable) return ack(m, conn, seq);
  // On failure there is no ack: the client resends after its resume and the server drops the duplicate.
  durable.then(
    () => ack(m, conn, seq),
    () => {},
  );
}

function ack(m: ManagerHost, conn: Connection, seq: number): void {
  if (conn.msgpack) conn.writeMessage({ t: 'ack', s: seq }, m.nowMs);
  else conn.write(`{"t":"ack","s":${seq}}`, false, m.nowMs);
}

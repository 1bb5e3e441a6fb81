import type { WelcomeMessage } from '../../protocol/messages.js';
import type { Connection } from '../transport/connection.js';
import type { ManagerHost } from '../manager-host.js';
import type { ResumePlan } from './resume.js';

/**
 * Write the `welcome` and the whole replay in one corked burst: the inbox first, then each topic (one outcome per
 * topic, never partial). Called synchronously after the last await of the handshake, with the connection already
 * registered, so nothing sent meanwhile is missed or duplicated. Returns the number of messages replayed.
 */
export function writeWelcome(
  m: ManagerHost,
  conn: Connection,
  plan: ResumePlan,
  positions: Record<string, number> | undefined,
  token: string,
): number {
  const session = conn.session!;
  const welcome: WelcomeMessage = {
    t: 'welcome',
    sessionId: session.id,
    token,
    resume: plan.kind,
    lastSeq: session.lastSeq,
    lastClientSeq: session.lastClientSeq,
    pingIntervalMs: m.config.pingIntervalMs,
    pongTimeoutMs: m.config.pongTimeoutMs,
    maxPayloadBytes: m.config.maxPayloadBytes,
  };
  if (plan.kind === 'fresh') welcome.reason = plan.reason;
  const replay = plan.kind === 'resumed' ? plan.replay : [];
  // Every topic gets exactly one outcome; a fresh session is only in `$all`, fresh for the session's reason.
  const topics =
    plan.kind === 'resumed'
      ? m.topics.table.planResume(session, positions)
      : [...session.topics].map(([c, o]) => ({
          state: { c, o, resume: 'fresh' as const, reason: plan.reason },
          replay: [],
        }));
  if (topics.length > 0) welcome.topics = topics.map((t) => t.state);
  conn.cork();
  let written = conn.writeMessage(welcome, m.nowMs);
  // The inbox replay fits an empty socket (config: replay.maxBytes ≤ maxBufferedBytes / 2); if a write fails
  // anyway, drop the socket rather than leave a hole the client would only find at the next live message. A
  // topic replay that does not fit is cut the same way: the client resumes again from where it got to.
  for (let i = 0; i < replay.length && written === 'ok'; i++) {
    written = conn.writePayload(replay[i]!.payload, replay[i]!.seq, m.nowMs);
  }
  let replayed = replay.length;
  for (const t of topics) {
    if (t.state.resume === 'fresh') session.topics.set(t.state.c, t.state.o); // it continues from there
    for (let i = 0; i < t.replay.length && written === 'ok'; i++) {
      const pub = t.replay[i]!;
      const skip = pub.exclude?.has(session.id) === true;
      written = conn.writePublication(pub, skip, m.nowMs);
      if (!skip) replayed++;
    }
  }
  conn.uncork();
  if (written !== 'ok') m.onWriteFailure(conn, written);
  return replayed;
}

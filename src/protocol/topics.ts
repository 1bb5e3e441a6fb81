/**
 * Topic names, topic positions and the small value checks the decoders share (PROTOCOL.md §2.6). Split from
 * messages.ts to keep files short; messages.ts re-exports the public names.
 */
import type { FreshReason } from './fresh-reason.js';

/**
 * The built-in topic that `broadcast()` publishes to. Every protocol session is a member of it from its start.
 * Names starting with `$` are reserved for the server: clients cannot subscribe to them.
 */
export const BROADCAST_TOPIC = '$all';

/** Why one topic could not be resumed. The other topics of the session are not affected. */
export type TopicFreshReason =
  /** Messages the client missed were trimmed from the topic's history (count, bytes or age). */
  | 'gap'
  /** The client's position is ahead of the topic: the topic was recreated (e.g. the server restarted). */
  | 'unknown-topic'
  /** The application's `authorizeSubscribe` hook no longer allows this subscription. */
  | 'forbidden';

/** Longest topic name on the wire, in UTF-8 bytes (the server may allow less: `topics.maxNameLength`). */
export const MAX_TOPIC_NAME_BYTES = 255;

/** One topic's outcome in a `welcome`: where the client stands, and whether its missed messages follow. */
export interface TopicState {
  /** Topic name. */
  c: string;
  /**
   * The offset the client now stands at: `resumed` replays every message after it; `fresh` continues after it
   * (the messages up to it are not delivered).
   */
  o: number;
  resume: 'resumed' | 'fresh';
  /** Why the topic starts fresh: a {@link TopicFreshReason}, or the session's {@link FreshReason}. */
  reason?: TopicFreshReason | FreshReason;
}

/** @internal A sequence, offset or id: a safe non-negative integer. */
export const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Whether `name` can be a topic on the wire: a non-empty string of at most {@link MAX_TOPIC_NAME_BYTES} UTF-8
 * bytes without control characters. (`$`-names are valid on the wire but reserved for the server.)
 */
export function isTopicName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_TOPIC_NAME_BYTES) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return false;
  return new TextEncoder().encode(name).length <= MAX_TOPIC_NAME_BYTES;
}

/** @internal */
export const isTopicPositions = (v: unknown): v is Record<string, number> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.entries(v).every(([k, o]) => isTopicName(k) && isSeq(o));

/** @internal */
export const isTopicStates = (v: unknown): v is TopicState[] =>
  Array.isArray(v) &&
  v.every(
    (e: Partial<TopicState> | null) =>
      typeof e === 'object' &&
      e !== null &&
      isTopicName(e.c) &&
      isSeq(e.o) &&
      (e.resume === 'resumed' || e.resume === 'fresh'),
  );

import { randomBytes } from 'node:crypto';
import { ReplayBuffer, type ReplayLimits } from './replay-buffer.js';
import type { SessionOwner, SessionRecord } from './types.js';

/** A new random session incarnation: 16 base64url characters. */
export const newIncarnation = (): string => randomBytes(12).toString('base64url');

/** A new, empty session record (both backends build their records here). */
export function newSessionRecord(
  id: string,
  limits: ReplayLimits,
  incarnation: string,
  owner: SessionOwner,
): SessionRecord {
  return {
    id,
    incarnation,
    principal: owner.principal,
    data: owner.data,
    lastSeq: 0,
    lastClientSeq: 0,
    buffer: new ReplayBuffer(limits),
    detachedAtMs: undefined,
    topics: new Map(),
  };
}

import { describe, expect, it } from 'vitest';
import { WebSocketConnectionManager } from '../../src/server/index.js';
import { MAX_IDLE_TOPIC_OFFSETS } from '../../src/server/topics/topics.js';

// Memory backend: offsets are never reused, with or without members (PROTOCOL.md §2.6), and the offsets kept for
// topics without members are bounded.

describe('topic offsets in memory', () => {
  it('a topic without members keeps its offset; past the bound, a forgotten or new topic starts above it', async () => {
    const manager = new WebSocketConnectionManager({});
    const table = manager.topicTable;
    for (let i = 0; i < 3; i++) manager.publish('first', i);
    expect(table.get('first')).toBeUndefined(); // no members: nothing held but the number
    manager.publish('first', 'volatile', { volatile: true }); // takes no offset
    expect(table.publishIdle('first')).toBe(4);
    // Over the bound, the oldest idle topic (`first`, at 4) is forgotten: no topic starts at or below 4 any more.
    for (let i = 0; i < MAX_IDLE_TOPIC_OFFSETS; i++) table.publishIdle(`t${i}`);
    expect(table.publishIdle('first')).toBe(5);
    expect(table.publishIdle('never-seen')).toBe(5);
    await manager.gracefulShutdown({ timeoutMs: 10 });
  });
});

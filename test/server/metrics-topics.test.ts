import * as promClient from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerPrometheusMetrics, topicMemberSeries } from '../../src/metrics/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

/** Every `topic_members` series of a real scrape, by topic label. */
async function topicSeries(registry: promClient.Registry): Promise<Record<string, number>> {
  const text = await registry.metrics();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^websocket_stabilizer_topic_members\{topic="([^"]*)"\} (\d+)$/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

describe('per-topic member counts (topicMetrics)', () => {
  it('the largest topics get a series each, the rest are summed as other, read at scrape time', async () => {
    const s = await startServer();
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, {
      promClient,
      registry,
      topicMetrics: { maxTopics: 2, include: (t) => !t.startsWith('user:') },
    });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { welcome } = await RawProtocolClient.handshake(s.url);
      ids.push(welcome.sessionId);
    }
    const plain = await openClient(s.url); // plain sockets are members too
    await waitFor(() => s.manager.getConnectionCount() === 6);
    const plainId = [...s.manager.connections.values()].find((c) => c.session === undefined)!.id;
    const joinAll = (topic: string, members: string[]) =>
      members.forEach((id) => expect(s.manager.join(id, topic)).toBe(true));
    joinAll('lobby', [...ids, plainId]); // 6
    joinAll('news', ids.slice(0, 3)); // 3
    joinAll('games', ids.slice(0, 2)); // 2: third largest, over maxTopics
    joinAll('user:1', ids.slice(0, 4)); // 4: not included by name
    expect(await topicSeries(registry)).toEqual({ lobby: 6, news: 3, other: 6 });

    // Changes show at the next scrape: a topic that empties is dropped, the next one moves up.
    for (const id of ids.slice(0, 3)) s.manager.leave(id, 'news');
    plain.close();
    await waitFor(() => s.manager.getConnectionCount() === 5);
    expect(await topicSeries(registry)).toEqual({ lobby: 5, games: 2, other: 4 });
  });

  it('without topicMetrics there is no per-topic series; maxTopics 0 sums everything as other', async () => {
    const s = await startServer();
    const { welcome } = await RawProtocolClient.handshake(s.url);
    await waitFor(() => s.manager.isConnected(welcome.sessionId));
    s.manager.join(welcome.sessionId, 'room');
    const off = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry: off });
    expect(await off.metrics()).not.toContain('topic_members');
    const zero = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry: zero, topicMetrics: { maxTopics: 0 } });
    expect(await topicSeries(zero)).toEqual({ other: 1 });
    expect(() =>
      registerPrometheusMetrics(s.manager, {
        promClient,
        registry: new promClient.Registry(),
        topicMetrics: { maxTopics: -1 },
      }),
    ).toThrow(/maxTopics/);
  });

  it('orders by member count then name; a topic named "other" cannot take a series of its own', () => {
    const counts = new Map([
      ['b', 2],
      ['a', 2],
      ['other', 7],
      ['c', 1],
    ]);
    expect(topicMemberSeries(counts, { maxTopics: 2 })).toEqual([
      ['a', 2],
      ['b', 2],
      ['other', 8],
    ]);
  });
});

import { type } from 'arktype';
import * as promClient from 'prom-client';
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { StabilizerClient } from '../../src/client/index.js';
import type { ClientError } from '../../src/client/index.js';
import {
  ConfigError,
  ErrorCode,
  WebSocketConnectionManager,
  type InvalidMessageEvent,
  type ManagerEvents,
} from '../../src/server/index.js';
import { registerPrometheusMetrics } from '../../src/metrics/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, nextMessage, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

const say = z.object({ type: z.literal('say'), text: z.string().min(1), room: z.string().default('lobby') });

function record(manager: WebSocketConnectionManager): {
  messages: Array<ManagerEvents['message']>;
  invalid: InvalidMessageEvent[];
} {
  const messages: Array<ManagerEvents['message']> = [];
  const invalid: InvalidMessageEvent[] = [];
  manager.on('message', (e) => void messages.push(e));
  manager.on('invalid-message', (e) => void invalid.push(e));
  return { messages, invalid };
}

describe('schema.inbound (Standard Schema)', () => {
  it('zod, protocol mode: delivers the output, answers an invalid reliable message with its seq and acks it', async () => {
    const ts = await startServer({ schema: { inbound: say } });
    const { messages, invalid } = record(ts.manager);
    const { client } = await RawProtocolClient.handshake(ts.url);

    client.send({ t: 'd', s: 1, p: { type: 'say', text: 'hi' } });
    client.send({ t: 'd', s: 2, p: { type: 'say', text: 42 } });
    client.send({ t: 'd', s: 3, p: { type: 'say', text: 'after', room: 'r1' } });
    await client.waitFor((f) => f.t === 'ack' && f.s === 3);

    // The schema's output: the default filled in.
    expect(messages.map((m) => m.data)).toEqual([
      { type: 'say', text: 'hi', room: 'lobby' },
      { type: 'say', text: 'after', room: 'r1' },
    ]);
    const error = client.frames.find((f) => f.t === 'error');
    expect(error).toMatchObject({ code: 'INVALID_MESSAGE', s: 2, issues: [{ path: ['text'] }] });
    // The answer comes before the ack of the same message.
    const order = client.frames.filter((f) => f.t === 'error' || f.t === 'ack').map((f) => `${f.t}:${f.s}`);
    expect(order).toEqual(['ack:1', 'error:2', 'ack:2', 'ack:3']);
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ seq: 2, reliable: true, data: { type: 'say', text: 42 } });
    expect(invalid[0]!.messageId).toMatch(/:2$/);
    expect(ts.manager.counters.invalidMessages).toBe(1);
    const registry = new promClient.Registry();
    registerPrometheusMetrics(ts.manager, { promClient, registry });
    expect(await registry.metrics()).toMatch(/^websocket_stabilizer_messages_invalid_total 1$/m);
    expect(client.closeInfo).toBeUndefined();
    client.ws.close();
  });

  it('zod, protocol mode: an invalid volatile message is answered without a seq', async () => {
    const ts = await startServer({ schema: { inbound: say } });
    const { messages, invalid } = record(ts.manager);
    const { client } = await RawProtocolClient.handshake(ts.url);
    client.send({ t: 'd', p: 'not an object' });
    client.send({ t: 'd', p: { type: 'say', text: 'ok' } });
    const error = await client.waitFor((f) => f.t === 'error');
    expect(error.code).toBe('INVALID_MESSAGE');
    expect(error).not.toHaveProperty('s');
    await waitFor(() => messages.length === 1, 'the valid volatile message');
    expect(invalid[0]).toMatchObject({ reliable: false, data: 'not an object' });
    client.ws.close();
  });

  it('valibot, async: verdicts that finish out of order still deliver, answer and ack in arrival order', async () => {
    // The earlier a message, the longer its check takes.
    const slowFirst = v.pipeAsync(
      v.object({ n: v.number(), ok: v.boolean() }),
      v.checkAsync(async (m) => {
        await new Promise((r) => setTimeout(r, (10 - m.n) * 15));
        return m.ok;
      }, 'not ok'),
    );
    const ts = await startServer({ schema: { inbound: slowFirst } });
    const { messages, invalid } = record(ts.manager);
    const { client } = await RawProtocolClient.handshake(ts.url);
    for (let n = 1; n <= 9; n++) client.send({ t: 'd', s: n, p: { n, ok: n % 3 !== 0 } });
    await client.waitFor((f) => f.t === 'ack' && f.s === 9);

    expect(messages.map((m) => (m.data as { n: number }).n)).toEqual([1, 2, 4, 5, 7, 8]);
    expect(invalid.map((e) => e.seq)).toEqual([3, 6, 9]);
    expect(invalid[0]!.issues).toEqual([{ message: 'not ok' }]);
    const acks = client.frames.filter((f) => f.t === 'ack').map((f) => f.s);
    expect(acks).toEqual([...acks].sort((a, b) => (a as number) - (b as number)));
    const answers = client.frames.filter((f) => f.t === 'error').map((f) => f.s);
    expect(answers).toEqual([3, 6, 9]);
    client.ws.close();
  });

  it('async: a message whose check is pending when the socket drops is resent after resume and delivered once', async () => {
    let delayMs = 300;
    const slow = v.pipeAsync(
      v.string(),
      v.checkAsync(async () => {
        await new Promise((r) => setTimeout(r, delayMs));
        return true;
      }),
    );
    const ts = await startServer({ schema: { inbound: slow } });
    const { messages } = record(ts.manager);
    const first = await RawProtocolClient.handshake(ts.url);
    first.client.send({ t: 'd', s: 1, p: 'one' });
    await new Promise((r) => setTimeout(r, 50));
    first.client.ws.terminate(); // before the verdict: not acked, not delivered
    await new Promise((r) => setTimeout(r, 400));
    expect(messages).toHaveLength(0);

    delayMs = 1;
    const again = await RawProtocolClient.handshake(ts.url, {
      token: first.welcome.token,
      sessionId: first.welcome.sessionId,
      lastSeq: 0,
    });
    expect(again.welcome.resume).toBe('resumed');
    expect(again.welcome.lastClientSeq).toBe(0);
    again.client.send({ t: 'd', s: 1, p: 'one' });
    await again.client.waitFor((f) => f.t === 'ack' && f.s === 1);
    expect(messages.map((m) => m.data)).toEqual(['one']);
    again.client.ws.close();
  });

  it('a validator that throws is an invalid message plus an error event, not a crash', async () => {
    const throwing = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (): never => {
          throw new Error('validator bug');
        },
      },
    };
    const ts = await startServer({ schema: { inbound: throwing } });
    const errors: Error[] = [];
    ts.manager.on('error', (e) => void errors.push(e.error));
    const { invalid } = record(ts.manager);
    const { client } = await RawProtocolClient.handshake(ts.url);
    client.send({ t: 'd', s: 1, p: 'x' });
    await client.waitFor((f) => f.t === 'ack' && f.s === 1);
    expect(client.frames.find((f) => f.t === 'error')).toMatchObject({ code: 'INVALID_MESSAGE', s: 1 });
    expect(errors.map((e) => e.message)).toEqual(['validator bug']);
    expect(invalid).toHaveLength(1);
  });

  it('arktype, bundled client: the error event carries INVALID_MESSAGE, and the reliable stream goes on', async () => {
    const command = type({ type: "'say'", text: 'string' });
    const ts = await startServer({ schema: { inbound: command } });
    const { messages } = record(ts.manager);
    const client = new StabilizerClient<unknown, unknown>(ts.url, { WebSocket });
    const errors: ClientError[] = [];
    client.on('error', (e) => void errors.push(e));
    await client.send({ type: 'say', text: 1 }); // acked, though refused
    await client.send({ type: 'say', text: 'fine' });
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.InvalidMessage]);
    expect(messages.map((m) => m.data)).toEqual([{ type: 'say', text: 'fine' }]);
    expect(client.state).toBe('open');
    expect(client.queuedMessages).toBe(0);
    client.close();
  });

  it('plain mode: the schema sees the text; an invalid one gets an error frame and the socket stays open', async () => {
    const json = z
      .string()
      .transform((s, ctx) => {
        try {
          return JSON.parse(s) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'not JSON' });
          return z.NEVER;
        }
      })
      .pipe(say);
    const ts = await startServer({ schema: { inbound: json } });
    const { messages, invalid } = record(ts.manager);
    const ws = await openClient(ts.url);
    const answer = nextMessage(ws);
    ws.send('{oops');
    expect(JSON.parse(await answer)).toMatchObject({
      t: 'error',
      code: 'INVALID_MESSAGE',
      issues: [{ message: 'not JSON' }],
    });
    ws.send(JSON.stringify({ type: 'say', text: 'plain' }));
    await waitFor(() => messages.length === 1, 'the valid plain message');
    expect(messages[0]!.data).toEqual({ type: 'say', text: 'plain', room: 'lobby' });
    expect(invalid).toMatchObject([{ reliable: false, data: '{oops', isBinary: false }]);
    expect(ws.readyState).toBe(ws.OPEN);
    ws.close();
  });

  it('rejects a schema option that is not a Standard Schema', () => {
    expect(() => new WebSocketConnectionManager({ schema: { inbound: {} as never } })).toThrowError(
      ConfigError,
    );
  });
});

/**
 * Type tests of `schema.inbound` (compiled by `npm run typecheck`, not run): the manager's `In` is the schema's
 * output, for zod, valibot and arktype alike, and an explicit `In` must match the schema.
 */
import { type } from 'arktype';
import * as v from 'valibot';
import { expectTypeOf } from 'vitest';
import { z } from 'zod';
import { WebSocketConnectionManager, type InvalidMessageEvent } from '../../src/server/index.js';

const zodSay = z.object({ type: z.literal('say'), text: z.string(), room: z.string().default('lobby') });
const fromZod = new WebSocketConnectionManager({ schema: { inbound: zodSay } });
fromZod.on('message', (e) => {
  // The output type: `room` is filled in by the default.
  expectTypeOf(e.data).toEqualTypeOf<{ type: 'say'; text: string; room: string }>();
});
expectTypeOf(fromZod).toEqualTypeOf<
  WebSocketConnectionManager<{ type: 'say'; text: string; room: string }>
>();

const fromValibot = new WebSocketConnectionManager({
  schema: { inbound: v.object({ n: v.number(), tags: v.array(v.string()) }) },
});
fromValibot.on('message', (e) => expectTypeOf(e.data).toEqualTypeOf<{ n: number; tags: string[] }>());

// An async valibot schema infers the same way.
const asyncValibot = new WebSocketConnectionManager({
  schema: {
    inbound: v.pipeAsync(
      v.string(),
      v.checkAsync(async (s) => s.length > 0),
    ),
  },
});
asyncValibot.on('message', (e) => expectTypeOf(e.data).toEqualTypeOf<string>());

const fromArktype = new WebSocketConnectionManager({
  schema: { inbound: type({ type: "'typing'", room: 'string' }) },
});
fromArktype.on('message', (e) => expectTypeOf(e.data).toEqualTypeOf<{ type: 'typing'; room: string }>());

// A transform changes the type listeners see.
const parsed = new WebSocketConnectionManager({ schema: { inbound: z.string().transform((s) => s.length) } });
parsed.on('message', (e) => expectTypeOf(e.data).toEqualTypeOf<number>());

// `In` given explicitly: the schema must produce it.
type Say = { type: 'say'; text: string; room: string };
new WebSocketConnectionManager<Say>({ schema: { inbound: zodSay } });
// @ts-expect-error the schema's output is not `{ type: 'leave' }`
new WebSocketConnectionManager<{ type: 'leave' }>({ schema: { inbound: zodSay } });

// Out and Data stay free to declare alongside an inferred-from-schema In.
const withHooks = new WebSocketConnectionManager(
  { schema: { inbound: zodSay } },
  { authorizeSubscribe: (ctx) => ctx.topic.length > 0 },
);
withHooks.on('message', (e) => expectTypeOf(e.data.room).toBeString());

// Without a schema nothing is inferred.
const untyped = new WebSocketConnectionManager({});
untyped.on('message', (e) => expectTypeOf(e.data).toBeUnknown());

// The invalid-message event.
fromZod.on('invalid-message', (e) => {
  expectTypeOf(e).toEqualTypeOf<InvalidMessageEvent>();
  expectTypeOf(e.data).toBeUnknown();
  expectTypeOf(e.seq).toEqualTypeOf<number | undefined>();
});

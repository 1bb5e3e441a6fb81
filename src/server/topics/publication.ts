import { BinaryKind } from '../../protocol/binary.js';
import type { ReplayEntry } from '../../backends/replay-buffer.js';
import type { DeflatedFrames } from '../transport/compression.js';
import { dataFrame, textFrame, type Payload } from '../../frames/payload.js';
import type { MsgpackCodec } from '../../frames/msgpack.js';
import { PublicationMsgpack } from '../../frames/msgpack-frames.js';

/**
 * One message published to a topic, with its offset (reliable) or without (volatile). Its protocol frame is the
 * same bytes for every member, so it is built once, on first use, and written to every member and every replay
 * (PROTOCOL.md §2.6). The topic's history keeps the publication itself: one copy, whatever the audience.
 */
export class Publication implements ReplayEntry {
  private body: string | Buffer | undefined;
  private wire: Buffer | undefined;
  private skipWire: Buffer | undefined;
  /** The `stabilizer.v1.msgpack` frames, built on the first MessagePack member (or replay) and then shared. */
  private mp: PublicationMsgpack | undefined;

  /**
   * permessage-deflate frames by variant (`topic`: of {@link message}; `mp-topic`: of the MessagePack data message),
   * deflated once for every member and replay.
   */
  deflated: DeflatedFrames | undefined = undefined;

  constructor(
    /** The topic name as a JSON string literal (quoted once per topic, not per publication). */
    private readonly quotedTopic: string,
    readonly topic: string,
    /** Offset in the topic; `undefined` for a volatile publication. */
    readonly offset: number | undefined,
    readonly payload: Payload,
    /** Members that must not get it: they get a `skip` for its offset instead. */
    readonly exclude: ReadonlySet<string> | undefined,
    readonly atMs: number,
  ) {}

  /** The offset, as a replay entry sees it. */
  get seq(): number {
    return this.offset ?? 0;
  }

  /** The data message without the WebSocket header: text (JSON) or binary (kind 3/4). For `ws.send`. */
  message(): string | Buffer {
    if (this.body !== undefined) return this.body;
    const p = this.payload;
    if (!p.isBinary) {
      const at = this.offset === undefined ? '' : `,"o":${this.offset}`;
      return (this.body = `{"t":"d","c":${this.quotedTopic}${at},"p":${p.json}}`);
    }
    const name = Buffer.from(this.topic);
    const head = this.offset === undefined ? 1 : 9;
    const bytes = p.plain as Buffer;
    const out = Buffer.allocUnsafe(head + 1 + name.length + bytes.length);
    out[0] = this.offset === undefined ? BinaryKind.TopicVolatile : BinaryKind.TopicReliable;
    if (this.offset !== undefined) out.writeDoubleBE(this.offset, 1);
    out[head] = name.length;
    name.copy(out, head + 1);
    bytes.copy(out, head + 1 + name.length);
    return (this.body = out);
  }

  /** The complete WebSocket frame of {@link message}, built once for every protocol member. */
  frame(): Buffer {
    return (this.wire ??= dataFrame(this.message(), this.payload.isBinary));
  }

  /** `{"t":"skip","c":…,"o":…}`: what an excluded member gets instead of a reliable publication. */
  skipMessage(): string {
    return `{"t":"skip","c":${this.quotedTopic},"o":${this.offset ?? 0}}`;
  }

  /** The complete WebSocket frame of {@link skipMessage}, built once for every excluded member. */
  skipFrame(): Buffer {
    return (this.skipWire ??= textFrame(this.skipMessage()));
  }

  /** The MessagePack frames of this publication (PROTOCOL.md §2.7), built once for every MessagePack member. */
  msgpack(codec: MsgpackCodec): PublicationMsgpack {
    return (this.mp ??= new PublicationMsgpack(codec, this.topic, this.offset, this.payload.msgpack(codec)));
  }
}

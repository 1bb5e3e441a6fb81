import { decodeBinaryData } from '../../protocol/binary.js';
import { decodeClientMessage, type ClientMessage, type DecodeFailure } from '../../protocol/messages.js';
import { matchHeartbeatFrame, matchMsgpackHeartbeat } from './heartbeat-frames.js';
import type { MsgpackCodec } from '../../frames/msgpack.js';

/**
 * Decode one inbound frame of a `stabilizer.v1` connection: MessagePack (`codec` set), a binary data frame, or
 * JSON text. Heartbeat frames of the bundled client skip the decoder; every other frame takes it.
 */
export function decodeInboundFrame(
  codec: MsgpackCodec | undefined,
  data: Buffer,
  isBinary: boolean,
): ClientMessage | DecodeFailure {
  if (codec) return decodeMsgpackFrame(codec, data, isBinary);
  if (isBinary) return decodeBinaryData(data);
  return matchHeartbeatFrame(data) ?? decodeClientMessage(data.toString('utf8'));
}

/**
 * A frame on a `stabilizer.v1.msgpack` connection: one MessagePack map in a binary frame. A text frame, bytes that
 * are not exactly one MessagePack value, or a value that is not a map are protocol violations (4502), like bad JSON.
 */
function decodeMsgpackFrame(
  codec: MsgpackCodec,
  data: Buffer,
  isBinary: boolean,
): ClientMessage | DecodeFailure {
  if (!isBinary) return { error: 'text frame on stabilizer.v1.msgpack' };
  const heartbeat = matchMsgpackHeartbeat(data);
  if (heartbeat) return heartbeat;
  let value: unknown;
  try {
    value = codec.unpack(data);
  } catch {
    return { error: 'bad msgpack' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array)
    return { error: 'bad msgpack' };
  // Over MessagePack a payload may itself be bytes (a `bin`), but not the binary kinds of §2.
  return decodeClientMessage(value);
}

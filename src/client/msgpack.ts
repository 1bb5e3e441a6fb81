/**
 * `websocket-stabilizer/client/msgpack`: the MessagePack encoding of `stabilizer.v1` for the client (PROTOCOL.md
 * §2.7), kept out of the default client bundle. Needs the `msgpackr` package.
 *
 * ```ts
 * import { StabilizerClient } from 'websocket-stabilizer/client';
 * import { msgpackCodec } from 'websocket-stabilizer/client/msgpack';
 * const client = new StabilizerClient(url, { codec: msgpackCodec() });
 * ```
 */
import { Packr, Unpackr } from 'msgpackr';
import { decodeBinaryData } from '../protocol/binary.js';
import { SUBPROTOCOL, SUBPROTOCOL_MSGPACK } from '../protocol/messages.js';
import type { ClientCodec, WebSocketLike } from './socket.js';
import { MSGPACK_OPTIONS } from '../protocol/msgpack-options.js';

export { SUBPROTOCOL_MSGPACK };

/**
 * A {@link ClientCodec} that offers `stabilizer.v1.msgpack` (then `stabilizer.v1`) and, on a socket whose server
 * selected it, writes every frame as a MessagePack map in a binary frame and reads the server's the same way. On a
 * socket where the server selected `stabilizer.v1` (it has no MessagePack) frames stay JSON.
 *
 * Payloads are the same as with JSON: any JSON value, or bytes (`Uint8Array`/`ArrayBuffer`) as the whole payload,
 * which travel as MessagePack `bin` and arrive as `Uint8Array`. The client builds each frame as JSON first and
 * converts it here, which costs a `JSON.parse` per sent frame (client sends are few; receiving is one decode).
 */
export function msgpackCodec(): ClientCodec {
  const packr = new Packr(MSGPACK_OPTIONS);
  const unpackr = new Unpackr(MSGPACK_OPTIONS);
  const on = (ws: WebSocketLike): boolean => ws.protocol === SUBPROTOCOL_MSGPACK;
  return {
    p: [SUBPROTOCOL_MSGPACK, SUBPROTOCOL],
    e: (frame, ws) => {
      if (!on(ws)) return frame;
      // A binary data frame (kinds 1/2) becomes `{t:'d', s?, p: bin}`; text is one JSON message.
      const message = typeof frame === 'string' ? (JSON.parse(frame) as unknown) : decodeBinaryData(frame);
      return packr.pack(message);
    },
    d: (data, ws) => {
      if (!on(ws)) return data;
      if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) return 0; // text on a binary protocol
      const bytes =
        data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      try {
        const message: unknown = unpackr.unpack(bytes);
        // Only a map is a message: anything else (a bare bin would pass for a binary data frame) is refused.
        return typeof message === 'object' && message !== null && !ArrayBuffer.isView(message) ? message : 0;
      } catch {
        return 0;
      }
    },
  };
}

import { CloseCode } from '../../protocol/close-codes.js';
import type { DisconnectReason } from '../events.js';

/**
 * The close code `ws` sends when its receiver rejects an inbound frame, by the error's stable `code` (ws 8):
 * 1002 for a broken frame, 1007 for invalid UTF-8, 1008 for too many fragments, 1009 for too big.
 */
const CLOSE_CODE_BY_WS_ERROR: Readonly<Record<string, number>> = {
  WS_ERR_EXPECTED_FIN: CloseCode.ProtocolError,
  WS_ERR_EXPECTED_MASK: CloseCode.ProtocolError,
  WS_ERR_UNEXPECTED_MASK: CloseCode.ProtocolError,
  WS_ERR_INVALID_OPCODE: CloseCode.ProtocolError,
  WS_ERR_UNEXPECTED_RSV_1: CloseCode.ProtocolError,
  WS_ERR_UNEXPECTED_RSV_2_3: CloseCode.ProtocolError,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: CloseCode.ProtocolError,
  WS_ERR_INVALID_CLOSE_CODE: CloseCode.ProtocolError,
  WS_ERR_INVALID_UTF8: CloseCode.InvalidPayload,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.PolicyViolation,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MessageTooBig,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.MessageTooBig,
};

/**
 * The close code `ws` sent because of this `error` event of a socket, or `undefined` if it was not a rejected
 * frame. ws closes with the code it stores on the error (under its `status-code` symbol) before it emits the
 * error; the table above covers its documented codes, the symbol covers the rest (a permessage-deflate inflate
 * error carries zlib's code and closes with 1007).
 */
export function rejectedFrameCloseCode(err: Error & { code?: unknown }): number | undefined {
  const known = typeof err.code === 'string' ? CLOSE_CODE_BY_WS_ERROR[err.code] : undefined;
  if (known !== undefined) return known;
  for (const key of Object.getOwnPropertySymbols(err)) {
    if (key.description !== 'status-code') continue;
    const code = (err as unknown as Record<symbol, unknown>)[key];
    if (typeof code === 'number' && code >= 1000 && code <= 4999) return code;
  }
  return undefined;
}

/** `disconnect` reason of a rejected frame: `message-too-big` for 1009, else `protocol-violation`. */
export function rejectedFrameReason(code: number): DisconnectReason {
  return code === CloseCode.MessageTooBig ? 'message-too-big' : 'protocol-violation';
}

/** What applications may send: text, any JSON value, or bytes. */
export type SendData = string | Buffer | ArrayBuffer | Uint8Array | object | number | boolean | null;

/**
 * One outbound message, encoded once and shared by every recipient of a broadcast and by every replay buffer
 * that holds it. Plain mode sends `plain` as it is; protocol mode wraps `json` (or `binary`) in a data frame.
 */
export class Payload {
  /** Plain-mode frame: the text as given, the JSON text of a value, or the bytes. */
  readonly plain: string | Buffer;
  readonly isBinary: boolean;
  private jsonText: string | undefined;
  private volatileFrame: string | undefined;

  constructor(data: SendData) {
    if (typeof data === 'string') {
      this.plain = data;
      this.isBinary = false;
    } else if (Buffer.isBuffer(data)) {
      this.plain = data;
      this.isBinary = true;
    } else if (data instanceof Uint8Array) {
      this.plain = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.isBinary = true;
    } else if (data instanceof ArrayBuffer) {
      this.plain = Buffer.from(data);
      this.isBinary = true;
    } else {
      const json = JSON.stringify(data);
      if (json === undefined) throw new TypeError('payload is not JSON-serializable');
      this.plain = json;
      this.jsonText = json;
      this.isBinary = false;
    }
  }

  /** Size used for buffer accounting (UTF-16 length for text, a cheap upper bound on UTF-8 / 3). */
  get bytes(): number {
    return this.plain.length;
  }

  /** The payload as JSON text, for protocol-mode text frames (computed once). */
  get json(): string {
    return (this.jsonText ??= JSON.stringify(this.plain));
  }

  /** Protocol-mode text frame for a reliable message with sequence `seq`. */
  reliableText(seq: number): string {
    return `{"t":"d","s":${seq},"p":${this.json}}`;
  }

  /** Protocol-mode text frame for a volatile message; identical for every recipient, so built once. */
  volatileText(): string {
    return (this.volatileFrame ??= `{"t":"d","p":${this.json}}`);
  }
}

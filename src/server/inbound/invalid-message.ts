// The `invalid-message` event's shape (validation.ts raises it), apart so that events.ts needs no validator.

/** One problem of an invalid message, as in the `invalid-message` event and the error answer. */
export interface InvalidMessageIssue {
  message: string;
  /** Where in the message, e.g. `['user', 'name']` or `[2]`. */
  path?: Array<string | number>;
}

/** The `invalid-message` event. */
export interface InvalidMessageEvent {
  clientId: string;
  /** What the client sent (not the schema's output: there is none). */
  data: unknown;
  isBinary: boolean;
  reliable: boolean;
  /** Protocol mode, reliable messages: the client sequence number (also in the error answer). */
  seq?: number;
  messageId?: string;
  /**
   * Every issue the validator reported, messages cut to `maxIssueChars` (200) characters (the error answer carries
   * the first `maxIssuesAnswered` (5)).
   */
  issues: InvalidMessageIssue[];
}

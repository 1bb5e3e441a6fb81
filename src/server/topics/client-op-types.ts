// The cluster-wide client operations (`clusterJoin`, `clusterLeave`, `clusterDisconnect`, `fetchClient`) as the
// storage seam routes them between nodes.

/** One cluster-wide operation on a client, by client id (what a node asks the node that holds the client). */
export type ClientOp =
  | { op: 'join'; clientId: string; topic: string }
  | { op: 'leave'; clientId: string; topic: string }
  | { op: 'disconnect'; clientId: string; code: number; reason: string }
  | { op: 'fetch'; clientId: string };

/** What `fetchClient` returns: a client as the process (or the stored session) that has it sees it. */
export interface ClientInfo<Data = unknown> {
  clientId: string;
  /**
   * The cluster node that holds the client (Redis backend), `undefined` on the in-memory backend and for a
   * detached session that no live node holds (read from its stored copy).
   */
  nodeId: string | undefined;
  /** `true` while a socket is open for it; `false` for a detached session waiting for a resume. */
  connected: boolean;
  /** `true` for a protocol session (resumable), `false` for a plain socket. */
  session: boolean;
  /** The `principal` of `authenticate` (the session's creator for a detached session). */
  principal: string | undefined;
  /**
   * What `authenticate` (or `connect`'s `data`) gave the connection; for a detached session, its creator's. Read
   * on another node it is the JSON round trip of it (`undefined` when it is not JSON-serializable).
   */
  data: Data | undefined;
  /** Its topics, `$all` left out. */
  topics: string[];
}

/** Options of the cluster-wide client operations. */
export interface ClientOpOptions {
  /**
   * Reject with `OPERATION_TIMEOUT` if the operation has not taken effect by then (its outcome is then unknown;
   * every operation is idempotent, so it may be repeated).
   * @default the backend's: 2 × `nodeTimeoutMs` (20 s) on Redis, so that an owner that dies mid-request is
   * detected and the operation lands on the stored session; 10 s otherwise
   */
  timeoutMs?: number;
}

/** The result of an operation that took effect: a boolean (join, leave, disconnect) or the client (fetch). */
export type ClientOpValue = boolean | ClientInfo;

/**
 * What one process did with an operation: `done` (with its value), or not: `absent` (it holds no such client)
 * or `retry` (the client is moving: a resume is loading it here, or it moved elsewhere meanwhile), with `changed`
 * when this attempt did change something (so that the operation's result says so, even if a retry finds it done).
 */
export type ClientOpAnswer =
  { done: true; value: ClientOpValue } | { done: false; why: 'absent' | 'retry'; changed?: boolean };

/** What a cluster backend's routing of an operation gave: `done`, or `retry` (a new attempt, here first). */
export type ClientOpRoute = ClientOpAnswer;

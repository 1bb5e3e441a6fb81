/** Options of `broadcast`. */
export interface BroadcastOptions {
  /** Client ids that do not receive this message. */
  exclude?: Iterable<string>;
  /**
   * Volatile messages are not sequenced, buffered or replayed, and are dropped (not closed) for a slow consumer.
   * Plain-mode sockets ignore this flag.
   * @default false
   */
  volatile?: boolean;
}

/** A recipient the message could not be written to; it has been disconnected. */
export interface DeliveryFailure {
  clientId: string;
  /** `slow-consumer` (over `maxBufferedBytes`, closed 4001) or `send-failed` (socket error, terminated). */
  reason: 'slow-consumer' | 'send-failed';
}

/** Partial-failure report of one broadcast. */
export interface BroadcastResult {
  /** Sockets the frame was written to. */
  delivered: number;
  /**
   * Protocol sessions that keep it for replay on resume: detached ones, and those whose socket could not take it
   * (closing, failed or over `maxBufferedBytes`: the socket is dropped with a resumable code).
   */
  buffered: number;
  /** Volatile messages skipped for a slow consumer. */
  dropped: number;
  /** Plain-mode recipients whose write failed: the message is lost for them, and each was disconnected. */
  failed: DeliveryFailure[];
  /**
   * Cluster backends only: the counts above are 0 and delivery happens on every node once Redis has numbered the
   * publication in its topic. Resolves then (it is durable), rejects with `BACKEND_UNAVAILABLE`.
   */
  cluster?: Promise<ClusterBroadcastReport>;
}

/** What a cluster publish (or broadcast) did in shared storage. */
export interface ClusterBroadcastReport {
  /** The topic's offset Redis assigned (`undefined` for a volatile publication). */
  offset: number | undefined;
  /**
   * Nodes following the topic that the publication reached (Redis PUBLISH's receiver count; on Redis Cluster, those
   * subscribed through the topic's shard).
   */
  nodes: number;
}

import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { ErrorCode } from '../protocol/error-codes.js';
import { StabilizerError } from '../server/errors.js';
import { TypedEmitter } from '../server/events.js';
import type { Logger } from '../server/operations/logger.js';
import { duplicate, OVERRIDES, withTimeout } from './client-options.js';
import { ClusterWatch } from './cluster-watch.js';
import {
  redactUrl,
  type PresenceEvent,
  type RedisBackendOptions,
  type ResolvedRedisOptions,
} from './options.js';
import { defineScripts, type ScriptArg, type ScriptName, type ScriptRunner } from './scripts.js';
import { defineTopicScripts, type TopicScriptName, type TopicScriptRunner } from './topic-scripts.js';

/** Events of the Redis backend (`backend.on(...)`). */
export interface RedisBackendEvents {
  /** Redis became unreachable or stopped answering: local clients keep being served, cluster traffic waits. */
  degraded: { reason: string };
  /** Redis is reachable again with the same history; queued operations ran, missed messages were fetched. */
  recovered: { downMs: number };
  /**
   * Redis came back without this cluster's history (restarted without persistence, flushed, failed over to an
   * empty replica). Every protocol session of this node was closed with 1012; resumes get `fresh`.
   */
  'history-lost': { previousEpoch: string; epoch: string; sessionsDropped: number };
  /**
   * A member joined or left a topic on some node (cluster-wide presence). Heard by the nodes that follow the topic
   * (those with members in it).
   */
  presence: PresenceEvent;
}

/** What the link tells its owner. */
export interface LinkHandlers {
  /** A message on this node's channel, or (`topic` true) on a followed topic's channel. */
  message(channel: string, text: string, topic: boolean): void;
  /** The subscriber is back after missing messages, or the node was reaped: re-check every local session. */
  resync(reaped: boolean): void;
  /** The epoch changed: drop every local session. Returns how many were dropped. */
  historyLost(): number;
}

const MIN_REDIS = [6, 2];

/**
 * The backend's two Redis connections (commands, subscriber), the history epoch, the heartbeat and the degraded
 * state machine. Degraded = a connection is down, the heartbeat is overdue, or a history loss is being handled.
 */
export class RedisLink extends TypedEmitter<RedisBackendEvents> {
  epoch = '';
  /** Operations issued and not settled (includes those queued while Redis is unreachable). */
  pending = 0;
  log: Logger;
  readonly run: ScriptRunner;
  readonly channel: string;
  private cmdUp = true;
  private subUp = true;
  private stalled = false;
  private recovering = false;
  private degradedSinceMs = 0;
  private beatStartedMs = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  handlers: LinkHandlers | undefined;

  private constructor(
    readonly cmd: Redis | Cluster,
    readonly sub: Redis | Cluster,
    /** Topic publishes: `cmd`, or on a Cluster a client that leaves failover retries to `PublishLanes`. */
    readonly pub: Redis | Cluster,
    readonly opts: ResolvedRedisOptions,
    log: Logger,
  ) {
    super();
    this.log = log;
    this.run = defineScripts(cmd, `${opts.controlPrefix}epoch`);
    this.runTopic = defineTopicScripts(cmd);
    this.runPublish = pub === cmd ? this.runTopic : defineTopicScripts(pub);
    this.channel = `${opts.controlPrefix}n:${opts.nodeId}`;
    this.sharded = (cmd as { isCluster?: boolean }).isCluster === true;
    this.pubCmd = this.sharded ? 'SPUBLISH' : 'PUBLISH';
  }

  private readonly runTopic: TopicScriptRunner;
  private readonly runPublish: TopicScriptRunner;
  /**
   * `true` when the client is an ioredis `Cluster`: topic channels use sharded pub/sub (SSUBSCRIBE, SPUBLISH), so
   * a publication goes only to the shard that holds its topic's slot.
   */
  readonly sharded: boolean;
  /** The command the topic scripts publish with. */
  readonly pubCmd: 'PUBLISH' | 'SPUBLISH';

  /** Run a topic script (keys first); counted in `pending`. No history epoch: a topic carries its own. */
  topicScript(name: TopicScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
    this.pending++;
    const run = name === 'wssTopicPublish' ? this.runPublish : this.runTopic;
    return run(name, keys, args).finally(() => this.pending--);
  }

  /** Emit a `presence` event (from the topic follower). */
  presence(e: PresenceEvent): void {
    this.emitSafely('presence', e, () => {});
  }

  /** Subscribe to a topic channel; resolves once Redis confirmed it (nothing published after is missed). */
  async follow(channel: string): Promise<void> {
    if (this.sharded) await this.sub.ssubscribe(channel);
    else await this.sub.subscribe(channel);
  }

  async unfollow(channel: string): Promise<void> {
    if (this.sharded) await this.sub.sunsubscribe(channel);
    else await this.sub.unsubscribe(channel);
  }

  /** Connect both connections, check the server, join (or start) the history epoch. Rejects with a clear error. */
  static async open(o: RedisBackendOptions, opts: ResolvedRedisOptions, log: Logger): Promise<RedisLink> {
    const url = o.url ?? 'redis://127.0.0.1:6379';
    if (!o.client && !/^rediss?:\/\//.test(url)) {
      throw new StabilizerError(
        ErrorCode.InvalidConfig,
        `redis backend: not a redis:// or rediss:// URL: ${redactUrl(url)}`,
      );
    }
    const where = o.client ? 'the given client' : redactUrl(url);
    const cmd = o.client ? duplicate(o.client, 'commands') : new Redis(url, OVERRIDES);
    const sub = duplicate(o.client ?? cmd, 'subscriber');
    const pub = o.client instanceof Cluster ? duplicate(o.client, 'publisher') : cmd;
    if (pub !== cmd)
      pub.on('error', (err: Error) => log.debug({ event: 'redis.error', err }, 'redis publisher error'));
    const link = new RedisLink(cmd, sub, pub, opts, log);
    let lastError: Error | undefined;
    const onError = (err: Error) => (lastError = err);
    cmd.on('error', onError);
    sub.on('error', onError);
    try {
      const t = opts.connectTimeoutMs;
      await withTimeout(Promise.all([cmd.connect(), sub.connect()]), t, 'connecting');
      const info = String(await withTimeout(cmd.info('server'), t, 'INFO'));
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      const [major, minor] = [Number(version?.[1] ?? 0), Number(version?.[2] ?? 0)];
      if (major < MIN_REDIS[0]! || (major === MIN_REDIS[0] && minor < MIN_REDIS[1]!)) {
        throw new Error(`Redis ${major}.${minor} is too old, 6.2 or newer is needed`);
      }
      await withTimeout(link.joinEpoch(), t, 'reading the epoch');
      await withTimeout(sub.subscribe(link.channel), t, 'SUBSCRIBE');
      await withTimeout(link.beat(), t, 'first heartbeat');
    } catch (err) {
      cmd.disconnect();
      sub.disconnect();
      pub.disconnect();
      const cause = lastError ?? err;
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new StabilizerError(ErrorCode.BackendUnavailable, `cannot use Redis at ${where}: ${why}`, {
        cause,
      });
    }
    cmd.off('error', onError);
    sub.off('error', onError);
    link.watch();
    return link;
  }

  get degraded(): boolean {
    return !this.cmdUp || !this.subUp || this.stalled || this.recovering || this.clusterDown;
  }

  /** Degraded, or a Cluster node was just lost and the probe has not decided yet (see `PublishLanes`). */
  get unsettled(): boolean {
    return this.degraded || this.clusterWatch?.suspect === true;
  }

  /** Bumped whenever the link turns degraded or a Cluster node is lost (see `PublishLanes`). */
  generation = 0;
  private clusterDown = false;
  private clusterWatch: ClusterWatch | undefined;

  /** Run a script with the prefix and the current epoch prepended; counted in `pending`. */
  call(name: ScriptName, args: ScriptArg[]): Promise<unknown> {
    this.pending++;
    const p = this.run(name, [this.opts.controlPrefix, this.epoch, ...args]);
    return p
      .finally(() => this.pending--)
      .catch((err: unknown) => {
        if (isEpochError(err)) void this.onEpochMismatch();
        throw err;
      });
  }

  private async joinEpoch(): Promise<void> {
    const key = `${this.opts.controlPrefix}epoch`;
    await this.cmd.set(key, randomBytes(12).toString('base64url'), 'NX');
    const epoch = await this.cmd.get(key);
    if (!epoch) throw new Error('could not read the history epoch');
    this.epoch = epoch;
  }

  private watch(): void {
    const { cmd, sub } = this;
    cmd.on('error', (err: Error) =>
      this.log.debug({ event: 'redis.error', err }, 'redis command connection error'),
    );
    sub.on('error', (err: Error) => this.log.debug({ event: 'redis.error', err }, 'redis subscriber error'));
    cmd.on('close', () => this.setDown('cmd', 'redis connection lost'));
    sub.on('close', () => this.setDown('sub', 'redis subscriber connection lost'));
    cmd.on('ready', () => void this.onCmdReady());
    sub.on('ready', () => void this.onSubReady());
    sub.on('message', (channel: string, text: string) =>
      this.handlers?.message(channel, text, channel !== this.channel),
    );
    // Sharded pub/sub (Redis Cluster): topic channels only.
    sub.on('smessage', (channel: string, text: string) => this.handlers?.message(channel, text, true));
    if (cmd instanceof Cluster) {
      this.clusterWatch = new ClusterWatch(cmd, [cmd, sub, this.pub], {
        suspect: () => void this.generation++,
        down: (reason) => this.setDown('cluster', reason),
        up: () => this.clusterUp(),
      });
    }
    this.timer = setInterval(() => this.tick(), this.opts.nodeHeartbeatMs);
    this.timer.unref();
  }

  private setDown(which: 'cmd' | 'sub' | 'cluster', reason: string): void {
    if (this.closed) return;
    const was = this.degraded;
    if (which === 'cmd') this.cmdUp = false;
    else if (which === 'sub') this.subUp = false;
    else this.clusterDown = true;
    if (!was) this.enterDegraded(reason);
  }

  /** The Cluster probe passed after a failover: read what the sharded subscriber of the failed shard missed. */
  private clusterUp(): void {
    if (this.closed) return;
    this.clusterDown = false;
    this.handlers?.resync(false);
    this.maybeRecovered();
  }

  private enterDegraded(reason: string): void {
    this.generation++;
    this.degradedSinceMs = Date.now();
    this.log.warn(
      { event: 'redis.degraded', reason, nodeId: this.opts.nodeId },
      `redis backend degraded: ${reason}`,
    );
    this.emitSafely('degraded', { reason }, () => {});
  }

  private maybeRecovered(): void {
    if (this.degraded || this.closed || this.degradedSinceMs === 0) return;
    const downMs = Date.now() - this.degradedSinceMs;
    this.degradedSinceMs = 0;
    this.log.info({ event: 'redis.recovered', downMs, nodeId: this.opts.nodeId }, 'redis backend recovered');
    this.emitSafely('recovered', { downMs }, () => {});
  }

  private async onCmdReady(): Promise<void> {
    if (this.closed) return;
    try {
      const epoch = await this.cmd.get(`${this.opts.controlPrefix}epoch`);
      if (epoch !== this.epoch) return void (await this.onEpochMismatch());
      this.cmdUp = true;
      await this.beat();
    } catch (err) {
      this.log.debug({ event: 'redis.error', err }, 'redis ready check failed');
      return;
    }
    this.maybeRecovered();
  }

  private async onSubReady(): Promise<void> {
    if (this.closed) return;
    try {
      // ioredis resubscribes on its own; confirm it before fetching what was missed, so nothing falls in between.
      await this.sub.subscribe(this.channel);
    } catch (err) {
      this.log.debug({ event: 'redis.error', err }, 'redis resubscribe failed');
      return;
    }
    this.subUp = true;
    this.handlers?.resync(false);
    this.maybeRecovered();
  }

  private recoveringPromise: Promise<void> | undefined;

  /** A script or the ready check saw another epoch: Redis lost this cluster's history. Handle it once. */
  private onEpochMismatch(): Promise<void> {
    if (this.recoveringPromise || this.closed) return this.recoveringPromise ?? Promise.resolve();
    const was = this.degraded;
    this.recovering = true;
    if (!was) this.enterDegraded('redis history lost');
    this.recoveringPromise = (async () => {
      const previousEpoch = this.epoch;
      for (;;) {
        try {
          await this.joinEpoch();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
          if (this.closed) return;
        }
      }
      const sessionsDropped = this.handlers?.historyLost() ?? 0;
      this.log.error(
        {
          event: 'redis.history-lost',
          previousEpoch,
          epoch: this.epoch,
          sessionsDropped,
          nodeId: this.opts.nodeId,
        },
        'redis lost the cluster history: local sessions were restarted',
      );
      this.emitSafely('history-lost', { previousEpoch, epoch: this.epoch, sessionsDropped }, () => {});
      this.recovering = false;
      this.cmdUp = this.cmd.status === 'ready';
      await this.beat().catch(() => {});
      this.maybeRecovered();
    })().finally(() => (this.recoveringPromise = undefined));
    return this.recoveringPromise;
  }

  /** Heartbeat: register this node, reap dead nodes and expired sessions. */
  async beat(): Promise<void> {
    const o = this.opts;
    this.beatStartedMs = Date.now();
    try {
      const was = await this.run('wssBeat', [
        o.controlPrefix,
        this.epoch,
        o.nodeId,
        o.nodeTimeoutMs,
        this.sessionTtlMs,
        o.tombstoneTtlMs,
      ]);
      if (was === 0 && this.beats++ > 0) this.handlers?.resync(true);
    } catch (err) {
      if (isEpochError(err)) void this.onEpochMismatch();
      throw err;
    } finally {
      this.beatStartedMs = 0;
    }
  }

  private beats = 0;
  /** Set by the backend from the manager's config once bound. */
  sessionTtlMs = 120_000;

  private tick(): void {
    this.clusterWatch?.tick();
    if (this.beatStartedMs !== 0) {
      // The previous heartbeat has not come back: Redis is stalled (or the network is).
      if (!this.stalled && Date.now() - this.beatStartedMs > this.opts.nodeTimeoutMs / 2) {
        const was = this.degraded;
        this.stalled = true;
        if (!was) this.enterDegraded('redis is not answering');
      }
      return;
    }
    if (this.cmd.status !== 'ready') return;
    this.beat().then(
      () => {
        if (this.stalled) {
          this.stalled = false;
          this.handlers?.resync(false);
          this.maybeRecovered();
        }
      },
      (err: unknown) => this.log.debug({ event: 'redis.error', err }, 'heartbeat failed'),
    );
  }

  /** Leave the cluster: drop this node's registration and close both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.clusterWatch?.close();
    const o = this.opts;
    if (this.cmd.status === 'ready') {
      await withTimeout(
        this.cmd
          .multi()
          .zrem(`${o.controlPrefix}nodes`, o.nodeId)
          .del(`${o.controlPrefix}n:${o.nodeId}:c`)
          .exec(),
        1000,
        'leave',
      ).catch(() => {});
    }
    this.sub.disconnect();
    if (this.pub !== this.cmd) this.pub.disconnect();
    await withTimeout(this.cmd.quit(), 1000, 'QUIT').catch(() => this.cmd.disconnect());
  }
}

export function isEpochError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('EPOCH');
}

/**
 * Redis sink: XADD to a stream or RPUSH/LPUSH to a list, in pipelined batches. The sink host
 * calls `send` per message; messages sent in the same turn of the event loop (up to
 * `maxBatch`) go to Redis as one batch: one call into the writer (the hiredis addon, which
 * builds the commands in C from the stored envelopes, or its JS twin), one write, one
 * callback with every reply. Each reply becomes the outcome of its
 * message (redis-commands.ts says which errors are permanent).
 *
 * Connection: connects in the background and keeps reconnecting with a backoff; after TCP
 * connect it sends AUTH (ACL user/password from the URL), SELECT and PING in one batch, and
 * only then takes messages. While it is not ready `send` refuses, so messages wait in the log.
 * A reply that takes longer than `replyTimeout` drops the connection: its messages come back
 * as retries.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from '../../logger.js';
import { hiredisVersion, nativeRedis, nativeRedisError } from '../../native/redis-native.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../sink-types.js';
import { outcomeOf, type RedisSinkConfig } from './redis-commands.js';
import { isErrorReply, type CommandBatch, type ConnectionFactory, type RedisConnection, type RedisReply } from './redis-connection.js';
import { RespConnection } from './resp-connection.js';
import { parseRedisUrl, redactedUrl, type RedisTarget } from './redis-url.js';

/**
 * The writer `driver: auto` picks when the addon is built (bench/micro "redis writer" and the
 * e2e cases 16/16b decide; docs/sinks.md has the figures). CROWD_NATIVE=0 forces the twin.
 */
export const AUTO_DRIVER: 'native' | 'js' = 'native';
/** Messages handed to the sink and not answered yet; beyond it `send` refuses. */
const MAX_QUEUED = 16_384;
const CONNECT_TIMEOUT_MS = 5000;
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 2000;

const jsFactory: ConnectionFactory = (host, port, events, format) => new RespConnection(host, port, events, format);

export function pickDriver(wanted: RedisSinkConfig['driver']): { driver: 'native' | 'js'; factory: ConnectionFactory } {
  if (wanted === 'native') {
    if (!nativeRedis) throw new Error(`the native Redis writer is not available: ${nativeRedisError}`);
    return { driver: 'native', factory: nativeRedis };
  }
  if (wanted === 'js' || process.env.CROWD_NATIVE === '0' || AUTO_DRIVER === 'js' || !nativeRedis) return { driver: 'js', factory: jsFactory };
  return { driver: 'native', factory: nativeRedis };
}

interface Queued {
  m: OutboundMessage;
  done: (o: DeliveryOutcome) => void;
}

export class RedisSink implements Sink {
  private readonly target: RedisTarget;
  private factory: ConnectionFactory = jsFactory;
  private driver: 'native' | 'js' = 'js';
  private conn: RedisConnection | null = null;
  private ready = false;
  private closed = false;
  private lastError = 'connecting';
  private reconnectMs = RECONNECT_MIN_MS;
  private pending: Queued[] = [];
  private flushScheduled = false;
  /** Messages taken and not answered yet (pending + written). */
  private queued = 0;
  /** When each written batch went out, oldest first (for the reply timeout). */
  private readonly sentAt: number[] = [];
  private watchdog: NodeJS.Timeout | null = null;
  private errorsLogged = 0;
  /** Why crowd itself is dropping the connection (kept over the close's own reason). */
  private closeReason: string | null = null;

  constructor(readonly name: string, private readonly cfg: RedisSinkConfig, private readonly log: Logger) {
    this.target = parseRedisUrl(cfg.url);
  }

  async start(): Promise<void> {
    ({ driver: this.driver, factory: this.factory } = pickDriver(this.cfg.driver));
    this.watchdog = setInterval(() => this.checkReplyTimeout(), Math.min(1000, this.cfg.replyTimeoutMs)).unref();
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    void this.resolveHost().then((ip) => {
      if (this.closed) return;
      let connected = false;
      const timer = setTimeout(() => {
        if (connected) return;
        this.closeReason = `connect: no answer within ${CONNECT_TIMEOUT_MS} ms`;
        conn.destroy();
      }, CONNECT_TIMEOUT_MS).unref();
      let conn: RedisConnection;
      try {
        conn = this.factory(ip, this.target.port, {
          onConnect: () => {
            connected = true;
            clearTimeout(timer);
            this.handshake(conn);
          },
          onClose: (reason) => {
            clearTimeout(timer);
            this.connectionClosed(conn, connected ? reason : `connect: ${reason}`);
          },
        }, this.cfg);
      } catch (e) {
        clearTimeout(timer);
        this.connectionClosed(null, `connect: ${(e as Error).message}`);
        return;
      }
      this.conn = conn;
    }, (e: Error) => this.connectionClosed(null, `resolve ${this.target.host}: ${e.message}`));
  }

  /** hiredis resolves names with a blocking call: hand it an address, looked up here without blocking. */
  private async resolveHost(): Promise<string> {
    if (net.isIP(this.target.host)) return this.target.host;
    return (await lookup(this.target.host)).address;
  }

  /** AUTH, SELECT and PING in one batch; the sink is ready only if all three succeed. */
  private handshake(conn: RedisConnection): void {
    const batch: CommandBatch = { args: [], argc: [] };
    const { username, password, db } = this.target;
    if (password !== undefined) {
      if (username !== undefined) batch.args.push('AUTH', username, password);
      else batch.args.push('AUTH', password);
      batch.argc.push(username !== undefined ? 3 : 2);
    }
    if (db !== 0) {
      batch.args.push('SELECT', String(db));
      batch.argc.push(2);
    }
    batch.args.push('PING');
    batch.argc.push(1);
    conn.write(batch, (replies) => {
      const bad = replies.find(isErrorReply);
      if (bad) {
        this.closeReason = `handshake: ${bad.error}`;
        conn.destroy();
        return;
      }
      if (conn !== this.conn || this.closed) return;
      this.ready = true;
      this.lastError = '';
      this.reconnectMs = RECONNECT_MIN_MS;
      this.log.info({ event: 'redis_ready', sink: this.name, url: redactedUrl(this.cfg.url), driver: this.driver, ...(this.driver === 'native' ? { hiredis: hiredisVersion } : {}) }, 'redis connected');
    });
  }

  private connectionClosed(conn: RedisConnection | null, reason: string): void {
    if (conn !== null && conn !== this.conn) return;
    this.conn = null;
    this.ready = false;
    this.sentAt.length = 0;
    this.noteError(this.closeReason ?? reason);
    this.closeReason = null;
    if (this.closed) return;
    setTimeout(() => this.connect(), this.reconnectMs).unref();
    this.reconnectMs = Math.min(RECONNECT_MAX_MS, this.reconnectMs * 2);
  }

  private noteError(reason: string): void {
    if (this.lastError === reason) return;
    this.lastError = reason;
    if (this.errorsLogged++ < 20) this.log.warn({ event: 'redis_error', sink: this.name, err: reason }, 'redis not available; retrying');
  }

  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    if (!this.ready || this.queued >= MAX_QUEUED) return false;
    this.queued++;
    this.pending.push({ m, done });
    if (this.pending.length >= this.cfg.maxBatch) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return true;
  }

  /** Writes what is pending as one pipelined batch. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const items = this.pending;
    this.pending = [];
    const conn = this.conn;
    const answer = (replies: RedisReply[]) => {
      this.queued -= items.length;
      for (let i = 0; i < items.length; i++) {
        const r = replies[i];
        if (isErrorReply(r) && !r.lost) this.noteReplyError(r.error);
        items[i].done(outcomeOf(r));
      }
    };
    if (!conn || !this.ready) {
      answer(items.map(() => ({ error: this.lastError || 'not connected', lost: true })));
      return;
    }
    this.sentAt.push(Date.now());
    conn.writeMessages(items.map((q) => q.m), (replies) => {
      if (conn === this.conn) this.sentAt.shift();
      answer(replies);
    });
  }

  private noteReplyError(error: string): void {
    if (this.errorsLogged++ < 20) this.log.warn({ event: 'redis_reply_error', sink: this.name, err: error }, 'redis refused a command');
  }

  private checkReplyTimeout(): void {
    const oldest = this.sentAt[0];
    if (oldest !== undefined && Date.now() - oldest > this.cfg.replyTimeoutMs && this.conn) {
      this.log.warn({ event: 'redis_reply_timeout', sink: this.name, ms: this.cfg.replyTimeoutMs }, 'redis did not answer in time; reconnecting');
      this.closeReason = `no reply within ${this.cfg.replyTimeoutMs} ms`;
      this.conn.destroy();
    }
  }

  health(): SinkHealth {
    return { healthy: this.ready, detail: this.ready ? `connected (${this.driver} writer)` : this.lastError || 'connecting' };
  }

  async close(): Promise<void> {
    this.flush();
    const until = Date.now() + 5000;
    while (this.queued > 0 && this.conn && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.conn?.destroy();
    this.conn = null;
    this.ready = false;
  }
}

/**
 * AMQP 0-9-1 sink (RabbitMQ) over amqplib: one connection and one confirm channel per sink.
 * A message counts as delivered only when the broker confirmed it (basic.ack); a nack is a
 * retry. With `mandatory` (the default) a message no queue takes comes back (basic.return,
 * which RabbitMQ sends before its ack) and is dead-lettered as "unroutable".
 *
 * Properties: message-id = crowd's id (the Idempotency-Key the http sink sends too),
 * content-type, timestamp = receivedAt (seconds), delivery-mode 2 when `persistent`; headers:
 * the route's kept headers, plus crowd-key (the partition key) when there is one. format
 * envelope: the body is the stored protobuf envelope (content-type application/x-protobuf).
 *
 * At most `maxInFlight` messages are unconfirmed at a time; beyond it (or while the socket's
 * write buffer is full) send() refuses and the sink wakes the host when it can take more.
 * Connection or channel lost, or no confirm for the oldest message within `confirmTimeout`:
 * every unconfirmed message goes back to the host as a retry (it sends them again from the
 * log: at least once, duplicates possible), and the sink reconnects with a jittered
 * exponential backoff. amqplib is loaded in start(), so loading the config does not load it.
 */
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from '../../logger.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../sink-types.js';
import { redactedAmqpUrl, routingKeyTemplate, type AmqpSinkOptions } from './amqp-options.js';

const CONNECT_TIMEOUT_MS = 10_000;
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5_000;
/** AMQP's limit on a routing key (a shortstr). */
const MAX_ROUTING_KEY_BYTES = 255;

interface Unconfirmed {
  readonly done: (o: DeliveryOutcome) => void;
  readonly messageId: string;
  readonly sentAt: number;
  /** The broker returned it (basic.return): its ack makes it a dead letter. */
  returned: string | null;
}

type Amqplib = typeof import('amqplib');

export class AmqpSink implements Sink {
  private amqp: Amqplib | null = null;
  private conn: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  private ready = false;
  private closed = false;
  /** The socket's write buffer is full (publish() said false): wait for 'drain'. */
  private writeBlocked = false;
  /** The broker blocked publishers (a memory or disk alarm). */
  private brokerBlocked: string | null = null;
  private lastError = 'connecting';
  private reconnectMs = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Unconfirmed messages of the current channel, oldest first. */
  private unconfirmed = new Set<Unconfirmed>();
  /** The same, by message-id (for basic.return; a list in case two share an id). */
  private byId = new Map<string, Unconfirmed[]>();
  private watchdog: NodeJS.Timeout | null = null;
  private wakeUp: () => void = () => {};
  private readonly routingKeyOf: (topic: string, key: string) => string;
  private errorsLogged = 0;

  constructor(readonly name: string, private readonly cfg: AmqpSinkOptions, private readonly log: Logger) {
    this.routingKeyOf = routingKeyTemplate(cfg.routingKey);
  }

  async start(): Promise<void> {
    this.amqp = (await import('amqplib')).default as unknown as Amqplib;
    this.watchdog = setInterval(() => this.checkConfirmTimeout(), Math.min(1000, this.cfg.confirmTimeoutMs)).unref();
    this.connect();
  }

  setWakeUp(wake: () => void): void {
    this.wakeUp = wake;
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (this.closed) return;
    let conn: ChannelModel | null = null;
    this.amqp!.connect(this.cfg.url, { timeout: CONNECT_TIMEOUT_MS, clientProperties: { connection_name: `crowd-${this.name}` } })
      .then(async (c) => {
        conn = c;
        if (this.closed) {
          await c.close().catch(() => {});
          return;
        }
        c.on('error', (e: Error) => this.noteError(`connection: ${e.message}`));
        c.on('close', (e?: Error) => this.lost(c, `connection closed${e ? `: ${e.message}` : ''}`));
        c.on('blocked', (reason: string) => {
          this.brokerBlocked = reason;
          this.log.warn({ event: 'amqp_blocked', sink: this.name, reason }, 'broker blocks publishers');
        });
        c.on('unblocked', () => {
          this.brokerBlocked = null;
          this.wakeUp();
        });
        const ch = await c.createConfirmChannel();
        ch.on('error', (e: Error) => this.noteError(`channel: ${e.message}`));
        // A channel closed by the broker (e.g. the exchange does not exist) ends the connection
        // too: one way back, the reconnect.
        ch.on('close', () => {
          this.lost(c, `channel closed (${this.lastError})`);
          c.close().catch(() => {});
        });
        ch.on('return', (msg: Message) => this.returned(msg));
        ch.on('drain', () => {
          this.writeBlocked = false;
          this.wakeUp();
        });
        this.conn = c;
        this.channel = ch;
        this.ready = true;
        this.lastError = '';
        this.reconnectMs = RECONNECT_MIN_MS;
        this.log.info({ event: 'amqp_ready', sink: this.name, url: redactedAmqpUrl(this.cfg.url) }, 'amqp channel open');
        this.wakeUp();
      })
      .catch((e: Error) => {
        this.noteError(`connect: ${e.message}`);
        if (conn) (conn as ChannelModel).close().catch(() => {});
        this.scheduleReconnect();
      });
  }

  private noteError(text: string): void {
    this.lastError = text;
    if (this.errorsLogged++ < 20) this.log.warn({ event: 'amqp_error', sink: this.name, err: text }, 'amqp error');
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.reconnectMs * (0.5 + Math.random());
    this.reconnectMs = Math.min(RECONNECT_MAX_MS, this.reconnectMs * 2);
    this.reconnectTimer = setTimeout(() => this.connect(), delay).unref();
  }

  /**
   * The connection of `c` is gone (or no longer to be used): its unconfirmed messages go back
   * to the host as retries, now (a broken channel may never confirm them), and the sink
   * reconnects. Once per connection.
   */
  private lost(c: ChannelModel, reason: string): void {
    if (this.conn !== c) return;
    this.ready = false;
    this.conn = null;
    this.channel = null;
    this.writeBlocked = false;
    this.brokerBlocked = null;
    this.lastError = reason;
    const orphans = this.unconfirmed;
    this.unconfirmed = new Set();
    this.byId = new Map();
    if (orphans.size > 0 || !this.closed) this.log.warn({ event: 'amqp_lost', sink: this.name, reason, unconfirmed: orphans.size }, 'amqp connection lost; reconnecting');
    for (const u of orphans) u.done({ kind: 'retry', reason: `amqp: ${reason}` });
    this.scheduleReconnect();
  }

  private returned(msg: Message): void {
    const id = String(msg.properties.messageId ?? '');
    const u = this.byId.get(id)?.find((x) => x.returned === null);
    if (!u) return;
    const f = msg.fields as Message['fields'] & { replyCode?: number; replyText?: string };
    u.returned = `unroutable: ${f.replyCode ?? ''} ${f.replyText ?? 'NO_ROUTE'} (exchange "${msg.fields.exchange}", routing key "${msg.fields.routingKey}")`;
  }

  private forget(u: Unconfirmed): boolean {
    if (!this.unconfirmed.delete(u)) return false;
    const list = this.byId.get(u.messageId);
    if (list) {
      const i = list.indexOf(u);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byId.delete(u.messageId);
    }
    return true;
  }

  private confirmed(u: Unconfirmed, err: unknown): void {
    // Not in the set: its connection was lost and it was handed back as a retry already.
    if (!this.forget(u)) return;
    if (err) u.done({ kind: 'retry', reason: `amqp: not confirmed: ${(err as Error)?.message ?? String(err)}` });
    else if (u.returned !== null) u.done({ kind: 'dead', reason: u.returned });
    else u.done({ kind: 'delivered' });
    if (this.unconfirmed.size === this.cfg.maxInFlight - 1) this.wakeUp();
  }

  private checkConfirmTimeout(): void {
    const oldest = this.unconfirmed.values().next().value as Unconfirmed | undefined;
    if (!oldest || !this.conn) return;
    const waited = Date.now() - oldest.sentAt;
    if (waited <= this.cfg.confirmTimeoutMs) return;
    const c = this.conn;
    this.lost(c, `no confirm within ${this.cfg.confirmTimeoutMs} ms (${this.unconfirmed.size} unconfirmed)`);
    c.close().catch(() => {});
  }

  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    const ch = this.channel;
    if (!this.ready || !ch || this.writeBlocked || this.unconfirmed.size >= this.cfg.maxInFlight) return false;
    const e = m.envelope;
    const routingKey = this.routingKeyOf(e.topic, e.key);
    if (Buffer.byteLength(routingKey) > MAX_ROUTING_KEY_BYTES) {
      done({ kind: 'dead', reason: `amqp: routing key longer than ${MAX_ROUTING_KEY_BYTES} bytes` });
      return true;
    }
    const raw = this.cfg.format === 'raw';
    const content = raw ? Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength) : m.payload;
    const headers: Record<string, string> = {};
    if (raw) for (const h of e.headers) headers[h.name] = h.value;
    if (e.key !== '') headers['crowd-key'] = e.key;
    const props: Options.Publish = {
      messageId: e.id,
      contentType: raw ? e.contentType || undefined : 'application/x-protobuf',
      timestamp: Math.floor(e.receivedAtMs / 1000),
      persistent: this.cfg.persistent,
      mandatory: this.cfg.mandatory,
      headers,
    };
    const u: Unconfirmed = { done, messageId: e.id, sentAt: Date.now(), returned: null };
    try {
      const ok = ch.publish(this.cfg.exchange, routingKey, content, props, (err: unknown) => this.confirmed(u, err));
      this.unconfirmed.add(u);
      const list = this.byId.get(e.id);
      if (list) list.push(u);
      else this.byId.set(e.id, [u]);
      if (!ok) this.writeBlocked = true;
    } catch (err) {
      // amqplib refuses a message it cannot encode (a RangeError: headers over 64 KiB) for
      // good; anything else (the channel closing under us) is a retry.
      const reason = `amqp: ${(err as Error).message}`;
      done(err instanceof RangeError ? { kind: 'dead', reason } : { kind: 'retry', reason });
    }
    return true;
  }

  health(): SinkHealth {
    if (this.ready && this.brokerBlocked) return { healthy: false, detail: `broker blocks publishers: ${this.brokerBlocked}` };
    return { healthy: this.ready, detail: this.ready ? 'connected' : this.lastError || 'connecting' };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const c = this.conn;
    const ch = this.channel;
    if (!c) return;
    // Give the confirms under way a moment; whatever is not confirmed is sent again from the
    // log at the next start (the cursor never passed it).
    await Promise.race([ch?.waitForConfirms().catch(() => {}), new Promise((r) => setTimeout(r, 3000).unref())]);
    await Promise.race([c.close().catch(() => {}), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}

/**
 * Kafka sink: node-rdkafka (librdkafka) producer with acks=all and idempotence on by default.
 * node-rdkafka is a legacy addon that loads in one thread per process only (platform.md), so
 * every Kafka sink lives in the sink host thread. Delivery reports are polled on an interval
 * (no cross-thread wake-up per message); each report completes its message through `opaque`.
 *
 * format raw: value = body byte for byte, key = the route's partition key, headers = crowd-id,
 * content-type and the kept request headers. format envelope: value = the stored protobuf
 * envelope. Errors that no retry can fix go to the dead letters; everything else (broker
 * down, timed out) is sent again from the log.
 *
 * Stall watchdog: a producer with messages in flight and no delivery (nor any broker's answer)
 * for deliveryTimeout + 10 s is replaced by a new one, and its in-flight messages are handed
 * back as retries by the sink itself (a replaced producer's late reports are ignored). Seen in
 * CI with librdkafka 2.12: after a 29 s broker outage, a producer kept no connection to the
 * broker that was back, stayed "ready", and timed out every message for ten minutes. The
 * watchdog also makes the sink's health say so while the broker is away, instead of "connected".
 */
import { createRequire } from 'node:module';
import type { Logger } from '../../logger.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../sink-types.js';
import { topicTemplate } from '../topic-template.js';

const require = createRequire(import.meta.url);

export interface KafkaSinkConfig {
  type: 'kafka';
  brokers: string[];
  topic: string;
  compression: string;
  format: 'raw' | 'envelope';
  deliveryTimeoutMs: number;
  librdkafka: Record<string, string | number | boolean>;
}

interface RdKafkaError {
  code: number;
  message: string;
}

interface DeliveryReport {
  topic: string;
  partition: number;
  offset: number;
  opaque: (err: RdKafkaError | null, report: DeliveryReport | null) => void;
}

/** librdkafka errors that no retry fixes: the message goes to the dead letters. */
const PERMANENT = new Set([
  'ERR_MSG_SIZE_TOO_LARGE', 'ERR__MSG_SIZE_TOO_LARGE', 'ERR_TOPIC_EXCEPTION', 'ERR_RECORD_LIST_TOO_LARGE',
  'ERR__UNKNOWN_TOPIC', 'ERR_UNKNOWN_TOPIC_OR_PART', 'ERR_TOPIC_AUTHORIZATION_FAILED', 'ERR_INVALID_RECORD',
  'ERR__UNKNOWN_PARTITION', 'ERR__INVALID_ARG',
]);
const QUEUE_FULL = -184;
/** No delivery for this long beyond the delivery timeout, with messages in flight: the producer is stalled. */
const STALL_GRACE_MS = 10_000;

/**
 * A message handed to librdkafka, answered once: by its report while it is in its producer's
 * in-flight set, or by the sink when that producer is replaced (the set is emptied then).
 */
interface InFlightSend {
  done: (o: DeliveryOutcome) => void;
}
/** Producer properties librdkafka takes only in the topic configuration (node-rdkafka's 2nd argument). */
const TOPIC_LEVEL = new Set([
  'acks', 'request.required.acks', 'request.timeout.ms', 'message.timeout.ms', 'delivery.timeout.ms', 'partitioner',
  'compression.level', 'queuing.strategy', 'msg_order_cmp', 'produce.offset.report', 'consume.callback.max.messages',
]);

interface ErrorNames {
  byCode: Map<number, string>;
  byText: Map<string, string>;
}

/**
 * node-rdkafka hands delivery-report errors over with code -1 and only origin + message; the
 * real librdkafka error is found again from its text (measured against a real broker).
 */
function errorNames(Kafka: any): ErrorNames {
  const { err2str } = require('node-rdkafka/librdkafka.js') as { err2str(c: number): string };
  const byCode = new Map<number, string>();
  const byText = new Map<string, string>();
  for (const [name, code] of Object.entries(Kafka.CODES.ERRORS as Record<string, number>)) {
    byCode.set(code, name);
    byText.set(String(err2str(code)).toLowerCase(), name);
  }
  return { byCode, byText };
}

/** The sink's `topic` for a route topic: "{topic}" replaced by it, with "/" as "." (Kafka topic names have no "/"). */
export function kafkaTopicName(template: string): (routeTopic: string) => string {
  return topicTemplate(template, (t) => t.replaceAll('/', '.'));
}

export class KafkaSink implements Sink {
  // node-rdkafka ships no types for what crowd uses here; kept to this module.
  private producer: any = null;
  private ready = false;
  private lastError = 'connecting';
  private readonly topicOf: (routeTopic: string) => string;
  /** Messages of the current producer awaiting their delivery report. */
  private inFlight = new Set<InFlightSend>();
  /** Last delivery (or the producer becoming ready): what the stall watchdog measures from. */
  private lastProgressAt = Date.now();
  private watchdog: NodeJS.Timeout | null = null;

  constructor(readonly name: string, private readonly cfg: KafkaSinkConfig, private readonly log: Logger) {
    this.topicOf = kafkaTopicName(cfg.topic);
  }

  private names: ErrorNames | null = null;

  private errorName(err: RdKafkaError & { origin?: string }): string {
    const n = this.names!;
    if (err.code !== -1) return n.byCode.get(err.code) ?? String(err.code);
    const text = `${err.origin ?? ''}: ${err.message}`.toLowerCase();
    return n.byText.get(text) ?? n.byText.get(err.message.toLowerCase()) ?? `UNKNOWN(${err.message})`;
  }

  async start(): Promise<void> {
    const Kafka = require('node-rdkafka');
    this.names = errorNames(Kafka);
    const global: Record<string, string | number | boolean> = {
      'client.id': `crowd-${this.name}`,
      'metadata.broker.list': this.cfg.brokers.join(','),
      'enable.idempotence': true,
      'compression.codec': this.cfg.compression,
      'linger.ms': 5,
      'queue.buffering.max.messages': 100000,
      'reconnect.backoff.max.ms': 1000,
      dr_cb: true,
    };
    const topic: Record<string, string | number | boolean> = {
      'request.required.acks': -1,
      'message.timeout.ms': this.cfg.deliveryTimeoutMs,
    };
    for (const [k, v] of Object.entries(this.cfg.librdkafka)) (TOPIC_LEVEL.has(k) ? topic : global)[k] = v;

    // An unreachable broker must not stop crowd from starting: connect in the background and
    // keep trying (with a new producer each time: a second connect() on the same one doubles
    // its delivery reports); messages wait in the log meanwhile.
    const connect = () => {
      // One producer at a time: an attempt that failed is dropped for good, even if its
      // 'ready' comes late (two live producers would split a key across them, out of order).
      const gen = ++this.generation;
      const producer = new Kafka.Producer(global, topic);
      this.attempt = producer;
      const current = () => gen === this.generation && !this.closed;
      producer.on('delivery-report', (err: RdKafkaError | null, report: DeliveryReport) => report.opaque(err, report));
      producer.on('event.error', (e: RdKafkaError & { origin?: string }) => {
        if (!current()) return;
        const name = this.errorName(e);
        this.lastError = `${name}: ${e.message}`;
        if (this.errorsLogged++ < 20) this.log.warn({ event: 'kafka_error', sink: this.name, err: this.lastError }, 'kafka client error');
        if (name === 'ERR__FATAL' || /fatal/i.test(e.message)) this.replace(producer, connect);
      });
      producer.on('ready', () => {
        if (!current()) return;
        this.producer = producer;
        this.ready = true;
        this.lastProgressAt = Date.now();
        this.lastError = '';
        this.log.info({ event: 'kafka_ready', sink: this.name, brokers: this.cfg.brokers }, 'kafka producer connected');
      });
      // A pending connect blocks process exit until it times out, so not too long.
      producer.connect({ timeout: 5000 }, (err: RdKafkaError | null) => {
        if (!err && current()) {
          producer.setPollInterval(5);
          return;
        }
        if (!err) return;
        this.lastError = `connect: ${err.message}`;
        this.log.warn({ event: 'kafka_connect_failed', sink: this.name, err: err.message }, 'kafka not reachable yet; retrying');
        if (gen === this.generation) this.generation++; // drop this attempt
        try {
          producer.disconnect();
        } catch {
          // never connected
        }
        if (!this.closed) setTimeout(connect, 1000).unref();
      });
    };
    this.reconnect = connect;
    connect();
    this.watchdog = setInterval(() => this.checkStall(), 1000).unref();
  }

  private checkStall(): void {
    const quietMs = Date.now() - this.lastProgressAt;
    if (!this.ready || this.inFlight.size === 0 || quietMs <= this.cfg.deliveryTimeoutMs + STALL_GRACE_MS) return;
    this.lastError = `no delivery for ${Math.round(quietMs / 1000)} s with ${this.inFlight.size} messages in flight`;
    this.log.warn({ event: 'kafka_producer_stalled', sink: this.name, inFlight: this.inFlight.size, quietMs }, 'kafka producer delivers nothing; replacing it');
    this.replace(this.producer, this.reconnect);
  }

  private reconnect: () => void = () => {};

  /**
   * Drops a producer that can no longer deliver and connects a new one (once per producer).
   * Its messages still in flight go back to the sink host as retries now: a destroyed producer
   * may never report them, and the host would wait for them forever.
   */
  private replace(producer: unknown, connect: () => void): void {
    if (producer !== this.producer || this.closed) return;
    this.log.warn({ event: 'kafka_producer_replaced', sink: this.name, err: this.lastError, inFlight: this.inFlight.size }, 'kafka producer can no longer deliver; starting a new one');
    this.ready = false;
    this.producer = null;
    this.generation++;
    const orphans = this.inFlight;
    this.inFlight = new Set();
    for (const f of orphans) f.done({ kind: 'retry', reason: `kafka: producer replaced (${this.lastError})` });
    orphans.clear();
    try {
      (producer as { disconnect(): void }).disconnect();
    } catch {
      // already gone
    }
    setTimeout(connect, 500).unref();
  }

  private errorsLogged = 0;
  private closed = false;
  /** The producer of the connection attempt under way (not ready yet). */
  private attempt: any = null;
  private generation = 0;

  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    if (!this.ready) return false;
    const e = m.envelope;
    const raw = this.cfg.format === 'raw';
    const value = raw ? Buffer.from(e.body) : m.payload;
    const headers: Array<Record<string, string>> = raw
      ? [{ 'crowd-id': e.id }, { 'content-type': e.contentType }, ...(e.contentEncoding ? [{ 'content-encoding': e.contentEncoding }] : []), ...e.headers.map((h) => ({ [h.name]: h.value }))]
      : [{ 'crowd-id': e.id }];
    const outcome = (err: RdKafkaError): DeliveryOutcome => {
      const name = this.errorName(err);
      return PERMANENT.has(name) ? { kind: 'dead', reason: `kafka: ${name}: ${err.message}` } : { kind: 'retry', reason: `kafka: ${name}: ${err.message}` };
    };
    const producer = this.producer;
    const inFlight = this.inFlight;
    const f: InFlightSend = { done };
    const opaque = (err: RdKafkaError | null, report: DeliveryReport | null) => {
      if (!inFlight.delete(f)) return; // its producer was replaced: already handed back as a retry
      if (!err) {
        this.lastProgressAt = Date.now();
        return done({ kind: 'delivered', detail: `partition ${report?.partition} offset ${report?.offset}` });
      }
      const name = this.errorName(err);
      // A broker's own refusal (not a local ERR__ error such as a timeout) shows it is reachable.
      if (!name.startsWith('ERR__')) this.lastProgressAt = Date.now();
      // An idempotent producer that hit a fatal error fails every message from then on: start
      // a new one (the host sends these messages again through it).
      if (name === 'ERR__FATAL') this.replace(producer, this.reconnect);
      done(outcome(err));
    };
    try {
      this.producer.produce(this.topicOf(e.topic), null, value, e.key === '' ? null : e.key, e.receivedAtMs, opaque, headers);
      // The watchdog measures from the last delivery or, after an idle spell, from now.
      if (inFlight.size === 0) this.lastProgressAt = Date.now();
      inFlight.add(f);
      return true;
    } catch (err) {
      if ((err as RdKafkaError).code === QUEUE_FULL) return false;
      done(outcome(err as RdKafkaError));
      return true;
    }
  }

  health(): SinkHealth {
    return { healthy: this.ready, detail: this.ready ? 'connected' : this.lastError || 'connecting' };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    const p = this.producer;
    if (!p) {
      // Never connected: stop the attempt, or librdkafka keeps the process alive until its
      // connect timeout runs out.
      try {
        this.attempt?.disconnect();
      } catch {
        // not connected: nothing to stop
      }
      return;
    }
    await new Promise<void>((resolve) => {
      p.flush(5000, () => p.disconnect(() => resolve()));
      setTimeout(resolve, 7000).unref();
    });
  }
}

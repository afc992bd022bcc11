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
 */
import { createRequire } from 'node:module';
import type { Logger } from '../../logger.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../sink-types.js';

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

/** librdkafka error codes that no retry fixes: the message goes to the dead letters. */
const PERMANENT: Record<number, string> = {
  10: 'MSG_SIZE_TOO_LARGE',
  [-186]: 'MSG_SIZE_TOO_LARGE (local)',
  17: 'INVALID_TOPIC_EXCEPTION',
  18: 'RECORD_LIST_TOO_LARGE',
  [-188]: 'UNKNOWN_TOPIC',
  3: 'UNKNOWN_TOPIC_OR_PART',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  87: 'INVALID_RECORD',
};
const QUEUE_FULL = -184;

export class KafkaSink implements Sink {
  private producer: any = null;
  private ready = false;
  private lastError = 'connecting';
  private readonly topicOf: (routeTopic: string) => string;

  constructor(readonly name: string, private readonly cfg: KafkaSinkConfig, private readonly log: Logger) {
    this.topicOf = cfg.topic.includes('{topic}')
      ? (t) => cfg.topic.replace(/\{topic\}/g, t.replace(/\//g, '.'))
      : () => cfg.topic;
  }

  async start(): Promise<void> {
    const Kafka = require('node-rdkafka');
    const producer = new Kafka.Producer({
      'client.id': `crowd-${this.name}`,
      'metadata.broker.list': this.cfg.brokers.join(','),
      'request.required.acks': -1,
      'enable.idempotence': true,
      'compression.codec': this.cfg.compression,
      'linger.ms': 5,
      'message.timeout.ms': this.cfg.deliveryTimeoutMs,
      'queue.buffering.max.messages': 100000,
      dr_cb: true,
      ...this.cfg.librdkafka,
    });
    this.producer = producer;
    producer.on('delivery-report', (err: RdKafkaError | null, report: DeliveryReport) => report.opaque(err, report));
    producer.on('event.error', (e: RdKafkaError) => {
      this.lastError = `${e.code} ${e.message}`;
      this.log.warn({ event: 'kafka_error', sink: this.name, code: e.code, err: e.message }, 'kafka client error');
    });
    producer.on('ready', () => {
      this.ready = true;
      this.lastError = '';
      this.log.info({ event: 'kafka_ready', sink: this.name, brokers: this.cfg.brokers }, 'kafka producer connected');
    });
    producer.on('disconnected', () => (this.ready = false));
    producer.setPollInterval(5);
    // An unreachable broker must not stop crowd from starting: connect in the background and
    // keep trying; messages wait in the log meanwhile.
    const connect = () =>
      producer.connect({ timeout: 10000 }, (err: RdKafkaError | null) => {
        if (err) {
          this.lastError = `connect: ${err.message}`;
          this.log.warn({ event: 'kafka_connect_failed', sink: this.name, err: err.message }, 'kafka not reachable yet; retrying');
          setTimeout(connect, 2000).unref();
        }
      });
    connect();
  }

  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    if (!this.ready) return false;
    const e = m.envelope;
    const raw = this.cfg.format === 'raw';
    const value = raw ? Buffer.from(e.body) : m.payload;
    const headers: Array<Record<string, string>> = raw
      ? [{ 'crowd-id': e.id }, { 'content-type': e.contentType }, ...e.headers.map((h) => ({ [h.name]: h.value }))]
      : [{ 'crowd-id': e.id }];
    const opaque = (err: RdKafkaError | null, report: DeliveryReport | null) => {
      if (!err) return done({ kind: 'delivered', detail: `partition ${report?.partition} offset ${report?.offset}` });
      const permanent = PERMANENT[err.code];
      done(permanent ? { kind: 'dead', reason: `kafka: ${permanent}: ${err.message}` } : { kind: 'retry', reason: `kafka: ${err.code} ${err.message}` });
    };
    try {
      this.producer.produce(this.topicOf(e.topic), null, value, e.key === '' ? null : e.key, e.receivedAtMs, opaque, headers);
      return true;
    } catch (err) {
      const code = (err as RdKafkaError).code;
      if (code === QUEUE_FULL) return false;
      const permanent = PERMANENT[code];
      done(permanent ? { kind: 'dead', reason: `kafka: ${permanent}: ${(err as Error).message}` } : { kind: 'retry', reason: `kafka: ${(err as Error).message}` });
      return true;
    }
  }

  health(): SinkHealth {
    return { healthy: this.ready, detail: this.ready ? 'connected' : this.lastError || 'connecting' };
  }

  async close(): Promise<void> {
    const p = this.producer;
    if (!p) return;
    await new Promise<void>((resolve) => {
      p.flush(5000, () => p.disconnect(() => resolve()));
      setTimeout(resolve, 7000).unref();
    });
  }
}

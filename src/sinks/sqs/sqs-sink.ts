/**
 * SQS sink (AWS SDK v3): messages taken in the same turn of the event loop go out as
 * SendMessageBatch requests of up to `maxBatch` (10) entries whose total stays within
 * `maxMessageBytes` (SQS: 256 KiB), up to `concurrency` requests at a time (one for a FIFO
 * queue, to keep its order). A 200 can carry failed entries: a failed entry of a batch of
 * several is sent again alone; alone, a sender fault (the message itself is refused, e.g. over
 * the queue's size limit) makes it a dead letter, anything else a retry from the log.
 *
 * Body: format raw sends the body as it is when it is text SQS accepts (UTF-8, XML characters),
 * else base64 with the attribute crowd-body-encoding=base64; format envelope sends the stored
 * envelope in base64. Attributes: crowd-id, crowd-topic, crowd-key (when there is one),
 * content-type and the route's kept headers (empty values left out: SQS refuses them). FIFO:
 * MessageGroupId = the partition key (the route topic when there is none; a sha256 of it when
 * it is not 1-128 printable ASCII characters, as SQS wants),
 * MessageDeduplicationId = crowd's id. A message over `maxMessageBytes` is dead-lettered
 * without being sent. The SDK's own retries are off: the sink host retries, from the log.
 * A request that fails (server down, credentials or queue refused) makes the sink unhealthy:
 * it takes no more messages (they wait in the log) until a GetQueueAttributes probe, every
 * 2 s, gets an answer.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { MessageAttributeValue, SendMessageBatchRequestEntry, SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../../logger.js';
import type { DeliveryOutcome, OutboundMessage, Sink, SinkHealth } from '../sink-types.js';
import type { SqsSinkOptions } from './sqs-options.js';

type SqsModule = typeof import('@aws-sdk/client-sqs');

/** Request errors that mean "this batch as written is refused": its entries are sent again alone, and alone they are dead letters. */
const BATCH_REFUSED = new Set([
  'BatchRequestTooLong', 'InvalidMessageContents', 'InvalidParameterValue', 'InvalidParameterValueException',
  'InvalidAttributeName', 'InvalidAttributeValue', 'MessageTooLong', 'BatchEntryIdsNotDistinct', 'InvalidBatchEntryId', 'TooManyEntriesInBatchRequest',
]);
/** While the queue has not answered, a probe (GetQueueAttributes) this often keeps health true to life. */
const PROBE_MS = 2000;
// SQS text: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF
const NOT_SQS_TEXT = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Entry {
  done: (o: DeliveryOutcome) => void;
  request: SendMessageBatchRequestEntry;
  bytes: number;
  /** Failed inside a batch of several: goes alone next time. */
  solo: boolean;
}

/** SQS message text for a body: itself when SQS takes it as text, else null (send base64). */
function sqsText(body: Uint8Array): string | null {
  let s: string;
  try {
    s = utf8.decode(body);
  } catch {
    return null;
  }
  return NOT_SQS_TEXT.test(s) ? null : s;
}

/** A MessageGroupId for a key: itself when SQS takes it (1-128 printable ASCII), else a hash of it (same key, same group). */
function groupId(key: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(key) ? key : `sha256-${createHash('sha256').update(key).digest('hex')}`;
}

/** Bytes SQS counts for a message: body, attribute names, types and values. */
function sizeOf(r: SendMessageBatchRequestEntry): number {
  let n = Buffer.byteLength(r.MessageBody ?? '');
  for (const [k, v] of Object.entries(r.MessageAttributes ?? {})) n += Buffer.byteLength(k) + Buffer.byteLength(v.DataType ?? '') + Buffer.byteLength(v.StringValue ?? '');
  return n;
}

export class SqsSink implements Sink {
  private sqs: SqsModule | null = null;
  private client: SQSClient | null = null;
  private pending: Entry[] = [];
  private flushScheduled = false;
  private batchesInFlight = 0;
  /** Taken and not answered yet (pending + in flight). */
  private queued = 0;
  private readonly maxQueued: number;
  private healthy = false;
  private lastError = 'not connected yet';
  private probe: NodeJS.Timeout | null = null;
  private closed = false;
  private wakeUp: () => void = () => {};
  private errorsLogged = 0;
  private seq = 0;

  constructor(readonly name: string, private readonly cfg: SqsSinkOptions, private readonly log: Logger) {
    this.maxQueued = Math.max(64, cfg.maxBatch * cfg.concurrency * 4);
  }

  async start(): Promise<void> {
    this.sqs = await import('@aws-sdk/client-sqs');
    const agent = { keepAlive: true, maxSockets: this.cfg.concurrency + 1 };
    this.client = new this.sqs.SQSClient({
      region: this.cfg.region,
      endpoint: this.cfg.endpoint,
      // a copy: the SDK writes into the object it is given, and the config is frozen
      credentials: this.cfg.credentials && { ...this.cfg.credentials },
      maxAttempts: 1,
      requestHandler: { requestTimeout: this.cfg.timeoutMs, connectionTimeout: 5000, httpAgent: new http.Agent(agent), httpsAgent: new https.Agent(agent) },
    });
    this.probe = setInterval(() => this.probeQueue(), PROBE_MS).unref();
    this.probeQueue();
  }

  setWakeUp(wake: () => void): void {
    this.wakeUp = wake;
  }

  private probing = false;

  private probeQueue(): void {
    if (this.healthy || this.probing || this.closed || this.batchesInFlight > 0) return;
    this.probing = true;
    this.client!.send(new this.sqs!.GetQueueAttributesCommand({ QueueUrl: this.cfg.queueUrl, AttributeNames: ['QueueArn'] })).then(
      () => this.answered(),
      (e: Error) => this.failedRequest(e),
    ).finally(() => (this.probing = false));
  }

  private answered(): void {
    const was = this.healthy;
    this.healthy = true;
    this.lastError = '';
    if (!was) {
      this.log.info({ event: 'sqs_ready', sink: this.name, queueUrl: this.cfg.queueUrl }, 'sqs queue answers');
      this.wakeUp();
    }
  }

  private failedRequest(e: Error): void {
    this.healthy = false;
    this.lastError = `${e.name}: ${e.message}`;
    if (this.errorsLogged++ < 20) this.log.warn({ event: 'sqs_error', sink: this.name, err: this.lastError }, 'sqs request failed');
  }

  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean {
    // Not answering (down, or refusing the queue for credentials or a missing queue): messages
    // wait in the log instead of failing one by one; the probe brings the sink back.
    if (!this.healthy || this.queued >= this.maxQueued || !this.client) return false;
    const e = m.envelope;
    const attrs: Record<string, MessageAttributeValue> = {};
    const put = (k: string, v: string) => {
      if (v !== '') attrs[k] = { DataType: 'String', StringValue: v };
    };
    let body: string | null;
    if (this.cfg.format === 'raw') {
      for (const h of e.headers) put(h.name, h.value);
      body = sqsText(e.body);
      if (body === null) {
        body = Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength).toString('base64');
        put('crowd-body-encoding', 'base64');
      }
      put('content-type', e.contentType);
    } else {
      body = m.payload.toString('base64');
      put('crowd-body-encoding', 'base64');
      put('content-type', 'application/x-protobuf');
    }
    put('crowd-id', e.id);
    put('crowd-topic', e.topic);
    put('crowd-key', e.key);
    const request: SendMessageBatchRequestEntry = { Id: '', MessageBody: body, MessageAttributes: attrs };
    if (this.cfg.fifo) {
      request.MessageGroupId = groupId(e.key || e.topic);
      request.MessageDeduplicationId = e.id;
    }
    const bytes = sizeOf(request);
    if (bytes > this.cfg.maxMessageBytes) {
      done({ kind: 'dead', reason: `sqs: message of ${bytes} bytes is over the queue's limit of ${this.cfg.maxMessageBytes}` });
      return true;
    }
    this.queued++;
    this.pending.push({ done, request, bytes, solo: false });
    this.scheduleFlush();
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends batches of what is pending while requests may be added. */
  private flush(): void {
    while (this.pending.length > 0 && this.batchesInFlight < this.cfg.concurrency && !this.closed) {
      const batch: Entry[] = [];
      let bytes = 0;
      if (this.pending[0].solo) {
        batch.push(this.pending.shift()!);
      } else {
        while (batch.length < this.cfg.maxBatch && this.pending.length > 0 && !this.pending[0].solo && bytes + this.pending[0].bytes <= this.cfg.maxMessageBytes) {
          const x = this.pending.shift()!;
          bytes += x.bytes;
          batch.push(x);
        }
      }
      this.sendBatch(batch);
    }
  }

  private finish(x: Entry, o: DeliveryOutcome): void {
    this.queued--;
    x.done(o);
  }

  private sendBatch(batch: Entry[]): void {
    this.batchesInFlight++;
    for (const x of batch) x.request.Id = `m${(this.seq++ % 1e9).toString(36)}`;
    const byId = new Map(batch.map((x) => [x.request.Id!, x]));
    const again: Entry[] = [];
    this.client!.send(new this.sqs!.SendMessageBatchCommand({ QueueUrl: this.cfg.queueUrl, Entries: batch.map((x) => x.request) })).then(
      (r) => {
        this.answered();
        for (const s of r.Successful ?? []) {
          const x = byId.get(s.Id!);
          if (!x) continue;
          byId.delete(s.Id!);
          this.finish(x, { kind: 'delivered', detail: `sqs ${s.MessageId}` });
        }
        for (const f of r.Failed ?? []) {
          const x = byId.get(f.Id!);
          if (!x) continue;
          byId.delete(f.Id!);
          const reason = `sqs: ${f.Code}: ${f.Message ?? ''}`;
          if (batch.length > 1) {
            if (this.errorsLogged++ < 20) this.log.warn({ event: 'sqs_entry_failed', sink: this.name, err: reason }, 'batch entry failed; it goes again alone');
            x.solo = true;
            again.push(x);
          } else this.finish(x, f.SenderFault ? { kind: 'dead', reason } : { kind: 'retry', reason });
        }
        // An entry the answer does not mention: not known to be stored.
        for (const x of byId.values()) this.finish(x, { kind: 'retry', reason: 'sqs: entry missing from the SendMessageBatch answer' });
      },
      (e: Error) => {
        const reason = `sqs: ${e.name}: ${e.message}`;
        if (BATCH_REFUSED.has(e.name)) {
          // The request as a whole was refused for what it carries: find the culprit alone.
          this.answered();
          if (batch.length > 1 && this.errorsLogged++ < 20) this.log.warn({ event: 'sqs_batch_split', sink: this.name, entries: batch.length, err: reason }, 'batch refused; its entries go again alone');
          for (const x of batch) {
            if (batch.length > 1) {
              x.solo = true;
              again.push(x);
            } else this.finish(x, { kind: 'dead', reason });
          }
          return;
        }
        this.failedRequest(e);
        for (const x of batch) this.finish(x, { kind: 'retry', reason });
      },
    ).finally(() => {
      this.batchesInFlight--;
      if (again.length > 0) this.pending.unshift(...again);
      if (this.pending.length > 0) this.scheduleFlush();
      if (this.queued < this.maxQueued) this.wakeUp();
    });
  }

  health(): SinkHealth {
    return { healthy: this.healthy, detail: this.healthy ? 'answering' : this.lastError };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probe) clearInterval(this.probe);
    // Requests under way get a moment; what is not answered is sent again at the next start.
    for (let i = 0; i < 30 && this.batchesInFlight > 0; i++) await new Promise((r) => setTimeout(r, 100));
    this.client?.destroy();
  }
}

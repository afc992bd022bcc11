/**
 * Turns outbound messages into Redis commands (one per message) and Redis replies into
 * delivery outcomes.
 *
 * stream: XADD <key> [MAXLEN ~ n] * id <crowd id> body <body> key <partition key> ct <content
 * type> <kept header> <value>...   (format envelope: XADD ... * id <crowd id> envelope <bytes>)
 * list:   RPUSH|LPUSH <key> <body>  (format envelope: the stored protobuf envelope)
 */
import type { DeliveryOutcome, OutboundMessage } from '../sink-types.js';
import { topicTemplate } from '../topic-template.js';
import { isErrorReply, type CommandBatch, type RedisReply } from './redis-connection.js';

export interface RedisSinkConfig {
  type: 'redis';
  url: string;
  stream?: string;
  maxLen?: number;
  list?: string;
  push: 'right' | 'left';
  format: 'raw' | 'envelope';
  driver: 'auto' | 'native' | 'js';
  maxBatch: number;
  replyTimeoutMs: number;
}

/** What decides the command of a message. */
export type MessageFormat = Pick<RedisSinkConfig, 'stream' | 'list' | 'maxLen' | 'push' | 'format'>;

export type CommandWriter = (m: OutboundMessage, batch: CommandBatch) => void;

/** The stream or list key, with "{topic}" where the route's topic goes (topic-template.ts). */
export function keyTemplate(cfg: MessageFormat): string {
  return cfg.stream ?? cfg.list!;
}

/** Builds the function that appends one message's command to a batch. */
export function commandWriter(cfg: MessageFormat): CommandWriter {
  const keyOf = topicTemplate(keyTemplate(cfg));
  const envelope = cfg.format === 'envelope';
  if (cfg.list !== undefined) {
    const verb = cfg.push === 'left' ? 'LPUSH' : 'RPUSH';
    return (m, b) => {
      b.args.push(verb, keyOf(m.envelope.topic), envelope ? m.payload : Buffer.from(m.envelope.body.buffer, m.envelope.body.byteOffset, m.envelope.body.byteLength));
      b.argc.push(3);
    };
  }
  const head = cfg.maxLen === undefined ? [] : ['MAXLEN', '~', String(cfg.maxLen)];
  return (m, b) => {
    const e = m.envelope;
    b.args.push('XADD', keyOf(e.topic), ...head, '*', 'id', e.id);
    if (envelope) {
      b.args.push('envelope', m.payload);
      b.argc.push(7 + head.length);
      return;
    }
    b.args.push('body', Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength), 'key', e.key, 'ct', e.contentType);
    const ce = e.contentEncoding ? 2 : 0;
    if (ce) b.args.push('ce', e.contentEncoding!);
    for (const h of e.headers) b.args.push(h.name, h.value);
    b.argc.push(11 + head.length + ce + 2 * e.headers.length);
  };
}

/**
 * Error replies that no retry fixes (the message goes to the dead letters): WRONGTYPE (the key
 * holds another type), and plain ERR (a command Redis refuses as written, e.g. a value over
 * proto-max-bulk-len). Everything else is retried from the log: a lost connection, OOM
 * (maxmemory), LOADING, BUSY, READONLY / MASTERDOWN (failover), NOAUTH, and NOPERM (an ACL the
 * operator can fix without losing the messages' order).
 */
const PERMANENT = /^(WRONGTYPE|ERR|EXECABORT)\b/;

export function outcomeOf(r: RedisReply): DeliveryOutcome {
  if (!isErrorReply(r)) return { kind: 'delivered', detail: String(r) };
  const reason = `redis: ${r.error}`;
  return !r.lost && PERMANENT.test(r.error) ? { kind: 'dead', reason } : { kind: 'retry', reason };
}

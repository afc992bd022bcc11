/** The sqs sink's config: its schema fragment and the runtime options made from it. */
import { duration, H } from '../../config/duration-schema.js';
import type { RouteConfig } from '../../config/types.js';
import type { SinkOptionsContext } from '../sink-module.js';

export const sqsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'queueUrl'],
  properties: {
    type: { const: 'sqs' },
    /** The queue's URL; a name ending in ".fifo" is a FIFO queue. */
    queueUrl: { type: 'string', pattern: '^https?://[^\\s]+$' },
    /** AWS region; default: the one in an amazonaws.com queue URL, else us-east-1. */
    region: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' },
    /** Another endpoint (an SQS-compatible server, a VPC endpoint). */
    endpoint: { type: 'string', pattern: '^https?://[^\\s]+$' },
    /** Static credentials; absent: the AWS SDK's usual chain (environment, profile, instance role). */
    credentials: {
      type: 'object', additionalProperties: false, required: ['accessKeyId', 'secretAccessKey'],
      properties: { accessKeyId: { type: 'string', minLength: 1 }, secretAccessKey: { type: 'string', minLength: 1 }, sessionToken: { type: 'string', minLength: 1 } },
    },
    /** Entries per SendMessageBatch (SQS takes at most 10). */
    maxBatch: { type: 'integer', minimum: 1, maximum: 10, default: 10 },
    /** SendMessageBatch requests in flight at once (a FIFO queue always gets one, for order). */
    concurrency: { type: 'integer', minimum: 1, maximum: 256, default: 16 },
    /** The queue's size limit for one message, and for one batch (SQS: 256 KiB). */
    maxMessageBytes: { type: 'integer', minimum: 1024, maximum: 1048576, default: 262144 },
    format: { enum: ['raw', 'envelope'], default: 'raw' },
    /** One request's time limit; its messages are sent again after it. */
    timeout: { ...duration(100, 1 * H), default: '30s' },
  },
} as const;

export interface SqsSinkOptions {
  type: 'sqs';
  queueUrl: string;
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  fifo: boolean;
  maxBatch: number;
  concurrency: number;
  maxMessageBytes: number;
  format: 'raw' | 'envelope';
  timeoutMs: number;
}

/** SQS takes at most 10 message attributes; crowd's own (at most 5) leave 5 for kept headers. */
export const MAX_ATTRIBUTES = 10;
export const OWN_ATTRIBUTES = ['crowd-id', 'crowd-topic', 'crowd-key', 'content-type', 'crowd-body-encoding'] as const;

export function sqsOptions(name: string, s: Record<string, any>, ctx: SinkOptionsContext): SqsSinkOptions {
  let u: URL;
  try {
    u = new URL(s.queueUrl);
  } catch (e) {
    throw new Error(`config: /sinks/${name}/queueUrl is not a URL: ${(e as Error).message}`);
  }
  if (s.endpoint !== undefined && !URL.canParse(s.endpoint)) throw new Error(`config: /sinks/${name}/endpoint is not a URL`);
  const region = s.region ?? /^sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(u.hostname)?.[1] ?? 'us-east-1';
  const fifo = u.pathname.endsWith('.fifo');
  return {
    type: 'sqs', queueUrl: s.queueUrl, region, endpoint: s.endpoint, credentials: s.credentials, fifo,
    maxBatch: s.maxBatch, concurrency: fifo ? 1 : s.concurrency, maxMessageBytes: s.maxMessageBytes, format: s.format,
    timeoutMs: ctx.duration(s.timeout),
  };
}

/** A route's kept headers must fit in SQS's 10 message attributes next to crowd's own. */
export function sqsCheckRoute(sinkName: string, _o: SqsSinkOptions, route: RouteConfig, where: string): void {
  const room = MAX_ATTRIBUTES - OWN_ATTRIBUTES.length;
  const kept = route.keepHeaders.filter((h) => !(OWN_ATTRIBUTES as readonly string[]).includes(h));
  if (kept.length > room) {
    throw new Error(`config: ${where}/keepHeaders keeps ${kept.length} headers; sqs sink "${sinkName}" carries at most ${room} (SQS takes ${MAX_ATTRIBUTES} message attributes, crowd uses the others)`);
  }
}

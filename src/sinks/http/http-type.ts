/** The http sink type (replay to a pool of HTTP backends): schema fragment, options and factory, for sink-registry.ts. */
import { duration, H, S } from '../../config/duration-schema.js';
import type { HttpSinkConfig } from '../../config/types.js';
import type { SinkOptionsContext, SinkTypeModule } from '../sink-module.js';
import { HttpSink } from './http-sink.js';

export const httpSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'pool'],
  properties: {
    type: { const: 'http' },
    pool: { type: 'string', minLength: 1 },
    /** Requests in flight at once (this sink, all servers). */
    concurrency: { type: 'integer', minimum: 1, maximum: 10000, default: 16 },
    /** Requests per second (token bucket); absent = no limit. */
    rate: { type: 'number', exclusiveMinimum: 0, maximum: 1000000 },
    timeout: { ...duration(10, 1 * H), default: '5s' },
    /** Older messages (receivedAt) are dead-lettered with reason "ttl expired". */
    ttl: { ...duration(1 * S, 365 * 24 * H), default: '24h' },
    /** Regular-expression replace on the request path before replay. */
    rewrite: {
      type: 'object', additionalProperties: false, required: ['match', 'replace'],
      properties: { match: { type: 'string', minLength: 1 }, replace: { type: 'string' } },
    },
    /** Static headers added to every replayed request (e.g. the backend's own credentials). */
    headers: { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9-]+$' }, additionalProperties: { type: 'string' }, default: {} },
    /** key: messages with the same partition key are delivered one at a time, in log order. */
    ordering: { enum: ['none', 'key'], default: 'none' },
    /** Retry backoff: first delay and cap (exponential, jittered). */
    backoff: {
      type: 'object', additionalProperties: false, default: {},
      properties: { initial: { ...duration(1, 1 * H), default: '100ms' }, max: { ...duration(1, 24 * H), default: '30s' } },
    },
  },
} as const;

function httpOptions(name: string, s: Record<string, any>, ctx: SinkOptionsContext): HttpSinkConfig {
  if (!(s.pool in ctx.pools)) throw new Error(`config: /sinks/${name}/pool names "${s.pool}", which is not in /pools`);
  if (s.rewrite) {
    try {
      new RegExp(s.rewrite.match);
    } catch (e) {
      throw new Error(`config: /sinks/${name}/rewrite/match is not a regular expression: ${(e as Error).message}`);
    }
  }
  return {
    type: 'http', pool: s.pool, concurrency: s.concurrency, rate: s.rate, timeoutMs: ctx.duration(s.timeout), ttlMs: ctx.duration(s.ttl),
    rewrite: s.rewrite, headers: s.headers, ordering: s.ordering,
    backoffInitialMs: ctx.duration(s.backoff.initial), backoffMaxMs: ctx.duration(s.backoff.max),
  };
}

export const httpSinkType: SinkTypeModule<HttpSinkConfig> = {
  type: 'http',
  schema: httpSchema,
  options: httpOptions,
  create: (name, options, ctx) => new HttpSink(name, options, ctx.pools.pool(options.pool), ctx.log),
};

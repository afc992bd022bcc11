/** The redis sink type: schema fragment, options and factory, for sink-registry.ts. */
import { duration, H } from '../../config/duration-schema.js';
import type { SinkOptionsContext, SinkTypeModule } from '../sink-module.js';
import type { RedisSinkConfig } from './redis-commands.js';
import { RedisSink } from './redis-sink.js';

/** Exactly one of `stream` or `list` (redisOptions says which is wrong, in words). */
const redisName = { type: 'string', minLength: 1, maxLength: 1024 } as const;
export const redisSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'url'],
  properties: {
    type: { const: 'redis' },
    /** redis://[user[:password]@]host[:port][/db]; user and password are URL-encoded. */
    url: { type: 'string', pattern: '^redis://[^\\s/]+(/[0-9]{1,5})?/?$' },
    /** Stream key for XADD; "{topic}" is replaced by the route's topic. */
    stream: redisName,
    /** Approximate stream cap: XADD MAXLEN ~ maxLen. */
    maxLen: { type: 'integer', minimum: 1 },
    /** List key for RPUSH / LPUSH; "{topic}" is replaced by the route's topic. */
    list: redisName,
    /** RPUSH (right, the default) or LPUSH; lists only. */
    push: { enum: ['right', 'left'] },
    format: { enum: ['raw', 'envelope'], default: 'raw' },
    /** Which writer: the hiredis addon, the pure-JS twin, or auto (the benchmark's pick). */
    driver: { enum: ['auto', 'native', 'js'], default: 'auto' },
    /** Messages per pipelined batch (one JS-to-native call each). */
    maxBatch: { type: 'integer', minimum: 1, maximum: 65536, default: 512 },
    /** A reply not back by then fails the connection; its messages are sent again. */
    replyTimeout: { ...duration(100, 1 * H), default: '10s' },
  },
} as const;

/** One of stream or list; the options that belong to the other one are refused, not ignored. */
function redisOptions(name: string, s: Record<string, any>, ctx: SinkOptionsContext): RedisSinkConfig {
  const where = `config: /sinks/${name}`;
  if ((s.stream === undefined) === (s.list === undefined)) throw new Error(`${where} needs exactly one of "stream" or "list"`);
  if (s.stream !== undefined && s.push !== undefined) throw new Error(`${where}/push applies to lists only`);
  if (s.list !== undefined && s.maxLen !== undefined) throw new Error(`${where}/maxLen applies to streams only`);
  if (s.list !== undefined) s.push ??= 'right';
  s.replyTimeoutMs = ctx.duration(s.replyTimeout);
  try {
    const u = new URL(s.url);
    if (u.protocol !== 'redis:' || u.hostname === '') throw new Error('not redis://host');
  } catch (e) {
    throw new Error(`${where}/url is not a redis:// URL: ${(e as Error).message}`);
  }
  return s as RedisSinkConfig;
}

export const redisSinkType: SinkTypeModule<RedisSinkConfig> = {
  type: 'redis',
  schema: redisSchema,
  options: redisOptions,
  create: (name, options, ctx) => new RedisSink(name, options, ctx.log),
};

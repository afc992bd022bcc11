/** Builds a sink from its config entry (the schema has checked its shape). */
import type { HttpSinkConfig } from '../config/types.js';
import { HttpSink } from './http/http-sink.js';
import { KafkaSink, type KafkaSinkConfig } from './kafka/kafka-sink.js';
import type { RedisSinkConfig } from './redis/redis-commands.js';
import { RedisSink } from './redis/redis-sink.js';
import type { SinkContext } from './sink-module.js';
import { sinkType } from './sink-registry.js';
import type { Sink } from './sink-types.js';

export type { SinkContext } from './sink-module.js';

export function createSink(name: string, cfg: { type: string }, ctx: SinkContext): Sink {
  const mod = sinkType(cfg.type);
  if (mod) return mod.create(name, cfg, ctx);
  switch (cfg.type) {
    case 'kafka':
      return new KafkaSink(name, cfg as KafkaSinkConfig, ctx.log);
    case 'redis':
      return new RedisSink(name, cfg as RedisSinkConfig, ctx.log);
    case 'http': {
      const c = cfg as HttpSinkConfig;
      return new HttpSink(name, c, ctx.pools.pool(c.pool), ctx.log);
    }
    default:
      throw new Error(`sink ${name}: type ${cfg.type} is not available`);
  }
}

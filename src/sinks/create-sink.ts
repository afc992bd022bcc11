/** Builds a sink from its config entry (the schema has checked its shape). */
import type { Logger } from '../logger.js';
import { KafkaSink, type KafkaSinkConfig } from './kafka/kafka-sink.js';
import type { RedisSinkConfig } from './redis/redis-commands.js';
import { RedisSink } from './redis/redis-sink.js';
import type { Sink } from './sink-types.js';

export function createSink(name: string, cfg: { type: string }, log: Logger): Sink {
  switch (cfg.type) {
    case 'kafka':
      return new KafkaSink(name, cfg as KafkaSinkConfig, log);
    case 'redis':
      return new RedisSink(name, cfg as RedisSinkConfig, log);
    default:
      throw new Error(`sink ${name}: type ${cfg.type} is not available`);
  }
}

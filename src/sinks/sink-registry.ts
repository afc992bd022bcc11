/**
 * Every sink type crowd knows, one module each (sink-module.ts says what such a module
 * exports). config/schema.ts, config/load.ts and create-sink.ts read this list; adding a sink
 * type is one line here.
 */
import { amqpSinkType } from './amqp/amqp-type.js';
import { httpSinkType } from './http/http-type.js';
import { kafkaSinkType } from './kafka/kafka-type.js';
import { redisSinkType } from './redis/redis-type.js';
import type { SinkTypeModule } from './sink-module.js';
import { sqsSinkType } from './sqs/sqs-type.js';

export const sinkTypes: readonly SinkTypeModule[] = [kafkaSinkType, redisSinkType, httpSinkType, amqpSinkType, sqsSinkType];

export function sinkType(type: string): SinkTypeModule | undefined {
  return sinkTypes.find((t) => t.type === type);
}

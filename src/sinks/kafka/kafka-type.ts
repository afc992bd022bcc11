/** The kafka sink type: schema fragment, options and factory, for sink-registry.ts. */
import { duration, H, S } from '../../config/duration-schema.js';
import type { SinkTypeModule } from '../sink-module.js';
import { KafkaSink, type KafkaSinkConfig } from './kafka-sink.js';

export const kafkaSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'brokers', 'topic'],
  properties: {
    type: { const: 'kafka' },
    brokers: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[^\\s,]+:[0-9]{1,5}$' } },
    /** Kafka topic; "{topic}" is replaced by the route's topic (with "/" turned into "."). */
    topic: { type: 'string', minLength: 1, maxLength: 249 },
    compression: { enum: ['none', 'gzip', 'snappy', 'lz4', 'zstd'], default: 'none' },
    format: { enum: ['raw', 'envelope'], default: 'raw' },
    /** How long librdkafka keeps trying one message before crowd re-sends it from the log. */
    deliveryTimeout: { ...duration(1 * S, 24 * H), default: '30s' },
    /** Extra librdkafka producer properties, passed as they are. */
    librdkafka: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] }, default: {} },
  },
} as const;

export const kafkaSinkType: SinkTypeModule<KafkaSinkConfig> = {
  type: 'kafka',
  schema: kafkaSchema,
  options: (_name, s, ctx) => {
    s.deliveryTimeoutMs = ctx.duration(s.deliveryTimeout);
    return s as KafkaSinkConfig;
  },
  create: (name, options, ctx) => new KafkaSink(name, options, ctx.log),
};

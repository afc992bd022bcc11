/** The amqp sink type (RabbitMQ): schema fragment, options and factory, for sink-registry.ts. */
import type { SinkTypeModule } from '../sink-module.js';
import { amqpOptions, amqpSchema, type AmqpSinkOptions } from './amqp-options.js';
import { AmqpSink } from './amqp-sink.js';

export const amqpSinkType: SinkTypeModule<AmqpSinkOptions> = {
  type: 'amqp',
  schema: amqpSchema,
  options: amqpOptions,
  create: (name, options, ctx) => new AmqpSink(name, options, ctx.log),
};

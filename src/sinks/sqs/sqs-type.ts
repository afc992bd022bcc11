/** The sqs sink type (AWS SQS and compatible servers): schema fragment, options and factory, for sink-registry.ts. */
import type { SinkTypeModule } from '../sink-module.js';
import { sqsCheckRoute, sqsOptions, sqsSchema, type SqsSinkOptions } from './sqs-options.js';
import { SqsSink } from './sqs-sink.js';

export const sqsSinkType: SinkTypeModule<SqsSinkOptions> = {
  type: 'sqs',
  schema: sqsSchema,
  options: sqsOptions,
  checkRoute: sqsCheckRoute,
  create: (name, options, ctx) => new SqsSink(name, options, ctx.log),
};

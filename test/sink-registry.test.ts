// The sink-type list: every type is one module that the schema, the loader and create-sink
// compose; the amqp and sqs entries get their defaults and refuse what they cannot carry.
import test from 'ava';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { sinkTypes } from '../src/sinks/sink-registry.js';

const load = (sinks: Record<string, unknown>, routes?: unknown[]) => loadConfig({ env: {}, overrides: { sinks, ...(routes ? { routes } : {}) } });

test('every registered type is in the schema, once, with its own fragment', (t) => {
  const names = sinkTypes.map((s) => s.type);
  t.deepEqual(new Set(names).size, names.length);
  t.deepEqual(names.sort(), ['amqp', 'http', 'kafka', 'redis', 'sqs']);
  const entry = configSchema.properties.sinks.additionalProperties;
  t.deepEqual([...entry.properties.type.enum].sort(), names);
  t.is(entry.allOf.length, names.length);
});

test('an unknown sink type is refused, naming the ones there are', (t) => {
  const e = t.throws(() => load({ x: { type: 'nats' } }), { instanceOf: ConfigError });
  t.regex(e!.message, /\/sinks\/x\/type .*kafka, redis, http, amqp, sqs/);
});

test('amqp: defaults, and durations in ms', (t) => {
  const c = load({ q: { type: 'amqp', url: 'amqp://u:p@127.0.0.1:5672/v' } });
  t.like(c.sinks.q, { type: 'amqp', exchange: '', routingKey: '{topic}', persistent: true, mandatory: true, maxInFlight: 1000, format: 'raw', confirmTimeoutMs: 30000 });
});

test('amqp: a url of another scheme, or an unknown option, is refused naming the field', (t) => {
  t.regex(t.throws(() => load({ q: { type: 'amqp', url: 'http://h/' } }))!.message, /\/sinks\/q\/url/);
  t.regex(t.throws(() => load({ q: { type: 'amqp', url: 'amqp://h/', queue: 'x' } }))!.message, /\/sinks\/q .*"queue"/);
});

test('sqs: defaults; a .fifo queue gets one batch in flight; the region comes from an AWS queue URL', (t) => {
  const c = load({
    a: { type: 'sqs', queueUrl: 'https://sqs.eu-west-3.amazonaws.com/123456789012/orders' },
    b: { type: 'sqs', queueUrl: 'http://127.0.0.1:9324/000000000000/orders.fifo', concurrency: 8 },
  });
  t.like(c.sinks.a, { region: 'eu-west-3', fifo: false, maxBatch: 10, concurrency: 16, maxMessageBytes: 262144, timeoutMs: 30000 });
  t.like(c.sinks.b, { region: 'us-east-1', fifo: true, concurrency: 1 });
});

test('sqs: more than 10 entries per batch is refused', (t) => {
  t.regex(t.throws(() => load({ a: { type: 'sqs', queueUrl: 'http://h/1/q', maxBatch: 11 } }))!.message, /\/sinks\/a\/maxBatch/);
});

test('sqs: a route keeping more headers than the attributes left is refused; 5 fit', (t) => {
  const sinks = { a: { type: 'sqs', queueUrl: 'http://h/1/q' } };
  t.notThrows(() => load(sinks, [{ path: '/x', keepHeaders: ['a', 'b', 'c', 'd', 'e'], sinks: ['a'] }]));
  t.regex(t.throws(() => load(sinks, [{ path: '/x', keepHeaders: ['a', 'b', 'c', 'd', 'e', 'f'], sinks: ['a'] }]))!.message, /\/routes\/0\/keepHeaders keeps 6/);
});

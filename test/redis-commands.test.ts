// The Redis writer's pieces without a server: the native encoder and the JS twin's encoder
// give the same RESP bytes for any batch (fast-check), messages become the documented
// commands, and replies become the documented outcomes.
import test from 'ava';
import fc from 'fast-check';
import { decodeEnvelope, encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';
import { nativeEncode, nativeMessageEncoder } from '../src/native/redis-native.js';
import { commandWriter, outcomeOf, type MessageFormat, type RedisSinkConfig } from '../src/sinks/redis/redis-commands.js';
import type { CommandBatch } from '../src/sinks/redis/redis-connection.js';
import { encodeBatch } from '../src/sinks/redis/resp-connection.js';
import type { OutboundMessage } from '../src/sinks/sink-types.js';

test('native and JS encoders write identical RESP for any batch', (t) => {
  if (!nativeEncode) return t.fail('the native Redis writer is not built (libhiredis-dev missing at npm install?)');
  const arg = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)));
  const batch = fc.array(fc.array(arg, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 30 }).map((cmds): CommandBatch => ({ args: cmds.flat(), argc: cmds.map((c) => c.length) }));
  fc.assert(fc.property(batch, (b) => Buffer.compare(nativeEncode!(b), encodeBatch(b)) === 0));
  t.is(encodeBatch({ args: ['SET', 'k', Buffer.from('v\r\n')], argc: [3] }).toString(), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n');
  // Large Buffers take the JS twin's other path (written as they are): same bytes.
  const big = { args: ['RPUSH', 'ü', Buffer.alloc(40_000, 0xe9), 'PING'], argc: [3, 1] };
  t.is(Buffer.compare(nativeEncode(big), encodeBatch(big)), 0);
});

test('the native writer builds, from the stored envelopes, the very bytes the JS twin sends', (t) => {
  if (!nativeMessageEncoder({ stream: 's', push: 'right', format: 'raw' })) return t.fail('the native Redis writer is not built');
  const text = fc.string({ unit: 'grapheme', maxLength: 30 });
  const envelope = fc.record({
    id: fc.stringMatching(/^[0-9a-z]{22}$/), topic: fc.stringMatching(/^[A-Za-z0-9._/-]{1,20}$/), receivedAtMs: fc.nat(), key: text,
    headers: fc.array(fc.record({ name: fc.stringMatching(/^[a-z0-9-]{1,12}$/), value: text }), { maxLength: 4 }),
    contentType: text, body: fc.uint8Array({ maxLength: 400 }), method: fc.constant('POST'), path: fc.constant('/x'), query: fc.constant(''),
  });
  const format = fc.oneof(
    fc.record({ stream: fc.constantFrom('s', 's:{topic}', '{topic}:{topic}:x'), maxLen: fc.option(fc.integer({ min: 1, max: 1e9 }), { nil: undefined }), push: fc.constant('right' as const), format: fc.constantFrom('raw' as const, 'envelope' as const) }),
    fc.record({ list: fc.constantFrom('l', 'q:{topic}'), push: fc.constantFrom('right' as const, 'left' as const), format: fc.constantFrom('raw' as const, 'envelope' as const) }),
  );
  fc.assert(fc.property(format, fc.array(envelope, { minLength: 1, maxLength: 20 }), (f, envs) => {
    const messages = envs.map((e) => {
      const payload = Buffer.from(encodeEnvelopeReference(e));
      return { envelope: decodeEnvelope(payload), payload, lane: 0, offset: 0 };
    });
    const batch: CommandBatch = { args: [], argc: [] };
    const write = commandWriter(f as MessageFormat);
    for (const m of messages) write(m, batch);
    return Buffer.compare(nativeMessageEncoder(f as MessageFormat)!(messages), encodeBatch(batch)) === 0;
  }), { numRuns: 300 });
  t.pass();
});

const message = (topic: string, body: string): OutboundMessage => ({
  envelope: {
    id: 'id-1', topic, receivedAtMs: 1, key: 'k-1', headers: [{ name: 'x-shop', value: 's1' }], contentType: 'application/json',
    body: Buffer.from(body), method: 'POST', path: '/x', query: '',
  } as OutboundMessage['envelope'],
  payload: Buffer.from('ENVELOPE'),
  lane: 0,
  offset: 0,
});

const cfg = (over: Partial<RedisSinkConfig>): RedisSinkConfig => ({ type: 'redis', url: 'redis://h', push: 'right', format: 'raw', driver: 'auto', maxBatch: 512, replyTimeoutMs: 1000, ...over });

function commands(c: RedisSinkConfig, m: OutboundMessage): string[][] {
  const b: CommandBatch = { args: [], argc: [] };
  commandWriter(c)(m, b);
  commandWriter(c)(m, b);
  let a = 0;
  return b.argc.map((n) => b.args.slice(a, (a += n)).map(String));
}

test('stream, list and envelope commands', (t) => {
  const m = message('shop/leads', '{"a":1}');
  t.deepEqual(commands(cfg({ stream: 's:{topic}', maxLen: 1000 }), m)[1], ['XADD', 's:shop/leads', 'MAXLEN', '~', '1000', '*', 'id', 'id-1', 'body', '{"a":1}', 'key', 'k-1', 'ct', 'application/json', 'x-shop', 's1']);
  t.deepEqual(commands(cfg({ stream: 'fixed' }), m)[0], ['XADD', 'fixed', '*', 'id', 'id-1', 'body', '{"a":1}', 'key', 'k-1', 'ct', 'application/json', 'x-shop', 's1']);
  t.deepEqual(commands(cfg({ stream: 'e', format: 'envelope' }), m)[0], ['XADD', 'e', '*', 'id', 'id-1', 'envelope', 'ENVELOPE']);
  t.deepEqual(commands(cfg({ list: 'q:{topic}' }), m)[0], ['RPUSH', 'q:shop/leads', '{"a":1}']);
  t.deepEqual(commands(cfg({ list: 'q', push: 'left', format: 'envelope' }), m)[0], ['LPUSH', 'q', 'ENVELOPE']);
});

test('replies become outcomes: WRONGTYPE and ERR are dead, the rest is retried', (t) => {
  t.like(outcomeOf('1795352688959-0'), { kind: 'delivered' });
  t.like(outcomeOf(3), { kind: 'delivered' });
  t.like(outcomeOf({ error: 'WRONGTYPE Operation against a key holding the wrong kind of value' }), { kind: 'dead', reason: 'redis: WRONGTYPE Operation against a key holding the wrong kind of value' });
  t.like(outcomeOf({ error: 'ERR string exceeds maximum allowed size' }), { kind: 'dead' });
  for (const e of ['OOM command not allowed when used memory > maxmemory', 'LOADING Redis is loading', 'READONLY You can\'t write against a read only replica.', 'NOPERM this user has no permissions', 'NOAUTH Authentication required.', 'BUSY Redis is busy']) {
    t.like(outcomeOf({ error: e }), { kind: 'retry' }, e);
  }
  t.like(outcomeOf({ error: 'ERR looks permanent but the connection went first', lost: true }), { kind: 'retry' });
});

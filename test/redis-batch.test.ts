// One bad message must not fail its Redis batch. The native writer (native/redis_writer.c)
// answered every message after one that did not decode with "ERR crowd: ...", a permanent
// error, so the valid messages behind it were dead-lettered; more than 256 kept headers was
// enough. Both writers (native and its JS twin) against a real redis-server: only the bad
// message fails, the others are stored, and a message with many headers is stored whole.
import test from 'ava';
import { encodeEnvelopeReference, type Envelope } from '../src/envelope/envelope-codec.js';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { outcomeOf, type MessageFormat } from '../src/sinks/redis/redis-commands.js';
import { isErrorReply, type RedisConnection, type RedisReply } from '../src/sinks/redis/redis-connection.js';
import { pickDriver } from '../src/sinks/redis/redis-sink.js';
import { StoredMessage } from '../src/sinks/stored-message.js';
import { startRedis } from './helpers/redis.js';

function envelope(id: string, headers: number): Buffer {
  const e: Envelope = {
    id, topic: 't', receivedAtMs: Date.now(), key: '', contentType: 'application/json', body: Buffer.from(`{"id":"${id}"}`),
    headers: Array.from({ length: headers }, (_, i) => ({ name: `x-h${i}`, value: `v${i}` })), method: 'POST', path: '/t', query: '',
  };
  return Buffer.from(encodeEnvelopeReference(e));
}

function connect(driver: 'native' | 'js', port: number, format: MessageFormat): Promise<RedisConnection> {
  const { factory } = pickDriver(driver);
  return new Promise((resolve, reject) => {
    const conn: RedisConnection = factory('127.0.0.1', port, { onConnect: () => resolve(conn), onClose: (r) => reject(new Error(r)) }, format);
  });
}

for (const driver of ['native', 'js'] as const) {
  for (const format of ['raw', 'envelope'] as const) {
    test.serial(`[${driver}, ${format}] a message that does not decode fails alone; the rest of its batch is stored`, async (t) => {
      const redis = await startRedis();
      const conn = await connect(driver, redis.port, { stream: 's:{topic}', format, push: 'right' });
      try {
        // Not protobuf: a tag of wire type 7 (neither decoder takes it).
        const bad = Buffer.from([0x0f]);
        const payloads = [envelope('a', 0), bad, envelope('b', 2), envelope('many', 300), envelope('c', 0), bad, envelope('d', 1)];
        const messages = payloads.map((p, i) => new StoredMessage(p, 0, i * 100));
        const replies = await new Promise<RedisReply[]>((resolve) => conn.writeMessages(messages, resolve));
        t.is(replies.length, payloads.length);
        const kinds = replies.map((r) => outcomeOf(r).kind);
        t.deepEqual(kinds, ['delivered', 'dead', 'delivered', 'delivered', 'delivered', 'dead', 'delivered'], JSON.stringify(replies));
        t.true(isErrorReply(replies[1]) && /decode/.test(replies[1].error), JSON.stringify(replies[1]));
        // A batch of only bad messages is answered too (no command goes out, no reply comes).
        const allBad = await new Promise<RedisReply[]>((resolve) => conn.writeMessages([bad, bad].map((p) => new StoredMessage(p, 0, 0)), resolve));
        t.deepEqual(allBad.map((r) => outcomeOf(r).kind), ['dead', 'dead']);
        // The connection still works in order after them.
        const after = await new Promise<RedisReply[]>((resolve) => conn.writeMessages([new StoredMessage(envelope('e', 0), 0, 0)], resolve));
        t.is(outcomeOf(after[0]).kind, 'delivered');
        const rows = (await redis.client().xrange('s:t', '-', '+')).slice(0, 5);
        const ids = rows.map(([, kv]) => kv[kv.indexOf('id') + 1]);
        t.deepEqual(ids, ['a', 'b', 'many', 'c', 'd']);
        const many = rows[2][1];
        if (format === 'raw') {
          // 300 kept headers are all there, as the JS twin writes them.
          t.is(many.length, 8 + 2 * 300);
          t.is(many[many.indexOf('x-h299') + 1], 'v299');
        } else {
          t.is(Buffer.from(many[many.indexOf('envelope') + 1], 'latin1').length > 0, true);
        }
      } finally {
        conn.destroy();
        await redis.stop();
      }
    });
  }
}

test('keepHeaders is bounded in the config (64 names)', (t) => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}`);
  t.notThrows(() => loadConfig({ env: {}, overrides: { routes: [{ path: '/a', keepHeaders: names(64) }] } }));
  const e = t.throws(() => loadConfig({ env: {}, overrides: { routes: [{ path: '/a', keepHeaders: names(257) }] } }), { instanceOf: ConfigError });
  t.regex(e!.message, /\/routes\/0\/keepHeaders must NOT have more than 64 items/);
});

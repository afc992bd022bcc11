/**
 * The micro-benchmark suites (tinybench) of crowd's hot functions, each against the
 * alternative it replaced, on identical inputs:
 *   - CRC32C: native addon vs JS twin, per 200 B record and sealFrames over a 64-record batch
 *   - envelope: hot-path writer vs the generic writer vs protobufjs encode
 *   - ring: push + read of 200 B records through a SharedArrayBuffer ring
 *   - JSON check: TextDecoder(fatal) + JSON.parse of a 150 B body
 *   - Redis writer (redisWriterBench, needs redis-server; not in the gate): the native hiredis
 *     writer vs its JS twin on identical 256-message XADD batches, encoding only and encoding +
 *     write + every reply from a real redis-server
 * Used by bench/micro/run.ts (one report) and bench/micro/gate.ts (repeated runs against
 * bench/baseline.json).
 */
import { Bench } from 'tinybench';
import { decodeEnvelope, encodeEnvelopeReference, EnvelopeType } from '../../src/envelope/envelope-codec.js';
import { envelopeSize, routeFields, stringFieldBytes, writeEnvelope, writeEnvelopeFast, envelopeSizeFast } from '../../src/envelope/envelope-writer.js';
import { FRAME_HEADER, FRAME_MAGIC, frameSize } from '../../src/log/frame-layout.js';
import { jsImpl, nativeImpl } from '../../src/native/crc32c.js';
import { createRingBuffer, SpscRing } from '../../src/ring/spsc-ring.js';
import { jsonCheckNative } from '../../src/native/json-check.js';
import { nativeMessageEncoder, nativeRedis } from '../../src/native/redis-native.js';
import { commandWriter, type MessageFormat } from '../../src/sinks/redis/redis-commands.js';
import type { CommandBatch, ConnectionFactory, RedisConnection, RedisReply } from '../../src/sinks/redis/redis-connection.js';
import { encodeBatch, RespConnection } from '../../src/sinks/redis/resp-connection.js';
import type { OutboundMessage } from '../../src/sinks/sink-types.js';
import { startRedis } from '../../test/helpers/redis.js';

const record = Buffer.alloc(200, 7);
const batch = Buffer.alloc(64 * frameSize(200));
for (let i = 0, pos = 0; i < 64; i++, pos += frameSize(200)) {
  batch.writeUInt32LE(FRAME_MAGIC, pos);
  batch.writeUInt32LE(200, pos + 8);
  record.copy(batch, pos + FRAME_HEADER);
}
const body = Buffer.from(JSON.stringify({ event: 'page_view', user: 'u-1234567890', url: 'https://example.com/p', pad: 'x'.repeat(60) }));
const fields = {
  id: '01m81bckre23thw2000001', topic: 'leads', receivedAtMs: 1795341830903, key: '', headers: [] as string[],
  contentType: 'application/json', body, method: 'POST', path: '/leads', query: '',
};
const rf = routeFields('leads', 'POST', '/leads');
const ct = stringFieldBytes(6, 'application/json');
const out = Buffer.alloc(4096);
const ring = new SpscRing(createRingBuffer(1 << 20));
let readPos = ring.consumerStart();
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function microBench(time = 500): Bench {
  const bench = new Bench({ time, warmupTime: Math.min(100, time / 2) });
  if (nativeImpl) bench.add('crc32c 200 B: native', () => nativeImpl!.crc32c(record));
  bench.add('crc32c 200 B: js twin', () => jsImpl.crc32c(record));
  if (nativeImpl) bench.add('sealFrames 64 x 200 B: native (1 call per batch)', () => nativeImpl!.sealFrames(batch, 0, batch.length));
  bench.add('sealFrames 64 x 200 B: js twin', () => jsImpl.sealFrames(batch, 0, batch.length));
  bench.add('envelope: hot-path writer', () => {
    envelopeSizeFast(fields.id, rf, fields.receivedAtMs, '', fields.headers, ct, body, '');
    writeEnvelopeFast(out, 0, fields.id, rf, fields.receivedAtMs, '', fields.headers, ct, body, '');
  });
  bench.add('envelope: generic writer', () => {
    envelopeSize(fields);
    writeEnvelope(out, 0, fields);
  });
  bench.add('envelope: protobufjs encode', () => EnvelopeType.encode(fields).finish());
  bench.add('ring: push + read 200 B', () => {
    if (ring.push(record) < 0) throw new Error('full');
    readPos = ring.read(readPos, 1 << 20, () => {});
    ring.release(readPos);
  });
  bench.add('json check: TextDecoder + JSON.parse 150 B', () => JSON.parse(utf8.decode(body)));
  if (jsonCheckNative) bench.add('json check: native 150 B (the acceptor\'s)', () => jsonCheckNative!(body));
  return bench;
}

export interface MicroRow {
  name: string;
  opsPerSec: number;
  meanNs: number;
  rmePct: number;
}

export function rows(bench: Bench): MicroRow[] {
  return bench.tasks.map((t) => {
    const r = t.result as unknown as { throughput?: { mean: number }; latency?: { mean: number; rme: number }; hz?: number; mean?: number; rme?: number };
    const meanNs = (r.latency?.mean ?? r.mean ?? 0) * 1e6;
    return { name: t.name, opsPerSec: Math.round(r.throughput?.mean ?? r.hz ?? 0), meanNs: Math.round(meanNs), rmePct: Number((r.latency?.rme ?? r.rme ?? 0).toFixed(2)) };
  });
}

const redisFormat: MessageFormat = { stream: 'bench:{topic}', maxLen: 10000, push: 'right', format: 'raw' };

/** 256 messages of 150 B with a key and a kept header, as the sink host hands them over. */
function messages(): OutboundMessage[] {
  return Array.from({ length: 256 }, (_, i) => {
    const payload = Buffer.from(encodeEnvelopeReference({
      id: `01m81bckre23thw2${String(i).padStart(6, '0')}`, topic: 'leads', receivedAtMs: 1795341830903, key: `shop-${i % 7}`,
      headers: [{ name: 'x-shop', value: `shop-${i % 7}` }], contentType: 'application/json', body, method: 'POST', path: '/leads', query: '',
    }));
    return { envelope: decodeEnvelope(payload), payload, lane: 0, offset: 0 };
  });
}

async function open(factory: ConnectionFactory, port: number): Promise<RedisConnection> {
  return new Promise((resolve, reject) => {
    const c = factory('127.0.0.1', port, { onConnect: () => resolve(c), onClose: (r) => reject(new Error(r)) }, redisFormat);
  });
}

/**
 * The Redis writer suite, on identical batches of 256 messages (XADD, raw format); starts (and
 * stop() stops) its own redis-server. "encode" is the work on the JS thread per batch (native:
 * pack the envelopes + one call that builds every command in C; JS: build the argument lists +
 * RESP-encode them); "write + replies" adds the socket write and waits for all 256 replies.
 */
export async function redisWriterBench(time = 500): Promise<{ bench: Bench; stop: () => Promise<void> }> {
  const bench = new Bench({ time, warmupTime: Math.min(100, time / 2) });
  const batch = messages();
  const nativeEncodeMessages = nativeMessageEncoder(redisFormat);
  const writeCommand = commandWriter(redisFormat);
  if (nativeEncodeMessages) bench.add('redis encode 256 x XADD: native (1 call per batch)', () => nativeEncodeMessages(batch));
  bench.add('redis encode 256 x XADD: js twin', () => {
    const b: CommandBatch = { args: [], argc: [] };
    for (const m of batch) writeCommand(m, b);
    return encodeBatch(b);
  });
  const redis = await startRedis();
  const conns: RedisConnection[] = [];
  const roundTrip = (c: RedisConnection) => () => new Promise<void>((resolve, reject) => c.writeMessages(batch, (r: RedisReply[]) => (r.length === 256 && typeof r[255] === 'string' ? resolve() : reject(new Error(JSON.stringify(r[255]))))));
  if (nativeRedis) {
    const c = await open(nativeRedis, redis.port);
    conns.push(c);
    bench.add('redis write + replies 256 x XADD (redis-server): native', roundTrip(c));
  }
  const j = await open((h, p, e, f) => new RespConnection(h, p, e, f), redis.port);
  conns.push(j);
  bench.add('redis write + replies 256 x XADD (redis-server): js twin', roundTrip(j));
  return {
    bench,
    stop: async () => {
      for (const c of conns) c.destroy();
      await redis.stop();
    },
  };
}

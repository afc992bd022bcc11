// The SPSC ring: wrap-around with a tiny ring (bytes in = bytes out), full-ring refusal,
// and a real producer thread against a consumer thread.
import test from 'ava';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { createRingBuffer, SpscRing, reached } from '../src/ring/spsc-ring.js';

function drain(ring: SpscRing, from: number): { pos: number; records: Buffer[] } {
  const records: Buffer[] = [];
  const pos = ring.read(from, Infinity, (idx, n) => records.push(Buffer.from(ring.data.subarray(idx, idx + n))));
  return { pos, records };
}

test('tiny ring: random records wrap around many times, bytes in = bytes out, in order', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 400 }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 7 }), (records, readEvery) => {
      const ring = new SpscRing(createRingBuffer(1024));
      const out: Buffer[] = [];
      let pos = ring.consumerStart();
      let i = 0;
      for (const r of records) {
        while (ring.push(r) < 0) {
          // Full: the consumer catches up (this is what a lane does).
          const d = drain(ring, pos);
          pos = d.pos;
          out.push(...d.records);
          ring.release(pos);
        }
        if (++i % readEvery === 0) {
          const d = drain(ring, pos);
          pos = d.pos;
          out.push(...d.records);
          ring.release(pos);
        }
      }
      const d = drain(ring, pos);
      out.push(...d.records);
      return out.length === records.length && out.every((b, k) => b.equals(Buffer.from(records[k])));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('a full ring refuses the record instead of overwriting unreleased bytes', (t) => {
  const ring = new SpscRing(createRingBuffer(1024));
  let pushed = 0;
  while (ring.push(new Uint8Array(100)) >= 0) pushed++;
  t.is(pushed, 9); // 104 bytes per record, 1024 capacity
  const d = drain(ring, ring.consumerStart());
  t.is(d.records.length, 9);
  t.is(ring.push(new Uint8Array(100)), -1, 'not released yet: still full');
  ring.release(d.pos);
  t.true(ring.push(new Uint8Array(100)) >= 0);
});

test('records larger than half the ring are refused', (t) => {
  const ring = new SpscRing(createRingBuffer(1024));
  t.is(ring.reserve(600), -1);
});

test('the watermark comparison survives u32 wrap-around', (t) => {
  t.true(reached(5, 0xfffffff0));
  t.false(reached(0xfffffff0, 5));
  t.true(reached(7, 7));
});

test('two threads: a producer thread streams 200k records through a 64 KiB ring, consumer sees all in order', async (t) => {
  const sab = createRingBuffer(65536);
  const N = 200_000;
  const producer = new Worker(new URL('./helpers/ring-producer.js', import.meta.url), { workerData: { sab, n: N } });
  // Listen for its exit now: it may finish before the consumer has read the last records.
  const exited = new Promise((r) => producer.once('exit', r));
  const ring = new SpscRing(sab);
  let pos = ring.consumerStart();
  let next = 0;
  let bad = 0;
  while (next < N) {
    pos = ring.read(pos, 1 << 20, (idx, n) => {
      const i = ring.dv.getUint32(idx, true);
      if (i !== next || n !== 4 + (next % 60)) bad++;
      for (let k = 4; k < n; k++) if (ring.data[idx + k] !== (next & 0xff)) bad++;
      next++;
    });
    ring.release(pos);
    if (next < N) await new Promise((r) => setImmediate(r));
  }
  await exited;
  t.is(next, N);
  t.is(bad, 0);
});

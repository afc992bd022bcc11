// A sink's incremental reader and its delivery bookkeeping.
import test from 'ava';
import fc from 'fast-check';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { LaneTail } from '../src/log/lane-tail.js';
import { DeliveryTracker } from '../src/sinks/delivery-tracker.js';
import { tempDir } from './helpers/crowd-process.js';

function append(log: LaneLog, records: Buffer[]): void {
  const buf = sealedFrames(records);
  log.write(buf, buf.length);
  log.sync();
}

test('tailing a live lane across segment rolls, in small reads, never past the limit', (t) => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 15 }), fc.integer({ min: 64, max: 5000 }), (batches, chunk) => {
      const dir = tempDir('crowd-tail-');
      const { log } = LaneLog.open(dir, 0, 8192);
      const tail = new LaneTail(dir, 0, 0);
      const written: Buffer[] = [];
      const read: Array<{ offset: number; next: number; payload: Buffer }> = [];
      let k = 0;
      for (const sizes of batches) {
        const recs = sizes.map((s) => Buffer.alloc(s, k++ % 250));
        append(log, recs);
        written.push(...recs);
        const limit = log.endOffset();
        for (let i = 0; i < 1000; i++) {
          const got = tail.read(limit, chunk);
          if (got.length === 0) break;
          for (const g of got) {
            if (g.offset >= limit || g.next > limit) return false;
            read.push({ ...g, payload: Buffer.from(g.payload) });
          }
        }
      }
      tail.close();
      log.close();
      const offsets: number[] = [];
      readLane(dir, 0, 0, (r) => offsets.push(r.offset));
      return read.length === written.length && read.every((r, i) => r.payload.equals(written[i]) && r.offset === offsets[i]) &&
        read.every((r, i) => i + 1 >= read.length || r.next <= read[i + 1].offset);
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('a tail started from a cursor in the middle resumes at the next record', (t) => {
  const dir = tempDir();
  const { log } = LaneLog.open(dir, 0, 1 << 20);
  append(log, [Buffer.from('a'), Buffer.from('bb'), Buffer.from('ccc')]);
  const first = new LaneTail(dir, 0, 0).read(Infinity);
  t.is(first.length, 3);
  const resumed = new LaneTail(dir, 0, first[0].next).read(Infinity);
  t.deepEqual(resumed.map((r) => r.payload.toString()), ['bb', 'ccc']);
  log.close();
});

test('delivery tracker: the committed offset only crosses contiguous confirmations', (t) => {
  const tr = new DeliveryTracker(16);
  const a = tr.add(16, 40, 1);
  const b = tr.add(40, 64, 2);
  const c = tr.add(64, 90, 3);
  t.false(tr.done(b));
  t.is(tr.committed(), 16);
  t.is(tr.oldestPendingReceivedAt(), 1);
  t.true(tr.done(a));
  t.is(tr.committed(), 64);
  t.is(tr.oldestPendingReceivedAt(), 3);
  t.true(tr.done(c));
  t.is(tr.committed(), 90);
  t.is(tr.inFlight(), 0);
  t.is(tr.oldestPendingReceivedAt(), null);
});

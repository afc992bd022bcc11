// Model-based test of the log: random append / write / sync / read / crash / reopen steps
// against a simple model (an array of records and how many are known synced). After a crash
// (the unsynced suffix is cut at a random byte, as a power cut would), every synced record must
// still be there, in order, and whatever survives beyond is a prefix of what was written.
import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { tempDir } from './helpers/crowd-process.js';

function frames(records: Buffer[]): { buf: Buffer; len: number } {
  const buf = sealedFrames(records);
  return { buf, len: buf.length };
}

function readAll(dataDir: string): Buffer[] {
  const out: Buffer[] = [];
  readLane(dataDir, 0, 0, (r) => out.push(Buffer.from(r.payload)));
  return out;
}

type Cmd =
  | { kind: 'write'; records: Buffer[] }
  | { kind: 'sync' }
  | { kind: 'read' }
  | { kind: 'crash'; cut: number }
  | { kind: 'reopen' };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 }).map((rs) => ({ kind: 'write' as const, records: rs.map((r) => Buffer.from(r)) })) },
  { weight: 3, arbitrary: fc.constant({ kind: 'sync' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'read' as const }) },
  { weight: 1, arbitrary: fc.nat(5000).map((cut) => ({ kind: 'crash' as const, cut })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

test('log against a model: synced records survive crashes, order kept, nothing invented', (t) => {
  fc.assert(
    fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), (cmds) => {
      const dataDir = tempDir('crowd-model-');
      try {
        let log = LaneLog.open(dataDir, 0, 4096).log; // tiny segments: rolls happen often
        let written: Buffer[] = []; // model: everything written, in order
        let synced = 0; // model: how many of them are known durable
        let unsyncedBytes = 0;
        for (const c of cmds) {
          if (c.kind === 'write') {
            const f = frames(c.records);
            log.write(f.buf, f.len);
            written.push(...c.records);
            unsyncedBytes += f.len;
          } else if (c.kind === 'sync') {
            log.sync();
            synced = written.length;
            unsyncedBytes = 0;
          } else if (c.kind === 'read') {
            const got = readAll(dataDir);
            if (got.length !== written.length || !got.every((g, i) => g.equals(written[i]))) return false;
          } else if (c.kind === 'crash') {
            // Power cut: the file keeps its synced bytes and some random part of the rest.
            // Only the active segment can hold unsynced bytes (a roll fsyncs first). What is
            // lost is either cut off, or (odd cut) back to the zeros the writer allocated ahead.
            const segs = listSegments(laneDir(dataDir, 0));
            const last = segs[segs.length - 1];
            const keep = Math.min(unsyncedBytes, c.cut);
            const writtenEnd = log.endOffset() - last.base;
            const lostFrom = writtenEnd - unsyncedBytes + keep;
            if (c.cut % 2 === 0) fs.truncateSync(last.file, lostFrom);
            else {
              const size = fs.statSync(last.file).size;
              const fd = fs.openSync(last.file, 'r+');
              fs.writeSync(fd, Buffer.alloc(size - lostFrom), 0, size - lostFrom, lostFrom);
              fs.closeSync(fd);
            }
            log = LaneLog.open(dataDir, 0, 4096).log;
            const got = readAll(dataDir);
            if (got.length < synced || got.length > written.length) return false;
            if (!got.every((g, i) => g.equals(written[i]))) return false;
            written = got;
            synced = got.length;
            unsyncedBytes = 0;
          } else {
            log.close();
            log = LaneLog.open(dataDir, 0, 4096).log;
            synced = written.length; // close() fsyncs
            unsyncedBytes = 0;
          }
        }
        log.close();
        const got = readAll(dataDir);
        return got.length === written.length && got.every((g, i) => g.equals(written[i]));
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }),
    { numRuns: 150 },
  );
  t.pass();
});

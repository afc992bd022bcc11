// Named crash-recovery cases of the log: each a way a real crash or a bad disk leaves it.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { FRAME_HEADER, SEGMENT_HEADER, SEGMENT_HEADER_V2, frameSize } from '../src/log/frame-layout.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, deadLetterDir, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { CursorStore } from '../src/log/cursors.js';
import { verifyLog } from '../src/tools/log-verify.js';
import { tempDir } from './helpers/crowd-process.js';

/** Writes n records in batches of 10 (a batch never spans segments) and fsyncs. */
function writeRecords(log: LaneLog, n: number, size = 50): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i += 10) out.push(...writeBatch(log, Math.min(10, n - i), size));
  log.sync();
  return out;
}

function writeBatch(log: LaneLog, n: number, size: number): Buffer[] {
  const recs = Array.from({ length: n }, (_, i) => Buffer.alloc(size, i % 251));
  const buf = sealedFrames(recs);
  log.write(buf, buf.length);
  return recs;
}

function records(dataDir: string) {
  const got: Buffer[] = [];
  const stats = readLane(dataDir, 0, 0, (r) => got.push(Buffer.from(r.payload)));
  return { got, stats };
}

test('torn tail: a half-written last frame is cut at start-up, earlier records kept, appends continue', (t) => {
  const dir = tempDir();
  const { log } = LaneLog.open(dir, 0, 1 << 20);
  writeRecords(log, 10);
  log.close();
  const seg = listSegments(laneDir(dir, 0))[0];
  fs.appendFileSync(seg.file, Buffer.from([0x43, 0x52, 0x57, 0x44, 1, 2, 3, 4, 200, 0, 0, 0, 9, 9, 9])); // frame header promising 200 bytes, 3 given
  const { log: log2, report } = LaneLog.open(dir, 0, 1 << 20);
  t.is(report.tornBytes, 15);
  t.is(report.tailSegmentRecords, 10);
  writeRecords(log2, 2);
  log2.close();
  const { got, stats } = records(dir);
  t.is(got.length, 12);
  t.is(stats.corruptRegions, 0);
  t.is(stats.tailBytes, 0);
});

/** A closed lane of 20 records of 50 bytes, with one bit flipped at `at` of its segment file. */
function twentyRecordsWithFlippedBit(at: number, mask: number): string {
  const dir = tempDir();
  const { log } = LaneLog.open(dir, 0, 1 << 20);
  writeRecords(log, 20);
  log.close();
  const seg = listSegments(laneDir(dir, 0))[0];
  const bytes = fs.readFileSync(seg.file);
  bytes[at] ^= mask;
  fs.writeFileSync(seg.file, bytes);
  return dir;
}

test('flipped bit in the middle: that record is skipped and counted, every later record recovered', (t) => {
  const dir = twentyRecordsWithFlippedBit(SEGMENT_HEADER_V2 + 7 * frameSize(50) + FRAME_HEADER + 10, 0x10); // inside record 7's payload
  const { log: log2, report } = LaneLog.open(dir, 0, 1 << 20);
  t.is(report.tornBytes, 0, 'good records follow, so this is not a tail to cut');
  t.is(report.corruptRegions, 1);
  log2.close();
  const { got, stats } = records(dir);
  t.is(got.length, 19);
  t.is(stats.corruptRegions, 1);
  t.is(stats.corruptBytes, frameSize(50));
  const v = verifyLog(dir, { repair: true });
  t.like(v, { records: 19, corruptRegions: 1, ok: false });
});

test('flipped bit in a length field: the reader resyncs on the next good frame', (t) => {
  const dir = twentyRecordsWithFlippedBit(SEGMENT_HEADER_V2 + 3 * frameSize(50) + 8 + 2, 0x01); // record 3's length += 65536
  LaneLog.open(dir, 0, 1 << 20).log.close();
  const { got, stats } = records(dir);
  t.is(got.length, 19);
  t.is(stats.corruptRegions, 1);
});

test('cursor ahead of data: pulled back to the end of the lane at start-up', (t) => {
  const dir = tempDir();
  const { log, report } = LaneLog.open(dir, 0, 1 << 20);
  writeRecords(log, 3);
  const end = log.endOffset();
  log.close();
  const cursors = new CursorStore(dir);
  cursors.commit('kafka-events', { '0': end + 5000 });
  cursors.commit('redis-cache', { '0': SEGMENT_HEADER });
  const moved = cursors.clampToEnds(new Map([[0, end]]));
  t.deepEqual(moved, [{ consumer: 'kafka-events', lane: 0, was: end + 5000, now: end }]);
  t.is(cursors.position('kafka-events', 0), end);
  t.is(cursors.position('redis-cache', 0), SEGMENT_HEADER);
  t.is(report.endOffset, SEGMENT_HEADER_V2, "an empty lane: one version 2 segment, its header only");
});

test('segment whose header never reached the disk is quarantined, the lane keeps going', (t) => {
  const dir = tempDir();
  const { log } = LaneLog.open(dir, 0, 4096);
  writeRecords(log, 200); // several segments
  log.close();
  const segs = listSegments(laneDir(dir, 0));
  t.true(segs.length > 1);
  const last = segs[segs.length - 1];
  fs.writeFileSync(last.file, Buffer.alloc(7)); // crash while creating it
  const { log: log2, report } = LaneLog.open(dir, 0, 4096);
  t.is(report.quarantined.length, 1);
  t.true(fs.existsSync(report.quarantined[0]));
  writeRecords(log2, 1);
  log2.close();
  const { got } = records(dir);
  t.true(got.length >= 1);
});

test('segments roll at the size limit and retention removes only what every consumer passed', (t) => {
  const dir = tempDir();
  const { log } = LaneLog.open(dir, 0, 4096);
  writeRecords(log, 300);
  const segs = listSegments(laneDir(dir, 0));
  t.true(segs.length >= 4);
  const before = log.totalBytes();
  t.is(log.removeBelow(segs[2].base), segs[0].size + segs[1].size);
  t.is(log.totalBytes(), before - segs[0].size - segs[1].size);
  t.is(log.removeBelow(log.endOffset()) > 0, true);
  t.is(listSegments(laneDir(dir, 0)).length, 1, 'the active segment is never removed');
  log.close();
  t.true(fs.existsSync(path.join(dir, 'log', 'lane-0')));
});

test('zeros allocated ahead of the last frame are not corruption: trimmed at start-up, not reported', (t) => {
  const dir = tempDir();
  const { log } = LaneLog.open(dir, 0, 1 << 22);
  writeRecords(log, 30);
  const seg = listSegments(laneDir(dir, 0))[0];
  t.true(fs.statSync(seg.file).size > log.endOffset(), 'the writer allocated ahead');
  const live = records(dir);
  t.is(live.got.length, 30);
  t.is(live.stats.tailBytes, 0);
  t.is(live.stats.corruptRegions, 0);
  const { log: log2, report } = LaneLog.open(dir, 0, 1 << 22); // as after a crash: never closed
  t.is(report.tornBytes, 0);
  t.is(report.tailSegmentRecords, 30);
  log2.close();
  t.is(fs.statSync(seg.file).size, log2.endOffset(), 'close trims what was allocated ahead');
});

test('log verify checks the dead-letter logs too: a flipped bit there is corruption', (t) => {
  const dir = tempDir();
  const { log } = LaneLog.openDir(deadLetterDir(dir, 'kafka-main'), -1, 1 << 20);
  writeRecords(log, 5);
  log.close();
  t.like(verifyLog(dir, { repair: true }), { lanes: 0, deadLetterLogs: 1, records: 5, corruptRegions: 0, ok: true });
  const seg = listSegments(deadLetterDir(dir, 'kafka-main'))[0];
  const bytes = fs.readFileSync(seg.file);
  bytes[SEGMENT_HEADER_V2 + 2 * frameSize(50) + FRAME_HEADER + 5] ^= 0x04; // inside record 2's payload
  fs.writeFileSync(seg.file, bytes);
  t.like(verifyLog(dir, { repair: true }), { deadLetterLogs: 1, records: 4, corruptRegions: 1, ok: false });
});

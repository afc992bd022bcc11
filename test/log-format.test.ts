// The segment format: version 2 headers with per-segment secrets, and version 1 segments (an
// older crowd's) still read by every reader, never appended to.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SEGMENT_HEADER_V1, SEGMENT_HEADER_V2, V1_FORMAT, segmentFileName } from '../src/log/frame-layout.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { LaneTail } from '../src/log/lane-tail.js';
import { newSegmentFormat, parseSegmentHeader, segmentHeader } from '../src/log/segment-header.js';
import { verifyLog } from '../src/tools/log-verify.js';
import { tempDir } from './helpers/crowd-process.js';

test('a version 2 header round-trips; any damaged byte of it is refused', (t) => {
  const f = newSegmentFormat();
  const h = segmentHeader(4096, f);
  t.is(h.length, SEGMENT_HEADER_V2);
  t.deepEqual(parseSegmentHeader(h, 4096), f);
  t.is(parseSegmentHeader(h, 0), null, 'another base');
  for (let i = 0; i < h.length; i++) {
    const d = Buffer.from(h);
    d[i] ^= 0x08;
    t.is(parseSegmentHeader(d, 4096), null, `byte ${i}`);
  }
  t.not(newSegmentFormat().crcSeed === f.crcSeed && newSegmentFormat().frameMagic === f.frameMagic, true);
});

test('version 1 segments of an older crowd are read by the dump, a sink and verify; appends go to a new version 2 segment', (t) => {
  const dir = tempDir('crowd-v1-');
  const ld = laneDir(dir, 0);
  fs.mkdirSync(ld, { recursive: true });
  // Two v1 segments, as the previous format wrote them: public magic, unkeyed CRC.
  const old: Buffer[] = [];
  let base = 0;
  for (let s = 0; s < 2; s++) {
    const recs = Array.from({ length: 5 }, (_, i) => Buffer.from(`v1 record ${s}.${i}`));
    old.push(...recs);
    const file = Buffer.concat([segmentHeader(base, V1_FORMAT), sealedFrames(recs)]);
    fs.writeFileSync(path.join(ld, segmentFileName(base)), file);
    base += file.length;
  }
  const { log, report } = LaneLog.open(dir, 0, 1 << 20);
  t.is(report.corruptRegions, 0);
  t.is(report.tornBytes, 0);
  t.is(log.endOffset(), base + SEGMENT_HEADER_V2, 'a new v2 segment starts where the v1 data ends');
  const fresh = [Buffer.from('v2 record')];
  const buf = sealedFrames(fresh);
  log.write(buf, buf.length);
  log.sync();
  const segs = listSegments(ld);
  t.is(segs.length, 3);
  t.is(fs.readFileSync(segs[1].file).length, base - segs[1].base, 'the v1 segment was not appended to');
  t.is(parseSegmentHeader(fs.readFileSync(segs[2].file), segs[2].base)?.version, 2);

  const dumped: string[] = [];
  const stats = readLane(dir, 0, 0, (r) => dumped.push(r.payload.toString()));
  t.deepEqual(dumped, [...old, ...fresh].map(String));
  t.is(stats.corruptRegions, 0);
  const tail = new LaneTail(dir, 0, SEGMENT_HEADER_V1);
  const read: string[] = [];
  for (let g = tail.read(log.endOffset(), 50); g.length > 0; g = tail.read(log.endOffset(), 50)) read.push(...g.map((r) => r.payload.toString()));
  tail.close();
  t.deepEqual(read, dumped);
  log.close();
  t.like(verifyLog(dir, { repair: false }), { records: 11, corruptRegions: 0, ok: true });
});

test('a sealed segment whose header is damaged: its frames are not trusted, counted, and readers go on after it', (t) => {
  const dir = tempDir('crowd-hdr-');
  const { log } = LaneLog.open(dir, 0, 4096);
  for (let i = 0; i < 120; i++) {
    const buf = sealedFrames([Buffer.alloc(60, i)]);
    log.write(buf, buf.length);
  }
  log.sync();
  const segs = listSegments(laneDir(dir, 0));
  t.true(segs.length >= 3);
  const bytes = fs.readFileSync(segs[0].file);
  bytes[20] ^= 1; // inside the crc seed
  fs.writeFileSync(segs[0].file, bytes);
  const dumped: number[] = [];
  const stats = readLane(dir, 0, 0, (r) => dumped.push(r.offset));
  t.is(stats.badHeaders, 1);
  t.true(dumped.length > 0 && dumped[0] >= segs[1].base);
  const tail = new LaneTail(dir, 0, 0);
  const read: number[] = [];
  for (let g = tail.read(log.endOffset()); g.length > 0; g = tail.read(log.endOffset())) read.push(...g.map((r) => r.offset));
  t.true(tail.corruptRegions >= 1);
  tail.close();
  t.deepEqual(read, dumped);
  log.close();
});

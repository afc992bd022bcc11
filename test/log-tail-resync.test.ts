// A sink's reader (LaneTail) and `crowd log dump` (readLane) must agree on every damaged log:
// one bad record, whatever is damaged in it (a length pointing past the segment's end, a
// flipped bit, a torn magic), never hides the records after it, in sealed segments and in the
// active one, whatever the read size.
import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import { FRAME_HEADER, frameSize } from '../src/log/frame-layout.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { LaneTail } from '../src/log/lane-tail.js';
import { httpConfig, startBackends, until } from './helpers/backend.js';
import { dumpIds, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

interface Written {
  dir: string;
  log: LaneLog;
  /** Frame positions in their segment files: [file, pos, payload length]. */
  frames: Array<{ file: string; pos: number; len: number }>;
}

function writeLane(sizes: number[], segmentBytes: number): Written {
  const dir = tempDir('crowd-resync-');
  const { log } = LaneLog.open(dir, 0, segmentBytes);
  for (let i = 0; i < sizes.length; i++) {
    const buf = sealedFrames([Buffer.alloc(sizes[i], (i % 250) + 1)]);
    log.write(buf, buf.length);
  }
  log.sync();
  const frames: Written['frames'] = [];
  for (const seg of listSegments(laneDir(dir, 0))) {
    const bytes = fs.readFileSync(seg.file);
    let pos = headerSizeOf(bytes);
    while (pos + FRAME_HEADER <= seg.size) {
      const len = bytes.readUInt32LE(pos + 8);
      if (len === 0 && bytes.readUInt32LE(pos) === 0) break; // zeros written ahead
      frames.push({ file: seg.file, pos, len });
      pos += frameSize(len);
    }
  }
  return { dir, log, frames };
}

/** Where a segment's first frame starts: after a version 1 (16 B) or version 2 (32 B) header. */
function headerSizeOf(segment: Buffer): number {
  return segment.subarray(0, 8).toString('latin1') === 'CRWDSEG1' ? 16 : 32;
}

function dumpOffsets(dir: string): number[] {
  const out: number[] = [];
  readLane(dir, 0, 0, (r) => out.push(r.offset));
  return out;
}

function tailOffsets(dir: string, limit: number, chunk: number): number[] {
  const tail = new LaneTail(dir, 0, 0);
  const out: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const got = tail.read(limit, chunk);
    if (got.length === 0) break;
    for (const g of got) {
      if (out.length > 0 && g.offset <= out[out.length - 1]) throw new Error('tail went backwards');
      out.push(g.offset);
    }
  }
  tail.close();
  return out;
}

type Damage = 'length-past-end' | 'length-huge' | 'bit-in-payload' | 'magic';

function damage(f: Written['frames'][number], how: Damage, segmentSize: number): void {
  const fd = fs.openSync(f.file, 'r+');
  try {
    const b = Buffer.alloc(4);
    if (how === 'length-past-end') b.writeUInt32LE(segmentSize - f.pos); // ends past the file
    else if (how === 'length-huge') b.writeUInt32LE(0xfffffff0);
    if (how === 'length-past-end' || how === 'length-huge') fs.writeSync(fd, b, 0, 4, f.pos + 8);
    else if (how === 'magic') fs.writeSync(fd, Buffer.from('XXXX'), 0, 4, f.pos);
    else {
      fs.readSync(fd, b, 0, 1, f.pos + FRAME_HEADER);
      b[0] ^= 0x20;
      fs.writeSync(fd, b, 0, 1, f.pos + FRAME_HEADER);
    }
  } finally {
    fs.closeSync(fd);
  }
}

test('reported case: a length past the end of a sealed segment hides nothing after it from a sink', (t) => {
  const w = writeLane(Array.from({ length: 400 }, () => 60), 8192);
  const segs = listSegments(laneDir(w.dir, 0));
  t.true(segs.length >= 3);
  const inFirst = w.frames.filter((f) => f.file === segs[0].file);
  damage(inFirst[5], 'length-past-end', segs[0].size);
  const dump = dumpOffsets(w.dir);
  t.is(dump.length, 399, 'the dump loses exactly the damaged record');
  for (const chunk of [256, 4096, 1 << 20]) t.deepEqual(tailOffsets(w.dir, w.log.endOffset(), chunk), dump, `read size ${chunk}`);
  w.log.close();
});

test('the active segment: a bad length does not stall a live sink until the segment rolls', (t) => {
  const w = writeLane(Array.from({ length: 50 }, () => 60), 1 << 20); // one open segment
  const segs = listSegments(laneDir(w.dir, 0));
  t.is(segs.length, 1);
  damage(w.frames[10], 'length-past-end', fs.statSync(segs[0].file).size);
  const dump = dumpOffsets(w.dir);
  t.is(dump.length, 49);
  // The lane is still open, zeros written ahead of its end: the sink reads up to its synced end.
  for (const chunk of [128, 4096, 1 << 20]) t.deepEqual(tailOffsets(w.dir, w.log.endOffset(), chunk), dump, `read size ${chunk}`);
  // And what is appended after the damage is read too.
  const more = sealedFrames([Buffer.from('after the damage')]);
  w.log.write(more, more.length);
  w.log.sync();
  const dump2 = dumpOffsets(w.dir);
  t.is(dump2.length, 50);
  t.deepEqual(tailOffsets(w.dir, w.log.endOffset(), 4096), dump2);
  w.log.close();
});

test('any one damaged record, any read size: the sink reads exactly what the dump reads', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 5, maxLength: 80 }),
      fc.nat(),
      fc.constantFrom<Damage>('length-past-end', 'length-huge', 'bit-in-payload', 'magic'),
      fc.integer({ min: 16, max: 6000 }),
      fc.boolean(),
      (sizes, which, how, chunk, closeFirst) => {
        const w = writeLane(sizes, 8192);
        if (closeFirst) w.log.close();
        const f = w.frames[which % w.frames.length];
        damage(f, how, fs.statSync(f.file).size);
        const dump = dumpOffsets(w.dir);
        const tail = tailOffsets(w.dir, closeFirst ? Infinity : w.log.endOffset(), chunk);
        if (!closeFirst) w.log.close();
        if (dump.length !== sizes.length - 1) return false;
        return JSON.stringify(tail) === JSON.stringify(dump);
      },
    ),
    { numRuns: 150 },
  );
  t.pass();
});

test('crowd: a real HTTP sink delivers every intact record after bad lengths in a sealed and in the active segment', async (t) => {
  const dataDir = tempDir();
  const lanes = { threads: { lanes: 1, acceptors: 1 }, log: { segmentBytes: 65536 } };
  const sent: string[] = [];
  const send = async (port: number, n: number) => {
    for (let i = 0; i < n; i++) {
      const r = await rawExchange(port, post('/leads', JSON.stringify({ n: sent.length, pad: 'p'.repeat(1000) })));
      t.is(r.status, 200);
      sent.push((JSON.parse(r.body) as { id: string }).id);
    }
  };
  // 1. Records stored while no sink is configured: several segments.
  const first = await startCrowd({ dataDir, config: { ...lanes, routes: [{ path: '/leads' }] } });
  try {
    await send(first.port, 300);
    first.kill('SIGTERM');
    t.is(await first.exited, 0);
  } finally {
    first.kill('SIGKILL');
    await first.exited;
  }
  // 2. A length pointing past the end in a sealed segment, and one in the last segment.
  const segs = listSegments(laneDir(dataDir, 0));
  t.true(segs.length >= 4);
  for (const seg of [segs[1], segs[segs.length - 1]]) {
    const bytes = fs.readFileSync(seg.file);
    const hdr = headerSizeOf(bytes);
    let pos = hdr;
    for (let k = 0; k < 3; k++) pos += frameSize(bytes.readUInt32LE(pos + 8));
    bytes.writeUInt32LE(bytes.length - pos, pos + 8); // the 4th frame now ends past the file
    fs.writeFileSync(seg.file, bytes);
  }
  const stored = await dumpIds(dataDir);
  t.is(stored.length, 298, 'the dump loses exactly the two damaged records');
  // 3. A sink from the start of the log, and more records after the damage in the active segment.
  const [b] = await startBackends(1);
  const crowd = await startCrowd({ dataDir, config: { ...lanes, ...httpConfig([b.url]) } });
  try {
    await send(crowd.port, 5);
    const want = [...stored, ...sent.slice(300)];
    const arrived = await until(() => want.every((id) => b.ids().has(id)), 60_000);
    const missing = want.filter((id) => !b.ids().has(id));
    t.true(arrived, `${missing.length} intact records never reached the sink`);
  } finally {
    crowd.kill('SIGKILL');
    await crowd.exited;
    await b.kill();
  }
});

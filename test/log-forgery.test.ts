// A client controls the bytes of its message bodies, so it can put a well-formed log frame in
// one. When the carrier record is later damaged, recovery, the dump and a sink's reader resync
// past it: they must never take the client's frame for a record (item 4 of Hardening II).
import test from 'ava';
import fs from 'node:fs';
import { encodeEnvelopeReference, decodeEnvelope } from '../src/envelope/envelope-codec.js';
import { FRAME_HEADER } from '../src/log/frame-layout.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { LaneTail } from '../src/log/lane-tail.js';
import { verifyLog } from '../src/tools/log-verify.js';
import { dumpIds, runCli, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

const FORGED_ID = 'forged-by-the-client-0001';

/** What a client can build: a record as the old format sealed it (public magic, unkeyed CRC). */
function forgedFrame(topic = 'protected'): Buffer {
  return sealedFrames([Buffer.from(encodeEnvelopeReference({
    id: FORGED_ID, topic, receivedAtMs: 1, key: '', headers: [], contentType: 'text/plain',
    body: Buffer.from('invented'), method: 'POST', path: '/protected', query: '',
  }))]);
}

/** The forged frame at each of the 4 alignments, so one of them is 4-byte aligned in the file. */
function attackBody(): Buffer {
  const f = forgedFrame();
  return Buffer.concat([0, 1, 2, 3].map((pad) => Buffer.concat([Buffer.alloc(pad + 4, 0x20), f])));
}

function idsOf(payloads: Buffer[]): string[] {
  return payloads.map((p) => {
    try {
      return decodeEnvelope(p).id;
    } catch {
      return '(not an envelope)';
    }
  });
}

type Damage = 'magic' | 'length' | 'crc' | 'payload';

function damageCarrier(file: string, pos: number, how: Damage): void {
  const bytes = fs.readFileSync(file);
  if (how === 'magic') bytes[pos] ^= 0xff;
  else if (how === 'length') bytes.writeUInt32LE(bytes.readUInt32LE(pos + 8) + 4096, pos + 8);
  else if (how === 'crc') bytes[pos + 4] ^= 0x01;
  else bytes[pos + FRAME_HEADER + 1] ^= 0x01;
  fs.writeFileSync(file, bytes);
}

for (const how of ['magic', 'length', 'crc', 'payload'] as Damage[]) {
  test(`a frame inside a body is never resynced onto as a record (carrier ${how} damaged)`, (t) => {
    const dir = tempDir('crowd-forge-');
    const { log } = LaneLog.open(dir, 0, 1 << 20);
    const before = Buffer.alloc(40, 0x61);
    const carrier = Buffer.from(encodeEnvelopeReference({
      id: 'genuine', topic: 'public', receivedAtMs: 2, key: '', headers: [], contentType: 'text/plain',
      body: attackBody(), method: 'POST', path: '/public', query: '',
    }));
    const after = Buffer.alloc(40, 0x62);
    for (const p of [before, carrier, after]) {
      const buf = sealedFrames([p]);
      log.write(buf, buf.length);
    }
    log.sync();
    log.close();
    const seg = listSegments(laneDir(dir, 0))[0];
    // The carrier is the second frame: find it through the reader, then damage it on disk.
    const offsets: number[] = [];
    readLane(dir, 0, 0, (r) => offsets.push(r.offset));
    t.is(offsets.length, 3);
    damageCarrier(seg.file, offsets[1] - seg.base, how);

    const dumped: Buffer[] = [];
    const stats = readLane(dir, 0, 0, (r) => dumped.push(Buffer.from(r.payload)));
    t.false(idsOf(dumped).includes(FORGED_ID), 'the dump invented the client\'s record');
    t.deepEqual(dumped.map((p) => p[0]), [0x61, 0x62], 'the records around the damage are kept');
    t.true(stats.corruptRegions >= 1);

    const tail = new LaneTail(dir, 0, 0);
    const read: Buffer[] = [];
    for (let g = tail.read(Infinity, 64); g.length > 0; g = tail.read(Infinity, 64)) read.push(...g.map((r) => Buffer.from(r.payload)));
    tail.close();
    t.false(idsOf(read).includes(FORGED_ID), 'a sink would have delivered the client\'s record');
    t.is(read.length, 2);

    t.false(verifyLog(dir, { repair: false }).ok);
    // Recovery at the next open resyncs the same way: nothing invented there either.
    const { log: again } = LaneLog.open(dir, 0, 1 << 20);
    again.close();
    const reopened: Buffer[] = [];
    readLane(dir, 0, 0, (r) => reopened.push(Buffer.from(r.payload)));
    t.false(idsOf(reopened).includes(FORGED_ID));
  });
}

test('a crash that tore the carrier after the forged frame: recovery cuts the tail, it does not keep an invented record', (t) => {
  const dir = tempDir('crowd-forge-');
  const { log } = LaneLog.open(dir, 0, 1 << 20);
  const before = Buffer.alloc(40, 0x61);
  const carrier = Buffer.from(encodeEnvelopeReference({
    id: 'genuine', topic: 'public', receivedAtMs: 2, key: '', headers: [], contentType: 'text/plain',
    body: attackBody(), method: 'POST', path: '/public', query: '',
  }));
  for (const p of [before, carrier]) {
    const buf = sealedFrames([p]);
    log.write(buf, buf.length);
  }
  log.sync();
  log.close();
  const seg = listSegments(laneDir(dir, 0))[0];
  const bytes = fs.readFileSync(seg.file);
  // Cut just after the last copy of the forged frame: all four alignments are on disk, the
  // carrier is not whole.
  const f = forgedFrame();
  const cut = bytes.lastIndexOf(f.subarray(FRAME_HEADER)) + f.length - FRAME_HEADER + 4;
  t.true(cut < bytes.length);
  fs.writeFileSync(seg.file, bytes.subarray(0, cut));
  const { log: again, report } = LaneLog.open(dir, 0, 1 << 20);
  again.close();
  t.true(report.tornBytes > 0, 'the torn carrier is a torn tail');
  const got: Buffer[] = [];
  readLane(dir, 0, 0, (r) => got.push(Buffer.from(r.payload)));
  t.false(idsOf(got).includes(FORGED_ID), 'recovery kept a record the client invented');
  t.deepEqual(got.map((p) => p[0]), [0x61]);
});

test('crowd: a body carrying a log frame, its carrier damaged on disk: the dump never shows the forged id', async (t) => {
  const dataDir = tempDir();
  const crowd = await startCrowd({ dataDir, config: { threads: { lanes: 1, acceptors: 1 } } });
  try {
    const body = attackBody();
    const head = `POST /public HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r1 = await rawExchange(crowd.port, post('/public', 'before', { 'Content-Type': 'text/plain' }));
    const r2 = await rawExchange(crowd.port, Buffer.concat([Buffer.from(head, 'latin1'), body]));
    const r3 = await rawExchange(crowd.port, post('/public', 'after', { 'Content-Type': 'text/plain' }));
    t.deepEqual([r1.status, r2.status, r3.status], [200, 200, 200]);
    crowd.kill('SIGTERM');
    t.is(await crowd.exited, 0);
  } finally {
    crowd.kill('SIGKILL');
    await crowd.exited;
  }
  const seg = listSegments(laneDir(dataDir, 0)).pop()!;
  const offsets: number[] = [];
  readLane(dataDir, 0, 0, (r) => offsets.push(r.offset));
  t.is(offsets.length, 3);
  damageCarrier(seg.file, offsets[1] - seg.base, 'magic');
  const ids = await dumpIds(dataDir);
  t.false(ids.includes(FORGED_ID), 'crowd log dump shows a record the client invented');
  t.is(ids.length, 2);
  const v = await runCli(['log', 'verify', '--data-dir', dataDir, '--no-repair']);
  t.is(v.code, 1, v.stdout);
});

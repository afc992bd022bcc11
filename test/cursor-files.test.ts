// Cursor files decide what retention deletes: a damaged or hostile one must never delete a
// record nobody has delivered, every error names the file, and crowd never dies of one.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CursorFileError, CursorStore } from '../src/log/cursors.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { retentionPass } from '../src/log/retention.js';
import { until } from './helpers/backend.js';
import { dumpIds, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

/** A lane of several segments, every record synced; returns it open. */
function laneWithSegments(): { dir: string; log: LaneLog; records: number } {
  const dir = tempDir('crowd-cursor-');
  const { log } = LaneLog.open(dir, 0, 4096);
  let records = 0;
  for (let i = 0; i < 40; i++) {
    const buf = sealedFrames(Array.from({ length: 5 }, () => Buffer.alloc(100, i)));
    log.write(buf, buf.length);
    records += 5;
  }
  log.sync();
  return { dir, log, records };
}

function countRecords(dir: string): number {
  let n = 0;
  readLane(dir, 0, 0, () => n++);
  return n;
}

/** Malformed, hostile or truncated cursor files: the class, not only the two reported examples. */
const BAD: Array<[string, string]> = [
  ['position not a number', '{"lanes":{"0":"abc"}}'],
  ['lanes not an object', '{"lanes":"zz"}'],
  ['lanes an array', '{"lanes":[99999999]}'],
  ['negative position', '{"lanes":{"0":-1}}'],
  ['fractional position', '{"lanes":{"0":1234.5}}'],
  ['unsafe integer', '{"lanes":{"0":1e300}}'],
  ['null position', '{"lanes":{"0":null}}'],
  ['boolean position', '{"lanes":{"0":true}}'],
  ['lane key not a number', '{"lanes":{"x":5}}'],
  ['no lanes', '{}'],
  ['document null', 'null'],
  ['document a string', '"99999999"'],
  ['truncated', '{"lanes":{"0":12'],
  ['empty file', ''],
  ['not JSON', 'lanes=0:99999999'],
];

for (const [name, text] of BAD) {
  test(`cursor file ${name}: loading it fails naming the file; retention deletes nothing`, (t) => {
    const { dir, log, records } = laneWithSegments();
    const segsBefore = listSegments(laneDir(dir, 0)).length;
    t.true(segsBefore > 3);
    const cursors = new CursorStore(dir);
    // A healthy consumer that has read everything, and one whose file is damaged (also one of
    // a sink no longer configured: every file counts).
    cursors.commit('healthy', { '0': log.endOffset() });
    const bad = cursors.file('gone');
    fs.writeFileSync(bad, text);
    const e = t.throws(() => cursors.load('gone'), { instanceOf: CursorFileError });
    t.true(e!.message.includes(bad), e!.message);
    t.throws(() => cursors.minPosition(0), { instanceOf: CursorFileError });
    const r = retentionPass(log, cursors);
    t.is(r.freed, 0);
    t.truthy(r.error);
    t.true(r.error!.message.includes(bad), r.error!.message);
    t.is(listSegments(laneDir(dir, 0)).length, segsBefore);
    t.is(countRecords(dir), records);
    log.close();
  });
}

test('removeBelow refuses an offset that is not a sane position of the log, deleting nothing', (t) => {
  const { dir, log, records } = laneWithSegments();
  const segsBefore = listSegments(laneDir(dir, 0)).length;
  for (const off of [Number.NaN, -1, 0.5, Infinity, Number.MAX_SAFE_INTEGER + 2, log.endOffset() + 1, '12' as unknown as number]) {
    t.throws(() => log.removeBelow(off), { instanceOf: RangeError }, String(off));
  }
  t.is(listSegments(laneDir(dir, 0)).length, segsBefore);
  t.is(countRecords(dir), records);
  // A sane offset still frees what is below it, and never the active segment.
  t.true(log.removeBelow(log.endOffset()) > 0);
  t.is(listSegments(laneDir(dir, 0)).length, 1);
  log.close();
});

test('a good cursor file round-trips; commit replaces it atomically and leaves no temp file', (t) => {
  const dir = tempDir('crowd-cursor-');
  const cursors = new CursorStore(dir);
  cursors.commit('s', { '0': 16, '3': 123456 });
  t.deepEqual(cursors.load('s'), { '0': 16, '3': 123456 });
  t.deepEqual(cursors.load('absent'), {});
  t.deepEqual(fs.readdirSync(cursors.dir), ['s.json']);
  t.throws(() => cursors.commit('s', { '0': -4 }), { instanceOf: CursorFileError });
  t.deepEqual(cursors.load('s'), { '0': 16, '3': 123456 });
});

test('crowd: a truncated cursor file at start exits 70 naming the file', async (t) => {
  const dataDir = tempDir();
  fs.mkdirSync(path.join(dataDir, 'cursors'));
  const file = path.join(dataDir, 'cursors', 'old-sink.json');
  fs.writeFileSync(file, '{"lanes":{"0":12');
  const err = await t.throwsAsync(startCrowd({ dataDir }));
  t.regex(err!.message, /crowd exited \(70\)/);
  t.true(err!.message.includes(file), err!.message);
});

test('crowd: cursor files damaged while running delete nothing and never kill the lane', async (t) => {
  const dataDir = tempDir();
  const crowd = await startCrowd({ dataDir, config: { threads: { lanes: 1, acceptors: 1 }, log: { segmentBytes: 65536 } } });
  try {
    const acked: string[] = [];
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = await rawExchange(crowd.port, post('/c', 'x'.repeat(2000), { 'Content-Type': 'text/plain' }));
        t.is(r.status, 200);
        acked.push((JSON.parse(r.body) as { id: string }).id);
      }
    };
    await send(150); // about 5 segments
    const cursors = path.join(dataDir, 'cursors');
    // A healthy consumer at the very end (would allow deleting everything) and a damaged one.
    fs.writeFileSync(path.join(cursors, 'healthy.json'), JSON.stringify({ lanes: { '0': Number.MAX_SAFE_INTEGER - 1 } }));
    const bad = path.join(cursors, 'gone.json');
    for (const text of ['{"lanes":{"0":"abc"}}', '{"lanes":"zz"}', '{"lanes":{"0":12']) {
      const before = crowd.output().split(bad).length;
      fs.writeFileSync(bad, text);
      t.true(await until(() => crowd.output().split(bad).length > before, 15_000), `the lane names ${bad} in a log line`);
      await send(10);
    }
    t.true(crowd.output().includes('"event":"retention_failed"'));
    t.false(crowd.output().includes('"event":"lane_died"'));
    crowd.kill('SIGTERM');
    t.is(await crowd.exited, 0);
    const stored = new Set(await dumpIds(dataDir));
    t.deepEqual(acked.filter((id) => !stored.has(id)), []);
  } finally {
    crowd.kill('SIGKILL');
    await crowd.exited;
  }
});

test('a retention pass that cannot read the directory (EMFILE) deletes nothing and does not throw', (t) => {
  if (process.getuid?.() !== 0) return t.pass('needs root for prlimit; skipped');
  const { dir, log, records } = laneWithSegments();
  const cursors = new CursorStore(dir);
  cursors.commit('healthy', { '0': log.endOffset() });
  const segsBefore = listSegments(laneDir(dir, 0)).length;
  const limits = execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD']).toString().trim().split(/\s+/);
  const open = fs.readdirSync('/proc/self/fd').length;
  const held: number[] = [];
  let r: ReturnType<typeof retentionPass>;
  execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${open + 64}:${limits[1]}`]);
  try {
    try {
      for (;;) held.push(fs.openSync('/dev/null', 'r'));
    } catch (e) {
      t.is((e as NodeJS.ErrnoException).code, 'EMFILE');
    }
    r = retentionPass(log, cursors);
  } finally {
    for (const fd of held) fs.closeSync(fd);
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limits[0]}:${limits[1]}`]);
  }
  t.is(r.freed, 0);
  t.is((r.error as NodeJS.ErrnoException | null)?.code, 'EMFILE');
  t.is(listSegments(laneDir(dir, 0)).length, segsBefore);
  t.is(countRecords(dir), records);
  // Once fds are back, the next pass does its work.
  t.true(retentionPass(log, cursors).freed > 0);
  log.close();
});

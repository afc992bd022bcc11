// `crowd log verify` must fail a log that lost records without a flipped bit: segments removed
// or truncated, a first segment that begins after what a consumer still needs, a cursor past
// the end of its lane. And it must still pass a healthy log that retention trimmed.
import test from 'ava';
import fs from 'node:fs';
import { CursorStore } from '../src/log/cursors.js';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, deadLetterDir, laneDir, listSegments } from '../src/log/lane-log.js';
import { verifyLog } from '../src/tools/log-verify.js';
import { runCli, tempDir } from './helpers/crowd-process.js';

/** A closed lane of many segments (records of 100 B in 4 KiB segments). */
function lane(records = 300, lanes = [0]): string {
  const dir = tempDir('crowd-verify-');
  for (const l of lanes) {
    const { log } = LaneLog.open(dir, l, 4096);
    for (let i = 0; i < records; i++) {
      const buf = sealedFrames([Buffer.alloc(100, i % 250)]);
      log.write(buf, buf.length);
    }
    log.sync();
    log.close();
  }
  return dir;
}

const segs = (dir: string, l = 0) => listSegments(laneDir(dir, l));

test('a healthy log passes, also after retention removed what every consumer passed', (t) => {
  const dir = lane();
  t.like(verifyLog(dir, { repair: false }), { ok: true, gaps: 0, cursorProblems: 0, records: 300 });
  const s = segs(dir);
  const cursors = new CursorStore(dir);
  cursors.commit('kafka', { '0': s[3].base + 40 });
  cursors.commit('http', { '0': s[5].base });
  const { log } = LaneLog.open(dir, 0, 4096);
  t.true(log.removeBelow(s[3].base + 40) > 0);
  log.close();
  t.is(segs(dir)[0].base, s[3].base);
  t.like(verifyLog(dir, { repair: false }), { ok: true, gaps: 0, cursorProblems: 0 });
});

test('a segment missing in the middle fails verify', (t) => {
  const dir = lane();
  const s = segs(dir);
  fs.rmSync(s[2].file);
  const r = verifyLog(dir, { repair: false });
  t.false(r.ok);
  t.is(r.gaps, 1);
  t.is(r.missingBytes, s[2].size);
  t.true(r.problems.some((p) => p.includes(String(s[2].base))), r.problems.join('\n'));
});

test('a sealed segment truncated at a frame boundary fails verify', (t) => {
  const dir = lane();
  const s = segs(dir);
  const bytes = fs.readFileSync(s[1].file);
  fs.writeFileSync(s[1].file, bytes.subarray(0, bytes.length - 2 * 112)); // two whole frames
  const r = verifyLog(dir, { repair: false });
  t.false(r.ok);
  t.is(r.gaps, 1);
  t.is(r.missingBytes, 224);
});

test('first segments missing with no consumer to allow it fails verify; a dead-letter log too', (t) => {
  const dir = lane();
  fs.rmSync(segs(dir)[0].file);
  t.like(verifyLog(dir, { repair: false }), { ok: false, gaps: 1 });

  const dlq = tempDir('crowd-verify-');
  const { log } = LaneLog.openDir(deadLetterDir(dlq, 'http'), -1, 4096);
  for (let i = 0; i < 100; i++) {
    const buf = sealedFrames([Buffer.alloc(100, 1)]);
    log.write(buf, buf.length);
  }
  log.close();
  const ds = listSegments(deadLetterDir(dlq, 'http'));
  t.like(verifyLog(dlq, { repair: false }), { ok: true });
  fs.rmSync(ds[0].file);
  t.like(verifyLog(dlq, { repair: false }), { ok: false, gaps: 1 });
});

test('first segments missing below a consumer\'s cursor fails verify', (t) => {
  const dir = lane();
  const s = segs(dir);
  new CursorStore(dir).commit('kafka', { '0': s[1].base + 40 }); // still needs most of segment 1
  fs.rmSync(s[0].file);
  fs.rmSync(s[1].file);
  const r = verifyLog(dir, { repair: false });
  t.false(r.ok);
  t.is(r.cursorProblems, 1);
  t.true(r.problems.some((p) => p.includes('kafka')), r.problems.join('\n'));
});

test('a cursor past the end of its lane (the lane lost its tail) fails verify, and so does a lane that is gone', (t) => {
  const dir = lane(300, [0, 1]);
  const s = segs(dir);
  new CursorStore(dir).commit('kafka', { '0': s[s.length - 1].base + s[s.length - 1].size, '1': 200 });
  t.like(verifyLog(dir, { repair: false }), { ok: true });
  fs.rmSync(s[s.length - 1].file); // the whole last segment
  const r = verifyLog(dir, { repair: false });
  t.false(r.ok);
  t.is(r.cursorProblems, 1);
  fs.rmSync(laneDir(dir, 1), { recursive: true });
  t.is(verifyLog(dir, { repair: false }).cursorProblems, 2);
});

test('a damaged cursor file fails verify, naming the file', (t) => {
  const dir = lane(50);
  const cursors = new CursorStore(dir);
  fs.writeFileSync(cursors.file('broken'), '{"lanes":{"0":"abc"}}');
  const r = verifyLog(dir, { repair: false });
  t.false(r.ok);
  t.true(r.problems.some((p) => p.includes(cursors.file('broken'))), r.problems.join('\n'));
});

test('crowd log verify exits 1 on a segment gap and prints the problem', async (t) => {
  const dir = lane();
  fs.rmSync(segs(dir)[3].file);
  const r = await runCli(['log', 'verify', '--data-dir', dir, '--no-repair']);
  t.is(r.code, 1);
  const report = JSON.parse(r.stdout) as { ok: boolean; gaps: number };
  t.like(report, { ok: false, gaps: 1 });
});

test('the last segment removed or truncated after crowd closed the log fails verify; more writes after a reopen pass', (t) => {
  for (const how of ['remove', 'truncate', 'truncate-all-frames'] as const) {
    const dir = lane();
    t.like(verifyLog(dir, { repair: false }), { ok: true });
    const s = segs(dir);
    const last = s[s.length - 1];
    if (how === 'remove') fs.rmSync(last.file);
    else {
      const bytes = fs.readFileSync(last.file);
      fs.writeFileSync(last.file, bytes.subarray(0, how === 'truncate' ? bytes.length - 112 : 32)); // a whole frame / every frame
    }
    const r = verifyLog(dir, { repair: false });
    t.false(r.ok, how);
    t.is(r.gaps, 1, how);
  }
  const dir = lane();
  const { log } = LaneLog.open(dir, 0, 4096);
  const buf = sealedFrames([Buffer.alloc(100, 1)]);
  log.write(buf, buf.length);
  log.close();
  t.like(verifyLog(dir, { repair: false }), { ok: true, gaps: 0 });
});

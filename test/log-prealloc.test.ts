// Pre-allocation is an optimisation: when the disk has less room than the 4 MiB step, the log
// appends without it rather than refusing a message that fits (item 20 of Hardening II).
// Needs root (mount a small tmpfs); skipped, and said so, without.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sealedFrames } from '../src/log/frames.js';
import { LaneLog, laneDir, listSegments } from '../src/log/lane-log.js';
import { readLane } from '../src/log/log-reader.js';
import { verifyLog } from '../src/tools/log-verify.js';
import { dumpIds, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? test.serial : test.serial.skip;

function withTmpfs(size: string, fn: (dir: string) => Promise<void> | void): Promise<void> {
  const mnt = tempDir('crowd-prealloc-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
  return (async () => {
    try {
      await fn(mnt);
    } finally {
      // Lazy: a failed test may still hold a file open there; the mount goes when it closes.
      execFileSync('umount', ['-l', mnt]);
    }
  })();
}

maybe('a disk with 3 MiB free takes small records; when it is really full the write fails, and nothing is left half-done', async (t) => {
  await withTmpfs('3m', (mnt) => {
    const { log } = LaneLog.open(mnt, 0, 64 << 20);
    const small = sealedFrames([Buffer.from('four')]);
    log.write(small, small.length); // pre-allocating 4 MiB fails here: must fall back
    log.sync();
    let written = 1;
    let full: NodeJS.ErrnoException | null = null;
    while (written < 10_000 && !full) {
      const buf = sealedFrames([Buffer.alloc(1000, written % 250)]);
      try {
        log.write(buf, buf.length);
        log.sync();
        written++;
      } catch (e) {
        full = e as NodeJS.ErrnoException;
        log.repair();
      }
    }
    t.truthy(full, 'the disk fills up');
    t.is(full!.code, 'ENOSPC');
    t.true(written > 2000, `about 3 MiB of records written (${written})`);
    log.close();
    let read = 0;
    const stats = readLane(mnt, 0, 0, () => read++);
    t.is(read, written, 'every synced record reads back');
    t.is(stats.corruptRegions, 0);
    t.is(stats.tailBytes, 0);
    const seg = listSegments(laneDir(mnt, 0))[0];
    t.is(fs.statSync(seg.file).size, log.endOffset(), 'no zeros left past the last frame');
    t.like(verifyLog(mnt, { repair: false }), { ok: true, gaps: 0 });
  });
});

maybe('crowd on a disk with 3 MiB free answers 200 to a 4-byte message', async (t) => {
  await withTmpfs('3m', async (mnt) => {
    const dataDir = path.join(mnt, 'data');
    fs.mkdirSync(dataDir);
    const crowd = await startCrowd({ dataDir, config: { threads: { lanes: 1, acceptors: 1 } } });
    try {
      const acked: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await rawExchange(crowd.port, post('/small', 'four', { 'Content-Type': 'text/plain' }));
        t.is(r.status, 200, r.body);
        if (r.status === 200) acked.push((JSON.parse(r.body) as { id: string }).id);
      }
      crowd.kill('SIGTERM');
      t.is(await crowd.exited, 0);
      const stored = new Set(await dumpIds(dataDir));
      t.deepEqual(acked.filter((id) => !stored.has(id)), []);
    } finally {
      crowd.kill('SIGKILL');
      await crowd.exited;
    }
  });
});

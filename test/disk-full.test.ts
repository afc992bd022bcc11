// Disk full: crowd's data dir on a 2 MiB tmpfs. Once it is full, crowd answers 503 + Retry-After
// (never a 2xx it did not store, never a crash); every 200 is in the log; when space returns,
// crowd takes messages again by itself. Needs root (mount); skipped, and said so, without.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { recordFigures } from './helpers/figures.js';
import { dumpIds, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange, rawRequest } from './helpers/raw-http.js';

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? test.serial : test.serial.skip;

maybe('disk full: 503 + Retry-After, nothing acknowledged is lost, recovers when space returns', async (t) => {
  const mnt = tempDir('crowd-diskfull-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  const dataDir = path.join(mnt, 'data');
  fs.mkdirSync(dataDir);
  const crowd = await startCrowd({ dataDir, config: { log: { segmentBytes: 262144 }, routes: [{ path: '/big', maxBodyBytes: 65536 }] } });
  try {
    const body = 'y'.repeat(20000);
    const acked: string[] = [];
    let refused: Awaited<ReturnType<typeof rawRequest>> | null = null;
    for (let i = 0; i < 200 && !refused; i++) {
      const r = await rawExchange(crowd.port, post('/big', body, { 'Content-Type': 'text/plain' }));
      if (r.status === 200) acked.push((JSON.parse(r.body) as { id: string }).id);
      else refused = r;
    }
    t.truthy(refused, 'the disk must fill up');
    t.is(refused!.status, 503);
    t.is((JSON.parse(refused!.body) as { code: string }).code, 'CROWD_LOG_UNAVAILABLE');
    t.is(refused!.headers['retry-after'], '1');
    const again = await rawRequest(crowd.port, post('/big', body, { 'Content-Type': 'text/plain' }));
    t.is(again.status, 503, 'still full: still refused, not acknowledged');
    const ready = await rawRequest(crowd.adminPort, 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    t.is(ready.status, 503);

    // Space returns: crowd retries its write by itself and takes messages again.
    execFileSync('mount', ['-o', 'remount,size=16m', mnt]);
    let back = false;
    for (let i = 0; i < 60 && !back; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const r = await rawExchange(crowd.port, post('/big', 'after', { 'Content-Type': 'text/plain' }));
      if (r.status === 200) {
        back = true;
        acked.push((JSON.parse(r.body) as { id: string }).id);
      }
    }
    t.true(back, 'crowd accepts again once there is space');
    crowd.kill('SIGTERM');
    t.is(await crowd.exited, 0);
    const stored = new Set(await dumpIds(dataDir));
    const missing = acked.filter((id) => !stored.has(id));
    recordFigures(t, 'disk full (tmpfs of a fixed size)', { acknowledged: acked.length, stored: stored.size, missing: missing.length });
    t.deepEqual(missing, []);
  } finally {
    crowd.kill('SIGKILL');
    await crowd.exited;
    execFileSync('umount', [mnt]);
  }
});

// The sink host on a full disk: cursor commits (a timer) and dead-letter writes fail with
// ENOSPC. crowd must not die: the sink reports the disk error as its health in /stats, ingest
// answers 503 while the log cannot be written, and when space returns everything recovers by
// itself: cursors committed, dead letters written, ingest 200, nothing acknowledged lost.
// The data dir is a 2 MiB tmpfs (root only; skipped, and said so, without).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Backend, httpConfig, until } from './helpers/backend.js';
import { startCrowd, tempDir } from './helpers/crowd-process.js';
import { readDeadLetters } from './helpers/dead-letters.js';
import { post, rawExchange, rawRequest } from './helpers/raw-http.js';

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? test.serial : test.serial.skip;

interface SinkStat { healthy: boolean; health: string; delivered: number; failed: number; backlogBytes: number }

async function sinkStats(adminPort: number): Promise<SinkStat> {
  const r = await rawRequest(adminPort, 'GET /stats HTTP/1.1\r\nHost: x\r\n\r\n');
  return (JSON.parse(r.body) as { sinks: Record<string, SinkStat> }).sinks.api;
}

// With dead letters (their writes fail: the cursor must not stay stuck) and without (only the
// cursor commits fail: a timer that threw ENOSPC ended the process).
for (const withDeadLetters of [true, false]) maybe(`http sink on a full disk${withDeadLetters ? ', with dead letters' : ''}: no crash, sink health shows the disk error, 503, then recovery by itself`, async (t) => {
  const mnt = tempDir('crowd-sinkdisk-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  const dataDir = path.join(mnt, 'data');
  fs.mkdirSync(dataDir);
  const backend = await new Backend('b0').start(0);
  // Hold every delivery (503, retried) until the disk is full; then 200, or 400 (dead letter)
  // for bodies that ask for it.
  let hold = true;
  backend.behave = (r) => (hold ? { status: 503 } : r.body.includes('reject') ? { status: 400, body: 'no' } : { status: 200 });
  const crowd = await startCrowd({
    dataDir,
    config: {
      ...httpConfig([backend.url], { backoff: { initial: '20ms', max: '100ms' } }, { ejectAfter: 1000 }, { maxBodyBytes: 65536 }),
      log: { segmentBytes: 262144 },
    },
  });
  try {
    const acked = new Map<string, string>();
    let refused = 0;
    for (let i = 0; i < 400 && refused === 0; i++) {
      const body = `${withDeadLetters && i % 5 === 0 ? 'reject' : 'keep'}-${i}-${'y'.repeat(20000)}`;
      const r = await rawExchange(crowd.port, post('/leads', body, { 'Content-Type': 'text/plain' }));
      if (r.status === 200) acked.set((JSON.parse(r.body) as { id: string }).id, body);
      else if (r.status === 503) refused++;
      else t.fail(`unexpected ${r.status}: ${r.body}`);
    }
    t.true(refused > 0, 'the disk must fill up');
    const keep = [...acked].filter(([, b]) => !b.startsWith('reject')).map(([id]) => id);
    const reject = [...acked].filter(([, b]) => b.startsWith('reject')).map(([id]) => id);
    t.true(keep.length > 0 && (reject.length > 0) === withDeadLetters);

    // Whatever room the log left (it stops at a pre-allocation that does not fit) goes to
    // another file, as when something else fills the disk: not a byte left.
    // Topped up again while the test waits: the lane frees what it had pre-allocated when its
    // write fails, and that room must not go to the cursor file.
    const filler = fs.openSync(path.join(mnt, 'filler'), 'w');
    const chunk = Buffer.alloc(4096, 1);
    const topUp = () => {
      for (const n of [4096, 1]) {
        try {
          for (;;) fs.writeSync(filler, chunk, 0, n);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        }
      }
    };
    topUp();

    // Deliveries now succeed or are refused for good: cursor commits and dead letters hit ENOSPC.
    hold = false;
    const delivered = () => new Set(backend.received.filter((r) => backend.behave(r, 1).status === 200).map((r) => r.id));
    t.true(await until(() => {
      topUp();
      return keep.every((id) => delivered().has(id));
    }, 60_000, 100), 'everything deliverable is delivered on a full disk');
    const reports = await until(async () => {
      topUp();
      return crowd.child.exitCode !== null || crowd.child.signalCode !== null || !(await sinkStats(crowd.adminPort)).healthy;
    }, 30_000, 100);
    t.is(crowd.child.exitCode ?? crowd.child.signalCode, null, `crowd must not die:\n${crowd.output().slice(-3000)}`);
    t.true(reports, `the sink reports the disk error: ${JSON.stringify(await sinkStats(crowd.adminPort))}\n${crowd.output().slice(-2000)}`);
    const sick = await sinkStats(crowd.adminPort);
    t.regex(sick.health, /ENOSPC/);
    t.is(crowd.child.exitCode, null, `crowd must not die:\n${crowd.output().slice(-3000)}`);
    t.is(crowd.child.signalCode, null);
    const full = await rawExchange(crowd.port, post('/leads', 'keep-while-full', { 'Content-Type': 'text/plain' }));
    t.is(full.status, 503, 'ingest cannot proceed: 503');

    // Space returns: no restart; dead letters get written, cursors committed, health back.
    fs.closeSync(filler);
    execFileSync('mount', ['-o', 'remount,size=16m', mnt]);
    t.true(await until(async () => {
      const s = await sinkStats(crowd.adminPort);
      return s.healthy && s.failed === reject.length && s.backlogBytes === 0;
    }, 60_000, 200), JSON.stringify(await sinkStats(crowd.adminPort)));
    t.true(await until(async () => (await rawExchange(crowd.port, post('/leads', 'keep-after', { 'Content-Type': 'text/plain' }))).status === 200, 30_000, 100));
    const cursorFile = path.join(dataDir, 'cursors', 'api.json');
    t.true(await until(() => {
      try {
        const lanes = (JSON.parse(fs.readFileSync(cursorFile, 'utf8')) as { lanes: Record<string, number> }).lanes;
        return Object.values(lanes).some((v) => v > 0);
      } catch {
        return false;
      }
    }, 10_000, 100), 'the cursor is committed again');
    crowd.kill('SIGTERM');
    t.is(await crowd.exited, 0);
    const dead = new Set((await readDeadLetters(dataDir, 'leads.dlq')).map((d) => d.id));
    t.deepEqual(reject.filter((id) => !dead.has(id)), [], 'every refused message is in the dead letters');
  } finally {
    crowd.kill('SIGKILL');
    await crowd.exited;
    await backend.kill();
    execFileSync('umount', [mnt]);
  }
});

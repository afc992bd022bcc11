// End to end: crowd under load is SIGKILLed, restarted, and `crowd log dump` must hold every
// id it acknowledged (durable mode). Also SIGTERM under load: drains, exits 0, nothing lost.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { recordFigures } from './helpers/figures.js';
import { runCli, startCrowd, tempDir } from './helpers/crowd-process.js';
import { runLoad } from './helpers/load.js';
import { post, rawRequest } from './helpers/raw-http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds or `timeoutMs` passes; whether it held. */
async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

async function dumpBodies(dataDir: string): Promise<Map<string, string[]>> {
  const r = await runCli(['log', 'dump', '--data-dir', dataDir]);
  const byId = new Map<string, string[]>();
  for (const l of r.stdout.split('\n').filter(Boolean)) {
    const d = JSON.parse(l) as { id: string; body: string };
    byId.set(d.id, [...(byId.get(d.id) ?? []), d.body]);
  }
  return byId;
}

function compare(acked: Map<string, string>, stored: Map<string, string[]>) {
  let found = 0;
  let missing = 0;
  let wrongBody = 0;
  let duplicates = 0;
  for (const [id, body] of acked) {
    const got = stored.get(id);
    if (!got) missing++;
    else {
      found++;
      if (!got.includes(body)) wrongBody++;
    }
  }
  for (const bodies of stored.values()) if (bodies.length > 1) duplicates += bodies.length - 1;
  return { acknowledged: acked.size, found, missing, wrongBody, duplicates, stored: stored.size };
}

async function killNineUnderLoad(t: ExecutionContext, ingest: Record<string, unknown>, scenario: string): Promise<void> {
  const config = { ingest, routes: [{ path: '/events' }] };
  const first = await startCrowd({ config });
  const load = runLoad(first.port, '/events', 32);
  // Killed once 2,000 are acknowledged: a count, so a busy machine only makes it slower.
  try {
    await load.untilAcked(2000);
  } finally {
    first.kill('SIGKILL');
  }
  await first.exited;
  const result = await load.stop();
  t.true(result.acked.size >= 2000, `enough load to mean something (${result.acked.size} acked)`);

  const t0 = performance.now();
  const second = await startCrowd({ dataDir: first.dataDir, config });
  let firstOkMs = -1;
  for (let i = 0; i < 100 && firstOkMs < 0; i++) {
    const r = await rawRequest(second.port, post('/events', '{"after":"restart"}'));
    if (r.status === 200) firstOkMs = performance.now() - t0;
    else await sleep(50);
  }
  second.kill('SIGTERM');
  t.is(await second.exited, 0);
  t.regex(second.output(), /"event":"lane_recovered"/);

  const report = compare(result.acked, await dumpBodies(first.dataDir));
  recordFigures(t, scenario, { ...report, sent: result.sent, refused: result.refused, clientErrors: result.errors, msToFirst2xxAfterRestart: Math.round(firstOkMs) });
  t.is(report.missing, 0);
  t.is(report.wrongBody, 0);
  t.true(firstOkMs > 0);
  const verify = await runCli(['log', 'verify', '--data-dir', first.dataDir]);
  t.is(verify.code, 0, verify.stdout);
}

test.serial('kill -9 under load: every acknowledged id is in the log after restart', (t) => killNineUnderLoad(t, {}, 'kill -9 under load (32 clients), restart'));

// ingest.ackWait poll answers from the acceptor's own look at the watermark: the same promise.
test.serial('kill -9 under load with ingest.ackWait poll: every acknowledged id is in the log', (t) =>
  killNineUnderLoad(t, { ackWait: 'poll' }, 'kill -9 under load (32 clients), ackWait poll'));

test.serial('SIGTERM under load: drains, exits 0, every acknowledged id stored', async (t) => {
  const crowd = await startCrowd({ config: { routes: [{ path: '/events' }] } });
  const load = runLoad(crowd.port, '/events', 32);
  try {
    await load.untilAcked(1000);
  } catch (e) {
    crowd.kill('SIGKILL');
    throw e;
  }
  const t0 = performance.now();
  crowd.kill('SIGTERM');
  const code = await crowd.exited;
  const drainMs = performance.now() - t0;
  const result = await load.stop();
  t.is(code, 0);
  const report = compare(result.acked, await dumpBodies(crowd.dataDir));
  recordFigures(t, 'SIGTERM under load (32 clients)', { ...report, drainMs: Math.round(drainMs), refusedDuringDrain: result.refused, clientErrors: result.errors });
  t.is(report.missing, 0);
  t.true(result.acked.size >= 1000);
});

test.serial('memory ack under load, then SIGTERM: drain writes what was acknowledged', async (t) => {
  const crowd = await startCrowd({ config: { routes: [{ path: '/events', ack: 'memory' }] } });
  const load = runLoad(crowd.port, '/events', 16);
  try {
    await load.untilAcked(1000);
  } catch (e) {
    crowd.kill('SIGKILL');
    throw e;
  }
  crowd.kill('SIGTERM');
  t.is(await crowd.exited, 0);
  const result = await load.stop();
  const report = compare(result.acked, await dumpBodies(crowd.dataDir));
  recordFigures(t, 'SIGTERM under load, ack: memory', report);
  t.true(result.acked.size >= 1000, `only ${result.acked.size} acknowledged: nothing to check`);
  t.is(report.missing, 0);
});

test.serial('a lane dies mid-batch under load: it is started again and nothing acknowledged is lost', async (t) => {
  const crowd = await startCrowd({ config: { routes: [{ path: '/events' }] }, env: { CROWD_FAULT_LANE_CRASH_AFTER_RECORDS: '3000' } });
  const load = runLoad(crowd.port, '/events', 32);
  // Events, not time: the lane dies after its 3,000th record; wait for its restart to be logged,
  // then for 2,000 more acknowledgements (taken by the restarted lane), then ask /readyz.
  let restarted = false;
  let ready = { status: 0 };
  try {
    restarted = await until(() => /"event":"lane_restarted"/.test(crowd.output()), 90_000);
    await load.untilAcked(load.acked() + 2000);
    ready = await rawRequest(crowd.adminPort, 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
  } finally {
    crowd.kill('SIGTERM');
  }
  const code = await crowd.exited;
  const result = await load.stop();
  t.true(restarted, 'lane_restarted logged');
  t.regex(crowd.output(), /"event":"lane_died"/);
  t.regex(crowd.output(), /"event":"lane_restarted"/);
  t.is(ready.status, 200, 'the pool is back to size');
  t.is(code, 0);
  const report = compare(result.acked, await dumpBodies(crowd.dataDir));
  recordFigures(t, 'a lane thread crashes mid-batch under load', { ...report, refused: result.refused, clientErrors: result.errors });
  t.true(result.acked.size > 3000, 'acknowledged messages after the crash too');
  t.is(report.missing, 0);
});

test('a cursor left by a sink no longer configured is named at start (it holds back retention)', async (t) => {
  const dataDir = tempDir();
  fs.mkdirSync(path.join(dataDir, 'cursors'), { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'cursors', 'gone.json'), JSON.stringify({ lanes: { 0: 16 } }));
  const crowd = await startCrowd({ dataDir });
  try {
    const line = crowd.output().split('\n').find((l) => l.includes('"event":"cursor_without_sink"'));
    t.truthy(line, crowd.output());
    t.like(JSON.parse(line!), { level: 40, consumer: 'gone', file: path.join(dataDir, 'cursors', 'gone.json') });
  } finally {
    crowd.kill();
    await crowd.exited;
  }
});

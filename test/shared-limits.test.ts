// Route limits shared by every acceptor thread: the GCRA rate limit and the HMAC replay window
// (src/acceptor/shared-limits.ts), alone, raced by worker threads, and in crowd with two
// acceptors, where a per-thread share used to halve a one-connection client's rate and let a
// replay through on a connection the kernel gave to the other acceptor.
import test from 'ava';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Client } from 'undici';
import { signBody } from '../src/acceptor/ingest-auth.js';
import { ReplayWindow, RouteRateLimit, replayWindowBytes } from '../src/acceptor/shared-limits.js';
import { startCrowd } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

const SECRET = 'whsec-0123456789abcdef';

test('rate limit: the burst at once, then one request per 1/rate, and Retry-After until the next', (t) => {
  let clock = 10_000_000_000n;
  const sab = new SharedArrayBuffer(16);
  const a = new RouteRateLimit(sab, 1, 100, 5, () => clock);
  let taken = 0;
  for (let i = 0; i < 20; i++) if (a.tryTake()) taken++;
  t.is(taken, 5, 'the burst');
  clock += 9_000_000n;
  t.false(a.tryTake(), '9 ms later at 100/s: not yet');
  clock += 1_000_000n;
  t.true(a.tryTake(), '10 ms later: one');
  t.false(a.tryTake());
  t.is(a.retryAfterSeconds(), 1);
  // A second view of the same memory (another acceptor) sees the same limit.
  const b = new RouteRateLimit(sab, 1, 100, 5, () => clock);
  t.false(b.tryTake(), 'shared: the other thread is limited too');
  clock += 10_000_000_000n;
  let again = 0;
  for (let i = 0; i < 20; i++) if ((i % 2 ? a : b).tryTake()) again++;
  t.is(again, 5, 'after a quiet spell the burst is back, once for both');
  t.is(new BigInt64Array(sab)[0], 0n, 'slot 0 (another route) untouched');
});

test('rate limit: a slow rate gives a Retry-After of the seconds to the next request', (t) => {
  let clock = 1n;
  const r = new RouteRateLimit(new SharedArrayBuffer(8), 0, 0.1, 1, () => clock);
  t.true(r.tryTake());
  t.false(r.tryTake());
  t.is(r.retryAfterSeconds(), 10);
  clock += 4_000_000_000n;
  t.is(r.retryAfterSeconds(), 6);
});

const hex = (n: number) => n.toString(16).padStart(16, '0').repeat(4);

test('replay window: first use, replay until expiry, expired slots reused, full when no slot is free', (t) => {
  const w = new ReplayWindow(new SharedArrayBuffer(replayWindowBytes(1024)));
  t.is(w.firstUse(hex(1), 1100, 1000), 'first');
  t.is(w.firstUse(hex(1), 1100, 1050), 'replay');
  t.is(w.firstUse(hex(2), 1100, 1050), 'first');
  t.is(w.firstUse(hex(1), 1300, 1101), 'first', 'expired: the signature cannot pass the timestamp check any more, its slot is free');
  for (let i = 0; i < 1024; i++) w.firstUse(hex(1_000_000 + i), 2000, 1200);
  t.is(w.firstUse(hex(5), 2000, 1200), 'full', 'every slot live');
  t.is(w.firstUse(hex(1_000_000), 2000, 1200), 'replay', 'a full window still knows what it holds');
  t.is(w.firstUse(hex(5), 3000, 2001), 'first', 'once they expire there is room');
  t.is(w.firstUse(hex(1), 3000, 2001), 'first');
  t.is(w.firstUse(hex(5), 3000, 2002), 'replay');
});

test('replay window: signatures differing only beyond 64 bits count as the same (documented: 64 bits kept)', (t) => {
  const w = new ReplayWindow(new SharedArrayBuffer(replayWindowBytes(1024)));
  t.is(w.firstUse('ab'.repeat(32), 100, 1), 'first');
  t.is(w.firstUse('ab'.repeat(8) + 'cd'.repeat(24), 100, 1), 'replay');
});

test('replay window: four threads racing on the same signatures accept each exactly once', async (t) => {
  const sab = new SharedArrayBuffer(replayWindowBytes(1 << 19));
  const gate = new SharedArrayBuffer(4);
  const moduleUrl = new URL('../src/acceptor/shared-limits.js', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.moduleUrl).then(({ ReplayWindow }) => {
      const w = new ReplayWindow(workerData.sab);
      // All four start together (a spin barrier) and take the same signatures in the same order,
      // so they really race for each one.
      const gate = new Int32Array(workerData.gate);
      Atomics.add(gate, 0, 1);
      while (Atomics.load(gate, 0) < 4);
      const firsts = [];
      for (let n = 0; n < 200_000; n++) {
        if (w.firstUse(n.toString(16).padStart(16, '0') + 'ff'.repeat(24), 2000, 1000) === 'first') firsts.push(n);
      }
      parentPort.postMessage(firsts);
    });`;
  const workers = [0, 1, 2, 3].map(() => new Worker(code, { eval: true, workerData: { sab, gate, moduleUrl } }));
  const results = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0] as number[]));
  const all = results.flat();
  t.is(all.length, 200_000, 'one first use per signature, in total');
  t.is(new Set(all).size, 200_000, 'no signature accepted twice');
  t.true(results.filter((r) => r.length > 0).length >= 2, 'the threads really raced (more than one won some)');
});

// A burst of 40 and a refill of 1/s: what the bucket adds while the test runs is the seconds it
// took, so a slow machine cannot make a per-acceptor half-burst (20) look like the whole one (a
// refill of 20/s could, after a second). Two routes with the same limit, so the second half
// starts from a full bucket of its own without waiting for a refill.
test('crowd with two acceptors: one connection gets the whole burst; the limit holds over many connections', async (t) => {
  const limit = { perSecond: 1, burst: 40 };
  const crowd = await startCrowd({
    config: { threads: { acceptors: 2, lanes: 1 }, routes: [{ path: '/limited', ack: 'memory', rateLimit: limit }, { path: '/many', ack: 'memory', rateLimit: limit }] },
  });
  try {
    const origin = `http://127.0.0.1:${crowd.port}`;
    const one = new Client(origin, { pipelining: 1 });
    const started = Date.now();
    let ok = 0;
    for (let i = 0; i < 60; i++) {
      const r = await one.request({ path: '/limited', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
      await r.body.text();
      if (r.statusCode === 200) ok++;
    }
    const elapsed = (Date.now() - started) / 1000;
    await one.close();
    t.log({ oneConnection: ok, seconds: elapsed });
    t.true(ok >= 40, `the whole burst on one connection (a per-acceptor share gave 20): ${ok}`);
    t.true(ok <= 40 + Math.ceil(limit.perSecond * elapsed) + 1, `never more than burst + rate x time: ${ok}`);

    // Then 96 fresh connections at once on the other route: still one limit for both acceptors.
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 96 }, (_, i) => rawExchange(crowd.port, post('/many', `{"n":${i}}`))));
    const spread = (Date.now() - t0) / 1000;
    const accepted = answers.filter((a) => a.status === 200).length;
    t.log({ manyConnections: accepted, seconds: spread });
    t.true(accepted >= 40);
    t.true(accepted <= 40 + Math.ceil(limit.perSecond * spread) + 1, `burst + rate x time over both acceptors: ${accepted}`);
    t.true(answers.every((a) => a.status === 200 || a.status === 429));
  } finally {
    crowd.kill();
    await crowd.exited;
  }
});

test('crowd with two acceptors: a signed request replayed on new connections is refused whichever acceptor gets it', async (t) => {
  const crowd = await startCrowd({
    config: { threads: { acceptors: 2, lanes: 1 }, routes: [{ path: '/hooks', auth: { hmac: { secret: SECRET } } }] },
  });
  try {
    const body = '{"event":"paid"}';
    const sig = signBody(SECRET, body, Math.floor(Date.now() / 1000));
    const req = post('/hooks', body, { 'Content-Type': 'application/json', 'Crowd-Signature': sig });
    const first = await rawExchange(crowd.port, req);
    t.is(first.status, 200);
    // 16 new connections: with a window per acceptor, those the kernel hands to the other one
    // would be accepted (all 16 on the same acceptor: 1 in 32,768).
    const again = await Promise.all(Array.from({ length: 16 }, () => rawExchange(crowd.port, req)));
    t.deepEqual(again.map((a) => a.status), Array(16).fill(401));
    t.true(again.every((a) => (JSON.parse(a.body) as { code: string }).code === 'CROWD_REPLAYED'));
  } finally {
    crowd.kill();
    await crowd.exited;
  }
});

// Item 12 of issue 17: pipelined requests. This uWS build closes a connection that pipelines a
// request behind one whose answer is still pending (a bare uWS server with asynchronous answers
// does the same: docs/errors.md, "Pipelining"), so a durable request cannot be answered when
// another request follows it in the same write. What crowd guarantees: every stored message was
// answered 200, every 200 is stored; pipelined requests whose answers are immediate (ack memory,
// refusals answered at once) are all answered, in order.
import test from 'ava';
import net from 'node:net';
import { dumpIds, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { post } from './helpers/raw-http.js';

let crowd: CrowdProcess;

test.before(async () => {
  crowd = await startCrowd({
    config: { routes: [{ path: '/d' }, { path: '/m', ack: 'memory' }, { path: '/k', key: 'json:/k' }, { path: '/t', contentTypes: ['application/json'] }] },
  });
});

test.after.always(async () => {
  crowd?.kill();
  await crowd?.exited;
});

/** Sends `bytes` in one write; resolves with everything received once the server closes or 1 s of silence. */
function exchange(port: number, bytes: string, answers = Infinity): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let raw = '';
    let timer = setTimeout(() => done(false), 1000);
    const done = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ raw, closed });
    };
    s.on('data', (d) => {
      raw += d.toString('latin1');
      if (statuses(raw).length >= answers && raw.endsWith('"}')) return done(false);
      clearTimeout(timer);
      timer = setTimeout(() => done(false), 1000);
    });
    s.on('close', () => done(true));
    s.on('error', () => done(true));
  });
}

const ids = (raw: string) => [...raw.matchAll(/"id":"([0-9a-z]{22})"/g)].map((m) => m[1]);
const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.1 ([0-9]{3})/g)].map((m) => Number(m[1]));

/** What the log holds for `topic` once what was handed to the lanes is fsynced. */
async function stored(topic: string): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 400)); // memory-ack records are fsynced within flushInterval
  return dumpIds(crowd.dataDir, topic);
}

for (const [route, n] of [['/d', 2], ['/d', 3], ['/d', 5], ['/k', 3]] as const) {
  test.serial(`${n} durable requests to ${route} in one write: every stored message was answered, every answer stored`, async (t) => {
    const topic = route.slice(1);
    const answered: string[] = [];
    for (let round = 0; round < 5; round++) {
      const reqs = Array.from({ length: n }, (_, i) => post(route, JSON.stringify({ k: `k${i}`, round, i }))).join('');
      const r = await exchange(crowd.port, reqs);
      answered.push(...ids(r.raw));
    }
    const inLog = await stored(topic);
    t.deepEqual(inLog.filter((id) => !answered.includes(id)), [], 'stored but never answered');
    t.deepEqual(answered.filter((id) => !inLog.includes(id)), [], 'answered 200 but not stored');
  });
}

test.serial('three memory-ack requests in one write: three 200s in order, all three stored', async (t) => {
  for (let round = 0; round < 5; round++) {
    const r = await exchange(crowd.port, [0, 1, 2].map((i) => post('/m', JSON.stringify({ round, i }))).join(''), 3);
    t.deepEqual(statuses(r.raw), [200, 200, 200], r.raw);
    const got = ids(r.raw);
    t.is(got.length, 3);
    t.deepEqual([...got].sort(), got, 'ids grow: answers in request order');
    const inLog = await stored('m');
    for (const id of got) t.true(inLog.includes(id), `${id} stored`);
  }
});

test.serial('a refusal answered at once, then a memory-ack request, in one write: both answered in order', async (t) => {
  const r = await exchange(crowd.port, post('/t', '{"a":', { 'Content-Type': 'application/json' }) + post('/m', '{"after":"refusal"}'), 2);
  t.deepEqual(statuses(r.raw), [400, 200], r.raw);
});

test.serial('a cancelled durable record does not keep its wait open: pending acks return to 0 long before ackTimeout', async (t) => {
  const slow = await startCrowd({ config: { ingest: { ackTimeout: '60s' }, routes: [{ path: '/d' }] } });
  try {
    await exchange(slow.port, post('/d', '{"a":1}') + post('/d', '{"a":2}'));
    const pending = async () => {
      const r = await new Promise<string>((resolve, reject) => {
        const s = net.connect(slow.adminPort, '127.0.0.1', () => s.write('GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
        let raw = '';
        s.on('data', (d) => (raw += d));
        s.on('end', () => resolve(raw));
        s.on('error', reject);
      });
      return (JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4)) as { pending: number }).pending;
    };
    let last = -1;
    for (let i = 0; i < 100 && last !== 0; i++) {
      last = await pending();
      if (last !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    t.is(last, 0, 'the cancelled request still waits');
    t.deepEqual(await dumpIds(slow.dataDir, 'd'), []);
  } finally {
    slow.kill();
    await slow.exited;
  }
});

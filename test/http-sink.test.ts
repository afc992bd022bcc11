// The HTTP sink against real HTTP servers on loopback (test/helpers/backend.ts), crowd as a
// real child process. Serial: each test runs load against crowd on a shared 2-core machine.
import test from 'ava';
import { dumpIds, runCli, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { admin, Backend, deliveryReport, httpConfig, startBackends, until } from './helpers/backend.js';
import { readDeadLetters } from './helpers/dead-letters.js';
import { recordFigures } from './helpers/figures.js';
import { loadUntilAcked, runLoad } from './helpers/load.js';
import { post, rawExchange, rawRequest } from './helpers/raw-http.js';

async function stopCrowd(c: CrowdProcess): Promise<void> {
  c.kill('SIGTERM');
  await c.exited;
}

/** Waits until every acknowledged id reached one of the backends (or the time is up). */
async function awaitAll(acked: Map<string, string>, backends: Backend[], timeoutMs = 60_000) {
  await until(() => {
    const seen = new Set<string>();
    for (const b of backends) for (const r of b.received) seen.add(r.id);
    return [...acked.keys()].every((id) => seen.has(id));
  }, timeoutMs, 200);
  return deliveryReport(acked, backends);
}

function idOf(body: string): string {
  return (JSON.parse(body) as { id: string }).id;
}

test.serial('replayed as received: method, rewritten path and query, kept headers, body, Crowd-Id and Idempotency-Key', async (t) => {
  const [b] = await startBackends(1);
  const crowd = await startCrowd({
    config: httpConfig([b.url], { rewrite: { match: '^/leads', replace: '/api/v2/leads' }, headers: { authorization: 'Bearer backend-secret' } }, {}, {
      methods: ['POST', 'PUT'], keepHeaders: ['x-shop', 'connection'],
    }),
  });
  try {
    const p = await rawRequest(crowd.port, post('/leads?src=web&x=1', '{"lead":1}', { 'Content-Type': 'application/json', 'X-Shop': 'shop-7', Connection: 'close' }));
    const u = await rawRequest(crowd.port, 'PUT /leads HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
    t.is(p.status, 200);
    t.is(u.status, 200);
    t.true(await until(() => b.received.length >= 2));
    const byId = new Map(b.received.map((r) => [r.id, r]));
    const rp = byId.get(idOf(p.body))!;
    t.is(rp.method, 'POST');
    t.is(rp.url, '/api/v2/leads?src=web&x=1');
    t.is(rp.body, '{"lead":1}');
    t.is(rp.headers['content-type'], 'application/json');
    t.is(rp.headers['x-shop'], 'shop-7');
    t.is(rp.headers['idempotency-key'], rp.id);
    t.is(rp.headers.authorization, 'Bearer backend-secret');
    // Kept (keepHeaders lists it) and sent as `close`, but hop-by-hop: never replayed.
    t.not(rp.headers.connection, 'close', 'hop-by-hop headers are not replayed');
    const ru = byId.get(idOf(u.body))!;
    t.is(ru.method, 'PUT');
    t.is(ru.url, '/api/v2/leads');
    t.is(ru.body, 'hello');
    t.is(ru.headers['content-type'], 'text/plain');
  } finally {
    await stopCrowd(crowd);
    await b.kill();
  }
});

test.serial('delivery across three backends under load: every acknowledged id arrives, each backend takes a share', async (t) => {
  const backends = await startBackends(3);
  const crowd = await startCrowd({ config: httpConfig(backends.map((b) => b.url)) });
  try {
    await until(async () => (await admin(crowd.adminPort, 'GET', '/servers')).body.every((s: { state: string }) => s.state === 'healthy'));
    const result = await loadUntilAcked(crowd.port, '/leads', 8, 1000);
    const report = await awaitAll(result.acked, backends);
    t.log(report);
    t.true(result.acked.size >= 1000, `${result.acked.size} acknowledged`);
    t.is(report.missing, 0);
    t.is(report.wrongBody, 0);
    for (const b of backends) t.true(b.received.length > result.acked.size / 10, `${b.name} got ${b.received.length}`);
    const detail = (await admin(crowd.adminPort, 'GET', '/stats/detail')).body as Array<{ port: number; success: number; failed: number; state: string; inFlight: number; latencyMs: number }>;
    t.is(detail.length, 3);
    for (const b of backends) {
      const d = detail.find((s) => s.port === b.port)!;
      t.is(d.success, b.received.length, `crowd's count for ${b.name} matches what it received`);
      t.is(d.failed, 0);
      t.is(d.state, 'healthy');
      t.true(d.latencyMs > 0);
    }
    const stats = (await admin(crowd.adminPort, 'GET', '/stats')).body as { server: { success: number; failed: number }; sinks: { api: { delivered: number } } };
    t.is(stats.server.success, report.received);
    t.is(stats.server.failed, 0);
    t.true(stats.sinks.api.delivered >= result.acked.size);
    const metrics = (await admin(crowd.adminPort, 'GET', '/metrics')).body as string;
    t.regex(metrics, new RegExp(`crowd_server_requests_total\\{pool="leads-api",server="[^"]+",address="127.0.0.1:${backends[0].port}",outcome="success"\\} ${backends[0].received.length}`));
    t.regex(metrics, /crowd_server_state\{[^}]*state="healthy"\} 1/);
  } finally {
    await stopCrowd(crowd);
    await Promise.all(backends.map((b) => b.kill()));
  }
});

test.serial('balance: round-robin: three healthy servers take the messages in turn, exactly a third each', async (t) => {
  const backends = await startBackends(3);
  const crowd = await startCrowd({ config: httpConfig(backends.map((b) => b.url), {}, { balance: 'round-robin' }) });
  try {
    await until(async () => (await admin(crowd.adminPort, 'GET', '/servers')).body.every((s: { state: string }) => s.state === 'healthy'));
    const acked = new Map<string, string>();
    for (let i = 0; i < 300; i++) {
      const body = `{"n":${i}}`;
      const r = await rawExchange(crowd.port, post('/leads', body));
      if (r.status === 200) acked.set(idOf(r.body), body);
    }
    const report = await awaitAll(acked, backends);
    t.log(report);
    t.is(acked.size, 300);
    t.is(report.missing, 0);
    t.is(report.duplicates, 0);
    // In turn: exactly 100 each (p2c-ewma, the default, spreads by load and would rarely split 300 evenly).
    t.deepEqual(backends.map((b) => b.received.length), [100, 100, 100]);
  } finally {
    await stopCrowd(crowd);
    await Promise.all(backends.map((b) => b.kill()));
  }
});

test.serial('a backend killed and restarted under load, then every backend down: retried elsewhere or later, nothing missing', async (t) => {
  t.timeout(120_000);
  const [a, b] = await startBackends(2);
  const crowd = await startCrowd({ config: httpConfig([a.url, b.url]) });
  let result;
  try {
    await until(async () => (await admin(crowd.adminPort, 'GET', '/servers')).body.every((s: { state: string }) => s.state === 'healthy'));
    const load = runLoad(crowd.port, '/leads', 8);
    try {
      await load.untilAcked(300);
      await a.kill();
      const aBefore = a.received.length;
      const bDuringOutage = b.received.length;
      t.true(await until(() => b.received.length > bDuringOutage + 100, 30_000), 'b takes the traffic while a is down');
      await a.start();
      const back = await until(() => a.received.length > aBefore, 20_000);
      if (!back) t.log((await admin(crowd.adminPort, 'GET', '/servers')).body, crowd.output().split('\n').filter((l) => /server_|http_/.test(l)).slice(-20).join('\n'));
      t.true(back, 'a gets traffic again once it is back');
      // Now both down: messages wait in the log; crowd keeps acknowledging.
      await Promise.all([a.kill(), b.kill()]);
      type Ready = { status: string; sinks: { api: { healthy: boolean } } };
      let health: Ready | undefined;
      // Both down is noticed by the health checks (2 failures at 200 ms): wait for that event.
      await until(async () => !(health = (await admin(crowd.adminPort, 'GET', '/readyz')).body as Ready).sinks.api.healthy, 30_000);
      const whileDown = await rawRequest(crowd.port, post('/leads', '{"during":"outage"}'));
      t.is(whileDown.status, 200, 'crowd acknowledges while every backend is down');
      await load.untilAcked(load.acked() + 200);
      t.is(health!.status, 'ready');
      t.false(health!.sinks.api.healthy);
      await Promise.all([a.start(), b.start()]);
      await load.untilAcked(load.acked() + 200);
    } finally {
      result = await load.stop();
    }
    const report = await awaitAll(result.acked, [a, b]);
    recordFigures(t, 'HTTP backend killed and restarted under load, then every backend down', { ...report, refused: result.refused, clientErrors: result.errors });
    t.is(result.refused, 0);
    t.is(report.missing, 0);
    t.is(report.wrongBody, 0);
  } finally {
    await stopCrowd(crowd);
    await Promise.all([a.kill(), b.kill()]);
  }
});

test.serial('5xx and 408 are retried until delivered; other 4xx go to the dead letters with the status', async (t) => {
  const [b] = await startBackends(1);
  b.behave = (r, attempt) => {
    const kind = (JSON.parse(r.body) as { kind: string }).kind;
    if (kind === 'flaky') return attempt === 1 ? { status: 500 } : attempt === 2 ? { status: 408 } : { status: 201 };
    if (kind === 'invalid') return { status: 422, body: '{"error":"email missing"}' };
    if (kind === 'gone') return { status: 404 };
    return { status: 200 };
  };
  const crowd = await startCrowd({ config: httpConfig([b.url], { backoff: { initial: '50ms', max: '200ms' } }) });
  try {
    const flaky = idOf((await rawRequest(crowd.port, post('/leads', '{"kind":"flaky"}'))).body);
    const invalid = idOf((await rawRequest(crowd.port, post('/leads', '{"kind":"invalid"}'))).body);
    const gone = idOf((await rawRequest(crowd.port, post('/leads', '{"kind":"gone"}'))).body);
    const fine = idOf((await rawRequest(crowd.port, post('/leads', '{"kind":"fine"}'))).body);
    t.true(await until(() => b.received.filter((r) => r.id === flaky).length >= 3));
    let dlq: Awaited<ReturnType<typeof readDeadLetters>> = [];
    t.true(await until(async () => (dlq = await readDeadLetters(crowd.dataDir, 'leads.dlq')).length >= 2, 20_000, 300));
    t.deepEqual(dlq.map((d) => d.id).sort(), [invalid, gone].sort());
    const reason = (id: string) => dlq.find((d) => d.id === id)!.headers['crowd-dlq-reason'];
    t.regex(reason(invalid), /^http 422 from http:\/\/127\.0\.0\.1:[0-9]+: \{"error":"email missing"\}$/);
    t.regex(reason(gone), /^http 404 /);
    t.is(dlq[0].headers['crowd-dlq-sink'], 'api');
    t.is(b.received.filter((r) => r.id === flaky).length, 3, 'the flaky one: 500, 408, then delivered once');
    t.is(b.received.filter((r) => r.id === invalid).length, 1, 'a 4xx is not retried');
    t.true(b.ids().has(fine));
    const stats = (await admin(crowd.adminPort, 'GET', '/stats')).body as { sinks: { api: { delivered: number; failed: number; retries: number } } };
    t.is(stats.sinks.api.failed, 2);
    t.is(stats.sinks.api.delivered, 2);
    t.is(stats.sinks.api.retries, 2);
  } finally {
    await stopCrowd(crowd);
    await b.kill();
  }
});

test.serial('429 with Retry-After: the message is sent again no sooner than the server asked', async (t) => {
  const [b] = await startBackends(1);
  b.behave = (_r, attempt) => (attempt === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 });
  const crowd = await startCrowd({ config: httpConfig([b.url], { backoff: { initial: '10ms', max: '50ms' } }) });
  try {
    const id = idOf((await rawRequest(crowd.port, post('/leads', '{"n":1}'))).body);
    t.true(await until(() => b.received.filter((r) => r.id === id).length >= 2, 20_000));
    const [first, second] = b.received.filter((r) => r.id === id);
    t.log({ gapMs: second.at - first.at });
    // A lower bound only: the backoff configured here is 10-50 ms, so a gap of 2 s is the Retry-After.
    t.true(second.at - first.at >= 1900, `sent again after ${second.at - first.at} ms`);
    const servers = (await admin(crowd.adminPort, 'GET', '/servers')).body as Array<{ state: string; failed: number; success: number }>;
    t.is(servers[0].state, 'healthy', 'a 429 is not a health failure');
    t.is(servers[0].failed, 1);
    t.is(servers[0].success, 1);
  } finally {
    await stopCrowd(crowd);
    await b.kill();
  }
});

test.serial('ttl: with the backend down, messages older than the ttl go to the dead letters with the reason', async (t) => {
  const b = new Backend('down');
  await b.start(0);
  await b.kill(); // a port nobody listens on
  const crowd = await startCrowd({ config: httpConfig([b.url], { ttl: '1s' }) });
  try {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(idOf((await rawRequest(crowd.port, post('/leads', `{"n":${i}}`))).body));
    let dlq: Awaited<ReturnType<typeof readDeadLetters>> = [];
    t.true(await until(async () => (dlq = await readDeadLetters(crowd.dataDir, 'leads.dlq')).length >= 5, 30_000, 300));
    t.deepEqual(dlq.map((d) => d.id).sort(), ids.sort());
    for (const d of dlq) t.regex(d.headers['crowd-dlq-reason'], /^ttl expired \(1000 ms\)/);
    t.deepEqual((await dumpIds(crowd.dataDir, 'leads')).sort(), ids.sort(), 'the originals stay in the log');
    recordFigures(t, 'HTTP backend dead longer than the 1 s TTL', { acknowledged: ids.length, deadLettered: dlq.length, stillInLog: ids.length });
  } finally {
    await stopCrowd(crowd);
  }
});

test.serial('ordering: key: each key reaches the backend in log order, through failures and retries', async (t) => {
  const [b] = await startBackends(1);
  // Random latency and one failure in five: without per-key order, retries and parallel
  // requests would reorder messages of a key.
  b.behave = () => (Math.random() < 0.2 ? { status: 503 } : { status: 200, delayMs: Math.floor(Math.random() * 5) });
  const crowd = await startCrowd({
    config: httpConfig([b.url], { ordering: 'key', concurrency: 8, backoff: { initial: '5ms', max: '20ms' } }, { ejectAfter: 1000 }, { key: 'header:x-shop', keepHeaders: ['x-shop'] }),
  });
  try {
    const result = await loadUntilAcked(crowd.port, '/leads', 8, 1000, { extraHeaders: (n) => ({ 'x-shop': `shop-${n % 5}` }) });
    const report = await awaitAll(result.acked, [b]);
    t.is(report.missing, 0);
    const dump = await runCli(['log', 'dump', '--data-dir', crowd.dataDir, '--topic', 'leads']);
    const logOrder = new Map<string, string[]>();
    for (const l of dump.stdout.split('\n').filter(Boolean)) {
      const d = JSON.parse(l) as { id: string; key: string };
      logOrder.set(d.key, [...(logOrder.get(d.key) ?? []), d.id]);
    }
    // Delivered order per key: the ids of 2xx answers, in arrival order.
    const okIds = new Set<string>();
    const attempts = new Map<string, number>();
    const delivered = new Map<string, string[]>();
    for (const r of b.received) attempts.set(r.id, (attempts.get(r.id) ?? 0) + 1);
    // An id's last arrival is its delivery (earlier ones were the 503s).
    const last = new Map(b.received.map((r) => [r.id, r.seq]));
    for (const r of b.received) {
      if (last.get(r.id) !== r.seq || okIds.has(r.id)) continue;
      okIds.add(r.id);
      const key = String(r.headers['x-shop'] ?? '');
      delivered.set(key, [...(delivered.get(key) ?? []), r.id]);
    }
    t.log({ ...report, retried: [...attempts.values()].filter((n) => n > 1).length });
    t.true([...attempts.values()].some((n) => n > 1), 'some messages were retried');
    t.is(delivered.size, 5);
    for (const [key, ids] of delivered) t.deepEqual(ids, logOrder.get(key), `order of ${key}`);
  } finally {
    await stopCrowd(crowd);
    await b.kill();
  }
});

test.serial('passive ejection: a server that fails requests in a row stops getting traffic before its health check says so', async (t) => {
  const [good, bad] = await startBackends(2);
  bad.behave = () => ({ status: 500 });
  // Health checks every 10 s: only passive ejection can take `bad` out during this test.
  const crowd = await startCrowd({
    config: httpConfig([good.url, bad.url], { backoff: { initial: '10ms', max: '50ms' } }, { ejectAfter: 3, healthCheck: { interval: '10s' } }),
  });
  try {
    await until(async () => (await admin(crowd.adminPort, 'GET', '/servers')).body.every((s: { state: string }) => s.state === 'healthy'));
    const load = runLoad(crowd.port, '/leads', 4);
    type ServerRow = { port: number; state: string; lastError: string; failed: number; inFlight: number };
    let row: ServerRow | undefined;
    const readBad = async () => {
      row = ((await admin(crowd.adminPort, 'GET', '/servers')).body as ServerRow[]).find((x) => x.port === bad.port)!;
      return row;
    };
    t.true(await until(async () => (await readBad()).state === 'unhealthy', 20_000, 50));
    // One consistent snapshot (crowd's main thread): everything ever sent to it is either
    // answered (failed) or in flight now.
    const sentBeforeEjection = row!.failed + row!.inFlight;
    // Traffic goes on after the ejection (a count, not a time) and none of it may reach bad.
    await load.untilAcked(load.acked() + 500);
    const result = await load.stop();
    const report = await awaitAll(result.acked, [good]);
    t.is(report.missing, 0, 'everything reached the good server');
    t.is((await readBad()).state, 'unhealthy');
    t.regex(row!.lastError, /answered 500/);
    t.log({ toBad: bad.received.length, sentBeforeEjection, toGood: good.received.length });
    t.true(sentBeforeEjection >= 3, 'ejected after 3 failures in a row (more may have been in flight)');
    t.is(bad.received.length, sentBeforeEjection, 'nothing sent to it after the ejection');
  } finally {
    await stopCrowd(crowd);
    await Promise.all([good.kill(), bad.kill()]);
  }
});

test.serial('ack: delivered: the client gets its 200 only once the backend answered 2xx', async (t) => {
  const [b] = await startBackends(1);
  b.behave = () => ({ status: 200, delayMs: 300 });
  const crowd = await startCrowd({ config: httpConfig([b.url], {}, {}, { ack: 'delivered' }) });
  try {
    await until(async () => (await admin(crowd.adminPort, 'GET', '/servers')).body[0].state === 'healthy');
    // fetch resolves as soon as the answer arrives (rawRequest waits for silence).
    const r = await fetch(`http://127.0.0.1:${crowd.port}/leads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
    t.is(r.status, 200);
    const id = idOf(await r.text());
    // Answered only after the backend's (delayed) 2xx: by then it has received and answered it.
    t.true(b.ids().has(id));
    t.is(b.finished, 1);
  } finally {
    await stopCrowd(crowd);
    await b.kill();
  }
});

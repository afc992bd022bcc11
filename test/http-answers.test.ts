// Every answer of the ingest port, over raw sockets, against a real crowd process; what was
// acknowledged is then read back with `crowd log dump`.
import test from 'ava';
import { ERRORS } from '../src/errors.js';
import { dumpIds, runCli, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { post, rawRequest } from './helpers/raw-http.js';

let crowd: CrowdProcess;
let dynamic: CrowdProcess;

/** Polls `cond` until it holds or 30 s pass (a busy machine is slower, never red); whether it held. */
async function eventually(cond: () => Promise<boolean>): Promise<boolean> {
  for (const end = Date.now() + 30_000; ; ) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((res) => setTimeout(res, 100));
  }
}

test.before(async () => {
  crowd = await startCrowd({
    config: {
      routes: [
        { path: '/leads', contentTypes: ['application/json'], key: 'json:/shop', keepHeaders: ['user-agent'], maxBodyBytes: 1024 },
        { path: '/mem', ack: 'memory', maxBodyBytes: 100 },
        { path: '/orders/eu', topic: 'orders', methods: ['PUT', 'PATCH'], key: 'header:x-shop' },
      ],
    },
  });
  dynamic = await startCrowd();
});

test.after.always(async (t) => {
  if (crowd && crowd.child.exitCode !== null) t.log(crowd.output().slice(-3000));
  crowd?.kill();
  dynamic?.kill();
  await Promise.all([crowd?.exited, dynamic?.exited]);
});

interface Dumped {
  id: string;
  topic: string;
  key: string;
  headers: Record<string, string>;
  body: string;
  bodyEncoding?: string;
  method: string;
  path: string;
  query: string;
  contentType: string;
}

async function dump(p: CrowdProcess, topic?: string): Promise<Dumped[]> {
  const r = await runCli(['log', 'dump', '--data-dir', p.dataDir, ...(topic ? ['--topic', topic] : [])]);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Dumped);
}

function errorCode(body: string): string {
  return (JSON.parse(body) as { code: string }).code;
}

test('200 receipt after fsync; the dump holds body, key, kept header, method, path and query', async (t) => {
  const body = '{"shop":"s-42","message":"hi"}';
  const r = await rawRequest(crowd.port, post('/leads?utm=1', body, { 'Content-Type': 'application/json; charset=utf-8', 'User-Agent': 'raw/1', 'X-Other': 'dropped' }));
  t.is(r.status, 200);
  const receipt = JSON.parse(r.body) as { status: string; id: string };
  t.is(receipt.status, 'OK');
  t.regex(receipt.id, /^[0-9a-z]{22}$/);
  const rec = (await dump(crowd, 'leads')).find((d) => d.id === receipt.id);
  // The Content-Type as the client sent it, parameters included (docs/errors.md, issue 17 item 17).
  t.like(rec, { topic: 'leads', key: 's-42', body, method: 'POST', path: '/leads', query: 'utm=1', contentType: 'application/json; charset=utf-8' });
  t.deepEqual(rec!.headers, { 'user-agent': 'raw/1' });
});

test('PUT route with a header key and its own topic', async (t) => {
  const r = await rawRequest(crowd.port, post('/orders/eu', 'plain text order', { 'Content-Type': 'text/plain', 'X-Shop': 'eu-1' }).replace('POST', 'PUT'));
  t.is(r.status, 200);
  const id = (JSON.parse(r.body) as { id: string }).id;
  t.like((await dump(crowd, 'orders')).find((d) => d.id === id), { key: 'eu-1', method: 'PUT', body: 'plain text order' });
});

test('memory ack answers 200 and the message still reaches the log', async (t) => {
  const r = await rawRequest(crowd.port, post('/mem', 'x=1', { 'Content-Type': 'application/x-www-form-urlencoded' }));
  t.is(r.status, 200);
  const id = (JSON.parse(r.body) as { id: string }).id;
  // Memory-only batches are fsynced within flushInterval, later on a busy machine: wait for it.
  t.true(await eventually(async () => (await dumpIds(crowd.dataDir, 'mem')).includes(id)));
});

test('binary body is stored byte for byte and dumped as base64', async (t) => {
  const bin = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
  const req = Buffer.concat([Buffer.from(`POST /mem HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n`), bin]);
  const r = await rawRequest(crowd.port, req);
  t.is(r.status, 200);
  const id = (JSON.parse(r.body) as { id: string }).id;
  await eventually(async () => (await dumpIds(crowd.dataDir, 'mem')).includes(id));
  const rec = (await dump(crowd, 'mem')).find((d) => d.id === id);
  t.is(rec?.bodyEncoding, 'base64');
  t.deepEqual(Buffer.from(rec!.body, 'base64'), bin);
});

test('chunked body in several chunks is reassembled and stored', async (t) => {
  const req = 'POST /leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5\r\n{"sho\r\n' + 'a\r\np":"chunk"\r\n' + '1\r\n}\r\n' + '0\r\n\r\n';
  const r = await rawRequest(crowd.port, req);
  t.is(r.status, 200);
  const id = (JSON.parse(r.body) as { id: string }).id;
  t.like((await dump(crowd, 'leads')).find((d) => d.id === id), { body: '{"shop":"chunk"}', key: 'chunk' });
});

test.serial('400 invalid JSON on a JSON route, nothing stored', async (t) => {
  const before = (await dumpIds(crowd.dataDir)).length;
  const r = await rawRequest(crowd.port, post('/leads', '{"shop":'));
  t.is(r.status, 400);
  t.is(errorCode(r.body), 'CROWD_BAD_JSON');
  t.is(r.headers['content-type'], 'application/json');
  t.is((await dumpIds(crowd.dataDir)).length, before);
});

test('400 invalid UTF-8 on a JSON route', async (t) => {
  const req = Buffer.concat([Buffer.from('POST /leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n'), Buffer.from([0x22, 0xc3, 0x28, 0x22])]);
  const r = await rawRequest(crowd.port, req);
  t.is(r.status, 400);
  t.is(errorCode(r.body), 'CROWD_BAD_UTF8');
});

test('400 when the JSON key points at an object', async (t) => {
  const r = await rawRequest(crowd.port, post('/leads', '{"shop":{"id":1}}'));
  t.is(r.status, 400);
  t.is(errorCode(r.body), 'CROWD_BAD_KEY');
});

test('hostile but valid JSON (__proto__, deep nesting) is stored as sent, crowd stays up', async (t) => {
  const proto = '{"__proto__":{"polluted":true},"shop":"p"}';
  const r1 = await rawRequest(crowd.port, post('/leads', proto));
  t.is(r1.status, 200);
  const deep = '['.repeat(400) + ']'.repeat(400);
  const r2 = await rawRequest(crowd.port, post('/leads', deep));
  t.is(r2.status, 200);
  const deeper = '['.repeat(1000);
  const r3 = await rawRequest(crowd.port, post('/leads', deeper));
  t.is(r3.status, 400);
  t.is(({} as Record<string, unknown>).polluted, undefined);
  const health = await rawRequest(crowd.adminPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is(health.status, 200);
});

test('404 unknown route; HEAD gets no body', async (t) => {
  const r = await rawRequest(crowd.port, post('/nope', '{}'));
  t.is(r.status, 404);
  t.is(errorCode(r.body), 'CROWD_NOT_FOUND');
  const h = await rawRequest(crowd.port, 'HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is(h.status, 404);
  t.is(h.body, '');
});

test('405 wrong method with Allow; HEAD gets no body', async (t) => {
  const r = await rawRequest(crowd.port, 'GET /leads HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is(r.status, 405);
  t.is(r.headers.allow, 'POST');
  t.is(errorCode(r.body), 'CROWD_METHOD_NOT_ALLOWED');
  const p = await rawRequest(crowd.port, post('/orders/eu', 'x', { 'Content-Type': 'text/plain' }));
  t.is(p.status, 405);
  t.is(p.headers.allow, 'PUT, PATCH');
  const h = await rawRequest(crowd.port, 'HEAD /leads HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is(h.status, 405);
  t.is(h.body, '');
});

test('413 when Content-Length is over the limit: answered before the body, connection closed', async (t) => {
  const r = await rawRequest(crowd.port, `POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n`);
  t.is(r.status, 413);
  t.is(errorCode(r.body), 'CROWD_BODY_TOO_LARGE');
  t.true(r.closed);
});

test.serial('413 for a chunked body that grows over the limit while streaming; nothing stored', async (t) => {
  const before = (await dumpIds(crowd.dataDir, 'mem')).length;
  const chunk = 'x'.repeat(60);
  const r = await rawRequest(crowd.port, `POST /mem HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n${chunk}\r\n3c\r\n${chunk}\r\n0\r\n\r\n`);
  t.is(r.status, 413);
  t.true(r.closed);
  await new Promise((res) => setTimeout(res, 200));
  t.is((await dumpIds(crowd.dataDir, 'mem')).length, before);
});

test('415 content type not accepted by the route', async (t) => {
  const r = await rawRequest(crowd.port, post('/leads', 'hello', { 'Content-Type': 'text/plain' }));
  t.is(r.status, 415);
  t.is(errorCode(r.body), 'CROWD_UNSUPPORTED_MEDIA_TYPE');
});

test.serial('framing attacks: 400 or a dropped connection, never a 2xx, nothing smuggled into the log', async (t) => {
  const before = (await dumpIds(crowd.dataDir)).length;
  const smuggled = 'POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nevil!';
  const cases: Array<[string, string, boolean]> = [
    // [name, bytes, crowd answers 400 (true), or the connection is dropped with no answer (false):
    // by uWS itself, or because more bytes were pipelined behind a refused request]
    ['two different Content-Length', 'POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde', true],
    ['two different Content-Length, smuggled request behind', `POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: ${3 + smuggled.length}\r\n\r\nabc${smuggled}`, false],
    ['two equal Content-Length', 'POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', true],
    ['Transfer-Encoding other than chunked', 'POST /mem HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', true],
    ['Transfer-Encoding other than chunked, smuggled request behind', `POST /mem HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n${smuggled}`, false],
    ['Content-Length not a number', 'POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\nabc', false],
    ['Content-Length with Transfer-Encoding', `POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`, false],
    ['bad chunk size', `POST /mem HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n${smuggled}`, false],
    ['no Host', `POST /mem HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc${smuggled}`, false],
  ];
  for (const [name, bytes, answers] of cases) {
    const r = await rawRequest(crowd.port, bytes);
    t.true(r.closed, `${name}: connection closed`);
    if (answers) {
      t.is(r.status, 400, name);
      t.is(errorCode(r.body), 'CROWD_BAD_FRAMING', name);
    } else {
      t.true(r.status === 400 || r.status === 0, `${name}: no answer or 400, got ${r.status}`);
    }
    t.false(r.raw.includes('200 OK'), `${name}: no 2xx`);
  }
  await new Promise((res) => setTimeout(res, 300));
  t.is((await dumpIds(crowd.dataDir)).length, before, 'nothing stored');
});

test('admin paths are not served on the ingest port', async (t) => {
  for (const p of ['/stats', '/metrics', '/healthz', '/readyz']) {
    const r = await rawRequest(dynamic.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
    t.is(r.status, 404, p);
  }
});

test('no config: any POST /<name> goes to topic <name>; bad names are 404', async (t) => {
  const r = await rawRequest(dynamic.port, post('/shop/eu.orders_v-2', '{"a":1}'));
  t.is(r.status, 200);
  const id = (JSON.parse(r.body) as { id: string }).id;
  t.true((await dumpIds(dynamic.dataDir, 'shop/eu.orders_v-2')).includes(id));
  for (const bad of ['/a//b', '/a/../b', '/a b', '/%41', '/']) {
    const b = await rawRequest(dynamic.port, post(bad, '{}'));
    t.true(b.status === 404 || b.status === 400 || b.status === 0, `${bad}: ${b.status}`);
    t.not(b.status, 200);
  }
});

test('admin API: healthz, readyz, stats and metrics', async (t) => {
  const get = (p: string) => rawRequest(crowd.adminPort, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.is((await get('/healthz')).status, 200);
  const ready = await get('/readyz');
  t.is(ready.status, 200);
  const stats = JSON.parse((await get('/stats')).body) as { client: { success: number; failed: number }; routes: Record<string, unknown>; log: { bytes: number; records: number } };
  t.true(stats.client.success > 0);
  t.true(stats.client.failed > 0);
  t.true('/leads' in stats.routes);
  t.true(stats.log.bytes > 0 && stats.log.records > 0);
  const metrics = (await get('/metrics')).body;
  for (const name of ['crowd_requests_total', 'crowd_ack_latency_seconds_bucket', 'crowd_ring_used_bytes', 'crowd_log_fsync_seconds_bucket', 'crowd_log_append_seconds_bucket', 'crowd_log_bytes', 'crowd_process_resident_memory_bytes']) {
    t.true(metrics.includes(name), name);
  }
  t.regex(metrics, /crowd_requests_total\{route="\/leads",status="200"\} [1-9]/);
  t.is((await get('/nope')).status, 404);
  t.is((await rawRequest(crowd.adminPort, 'POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')).status, 405);
});

test('503 + Retry-After once the log quota is reached; readyz says why', async (t) => {
  const small = await startCrowd({ config: { log: { maxLogBytes: 1048576 }, routes: [{ path: '/big', maxBodyBytes: 65536 }] } });
  try {
    const body = 'x'.repeat(60000);
    let first503: Awaited<ReturnType<typeof rawRequest>> | null = null;
    let ok = 0;
    for (let i = 0; i < 40 && !first503; i++) {
      const r = await rawRequest(small.port, post('/big', body, { 'Content-Type': 'text/plain' }));
      if (r.status === 200) ok++;
      else first503 = r;
    }
    t.truthy(first503, 'the quota must be reached');
    t.is(first503!.status, 503);
    t.is(errorCode(first503!.body), 'CROWD_LOG_FULL');
    // No sink consumes this log, so nothing will ever free space: the longest Retry-After.
    t.is(first503!.headers['retry-after'], '60');
    t.false(first503!.closed, 'a refusal after the body keeps the connection');
    t.true(ok >= 15);
    const ready = await rawRequest(small.adminPort, 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    t.is(ready.status, 503);
    t.like(JSON.parse(ready.body), { status: 'error', code: 'CROWD_NOT_READY', message: ERRORS.CROWD_NOT_READY.message });
    t.regex(ready.body, /log quota reached/);
    t.is((await dumpIds(small.dataDir)).length, ok, 'every 200 is in the log, no 503 is');
  } finally {
    small.kill();
    await small.exited;
  }
});

test('429 + Retry-After within [retryAfterSeconds, maxRetryAfterSeconds], however far the next free place is', async (t) => {
  // One request per 10 minutes: the next place is ~600 s away; Retry-After says at most 5.
  const limited = await startCrowd({
    config: { ingest: { retryAfterSeconds: 2, maxRetryAfterSeconds: 5 }, routes: [{ path: '/slow', rateLimit: { perSecond: 1 / 600, burst: 1 } }] },
  });
  try {
    const first = await rawRequest(limited.port, post('/slow', '{}'));
    t.is(first.status, 200);
    const second = await rawRequest(limited.port, post('/slow', '{}'));
    t.is(second.status, 429);
    t.is(errorCode(second.body), 'CROWD_RATE_LIMITED');
    t.is(second.headers['retry-after'], '5');
    t.deepEqual(await dumpIds(limited.dataDir), [JSON.parse(first.body).id]);
  } finally {
    limited.kill();
    await limited.exited;
  }
});

test.serial('smuggling: bytes left after a refused request are never served as a request', async (t) => {
  const before = (await dumpIds(crowd.dataDir, 'mem')).length;
  const inner = 'POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nevil!';
  const attempts = [
    // 413 answered on Content-Length: the unread "body" is a request
    `POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n${inner}${' '.repeat(200 - inner.length)}`,
    // 404 with a body: the body is a request
    `POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`,
    // two Content-Length: uWS uses the first (0), the rest would be the next request
    `POST /mem HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`,
  ];
  for (const a of attempts) {
    const r = await rawRequest(crowd.port, a);
    t.false(r.raw.includes('200 OK'), r.raw.slice(0, 200));
    t.true(r.status === 0 || r.status >= 400);
    t.true(r.closed);
  }
  await new Promise((res) => setTimeout(res, 300));
  t.is((await dumpIds(crowd.dataDir, 'mem')).length, before);
});

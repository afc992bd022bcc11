// The Redis sink against real redis-server processes (test/helpers/redis.ts: one per test, on
// a free loopback port), read back with ioredis. The whole suite runs twice: once with the
// native hiredis writer and once with its pure-JS twin. Serial: the load tests share 2 cores.
import test from 'ava';
import type { Redis } from 'ioredis';
import { decodeEnvelope } from '../src/envelope/envelope-codec.js';
import { runCli, startCrowd, type CrowdProcess } from './helpers/crowd-process.js';
import { faultSeconds, recordFigures } from './helpers/figures.js';
import { loadUntilAcked, runLoad } from './helpers/load.js';
import { post, rawRequest } from './helpers/raw-http.js';
import { startRedis } from './helpers/redis.js';
import { nativeRedis, nativeRedisError } from '../src/native/redis-native.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Entry {
  entryId: string;
  fields: Record<string, string>;
}

async function readStream(client: Redis, key: string): Promise<Entry[]> {
  const rows = await client.xrange(key, '-', '+');
  return rows.map(([entryId, kv]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < kv.length; i += 2) fields[kv[i]] = kv[i + 1];
    return { entryId, fields };
  });
}

/** Waits until the stream holds every acknowledged id (or time is up); counts what is missing. */
async function awaitStream(client: Redis, key: string, acked: Map<string, string>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  let entries: Entry[] = [];
  for (;;) {
    try {
      entries = await readStream(client, key);
    } catch {
      // server restarting: read again
    }
    const ids = new Set(entries.map((e) => e.fields.id));
    if ([...acked.keys()].every((id) => ids.has(id)) || Date.now() > until) break;
    await sleep(300);
  }
  const byId = new Map<string, Entry[]>();
  for (const e of entries) byId.set(e.fields.id, [...(byId.get(e.fields.id) ?? []), e]);
  let missing = 0;
  let wrongBody = 0;
  for (const [id, body] of acked) {
    const got = byId.get(id);
    if (!got) missing++;
    else if (got[0].fields.body !== body) wrongBody++;
  }
  return { acknowledged: acked.size, inStream: entries.length, missing, wrongBody, duplicates: entries.length - byId.size, entries };
}

async function stats(crowd: CrowdProcess): Promise<Record<string, { delivered: number; failed: number; retries: number; healthy: boolean; health: string; backlogBytes: number }>> {
  return (JSON.parse((await rawRequest(crowd.adminPort, 'GET /stats HTTP/1.1\r\nHost: x\r\n\r\n')).body) as { sinks: never }).sinks;
}

async function stopCrowd(c: CrowdProcess): Promise<void> {
  c.kill('SIGTERM');
  await c.exited;
}

async function postId(crowd: CrowdProcess, path: string, body: string, headers?: Record<string, string>): Promise<string> {
  const r = await rawRequest(crowd.port, post(path, body, headers));
  if (r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { id: string }).id;
}

async function eventually<T>(what: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let v = await what();
  while (!ok(v) && Date.now() < until) {
    await sleep(200);
    v = await what();
  }
  return v;
}

for (const driver of ['native', 'js'] as const) {
  const redisSink = (url: string, extra: Record<string, unknown> = {}) => ({ type: 'redis', url, driver, ...extra });

  test.serial(`[${driver}] stream: every acknowledged message under load, with id, body, key, ct and kept headers`, async (t) => {
    const redis = await startRedis();
    const crowd = await startCrowd({
      config: { sinks: { cache: redisSink(redis.url, { stream: 'leads' }) }, routes: [{ path: '/leads', key: 'header:x-shop', keepHeaders: ['x-shop'], sinks: ['cache'] }] },
    });
    try {
      const result = await loadUntilAcked(crowd.port, '/leads', 16, 1500, { extraHeaders: (n) => ({ 'x-shop': `shop-${n % 7}` }) });
      const report = await awaitStream(redis.client(), 'leads', result.acked);
      const { entries, ...figures } = report;
      t.log(figures);
      t.true(result.acked.size >= 1500, `${result.acked.size} acknowledged`);
      t.is(report.missing, 0);
      t.is(report.wrongBody, 0);
      for (const e of entries) {
        const n = (JSON.parse(e.fields.body) as { n: number }).n;
        t.is(e.fields.key, `shop-${n % 7}`);
        t.is(e.fields.ct, 'application/json');
        t.is(e.fields['x-shop'], `shop-${n % 7}`);
      }
      // Stream order is crowd's log order (one lane, one connection, pipelined in order).
      const dump = await runCli(['log', 'dump', '--data-dir', crowd.dataDir, '--topic', 'leads']);
      const logOrder = dump.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
      const inStream = new Set(entries.map((e) => e.fields.id));
      t.deepEqual(entries.map((e) => e.fields.id), logOrder.filter((id) => inStream.has(id)));
      const s = await eventually(() => stats(crowd), (v) => v.cache.backlogBytes === 0);
      t.true(s.cache.delivered >= result.acked.size);
      t.is(s.cache.backlogBytes, 0);
      t.true(s.cache.healthy);
      t.regex(s.cache.health, new RegExp(`${driver} writer`));
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] lists: RPUSH and LPUSH, "{topic}" in the key, items are the bodies as sent`, async (t) => {
    const redis = await startRedis();
    const crowd = await startCrowd({
      config: {
        sinks: { right: redisSink(redis.url, { list: 'q:{topic}' }), left: redisSink(redis.url, { list: 'l:{topic}', push: 'left' }) },
        routes: [{ path: '/a', sinks: ['right', 'left'] }, { path: '/b/c', topic: 'b/c', sinks: ['right'] }],
      },
    });
    try {
      const sentA: string[] = [];
      for (let i = 0; i < 20; i++) {
        const body = JSON.stringify({ a: i, text: 'ünïcode ✓' });
        await postId(crowd, '/a', body);
        sentA.push(body);
      }
      await postId(crowd, '/b/c', 'plain text', { 'Content-Type': 'text/plain' });
      const c = redis.client();
      const right = await eventually(() => c.lrange('q:a', 0, -1), (v) => v.length >= 20);
      const left = await eventually(() => c.lrange('l:a', 0, -1), (v) => v.length >= 20);
      const bc = await eventually(() => c.lrange('q:b/c', 0, -1), (v) => v.length >= 1);
      t.deepEqual(right, sentA);
      t.deepEqual(left, [...sentA].reverse());
      t.deepEqual(bc, ['plain text']);
      t.is(await c.exists('l:b/c'), 0, 'route /b/c does not list sink "left"');
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] maxLen trims the stream (XADD MAXLEN ~)`, async (t) => {
    const redis = await startRedis();
    const crowd = await startCrowd({ config: { sinks: { cache: redisSink(redis.url, { stream: 'capped', maxLen: 200 }) }, routes: [{ path: '/e', sinks: ['cache'] }] } });
    try {
      // Counts, not time: 1,000 acknowledged (5x maxLen), however long a busy machine takes.
      const result = await loadUntilAcked(crowd.port, '/e', 8, 1000);
      t.true(result.acked.size >= 1000, `${result.acked.size} acknowledged`);
      await eventually(() => stats(crowd), (v) => v.cache.backlogBytes === 0);
      const c = redis.client();
      const len = await c.xlen('capped');
      const last = (await c.xrevrange('capped', '+', '-', 'COUNT', 1))[0][1];
      t.log({ acknowledged: result.acked.size, xlen: len });
      // Approximate trimming cuts whole macro nodes (100 entries each by default).
      t.true(len >= 200 && len <= 300, `XLEN ${len}`);
      t.true(result.acked.has(last[last.indexOf('id') + 1]), 'the newest entries are kept');
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] ACL user and password and the database number come from the url; a wrong password leaves the sink unhealthy`, async (t) => {
    const redis = await startRedis(['--user', 'default', 'off', '--user', 'crowd', 'on', '>s3cret:pw', '~*', '+@all', '--user', 'reader', 'on', 'nopass', '~*', '+@all']);
    const crowd = await startCrowd({
      config: {
        sinks: { good: redisSink(`redis://crowd:${encodeURIComponent('s3cret:pw')}@127.0.0.1:${redis.port}/3`, { stream: 'acl' }), bad: redisSink(`redis://crowd:wrong@127.0.0.1:${redis.port}/3`, { stream: 'never' }) },
        routes: [{ path: '/acl', sinks: ['good', 'bad'] }],
      },
    });
    try {
      const id = await postId(crowd, '/acl', '{"x":1}');
      const reader = redis.client(3, { username: 'reader', password: 'anything' });
      const entries = await eventually(() => readStream(reader, 'acl'), (v) => v.length > 0);
      t.deepEqual(entries.map((e) => e.fields.id), [id]);
      await reader.select(0);
      t.is(await reader.exists('acl'), 0, 'nothing in database 0');
      await reader.select(3);
      t.is(await reader.exists('never'), 0);
      const s = await stats(crowd);
      t.false(s.bad.healthy);
      t.regex(s.bad.health, /WRONGPASS/);
      t.true(s.good.healthy);
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] format envelope: stream field "envelope" and list items carry the stored protobuf envelope`, async (t) => {
    const redis = await startRedis();
    const crowd = await startCrowd({
      config: {
        sinks: { s: redisSink(redis.url, { stream: 'env', format: 'envelope' }), l: redisSink(redis.url, { list: 'envl', format: 'envelope' }) },
        routes: [{ path: '/env', keepHeaders: ['x-trace'], sinks: ['s', 'l'] }],
      },
    });
    try {
      const id = await postId(crowd, '/env', '{"hello":"world"}', { 'Content-Type': 'application/json', 'X-Trace': 't-1' });
      const c = redis.client();
      const rows = await eventually(() => c.xrangeBuffer('env', '-', '+'), (v) => v.length > 0);
      const fields = rows[0][1].map((b) => b);
      t.is(fields[0].toString(), 'id');
      t.is(fields[1].toString(), id);
      t.is(fields[2].toString(), 'envelope');
      const env = decodeEnvelope(fields[3]);
      t.is(env.id, id);
      t.is(Buffer.from(env.body).toString(), '{"hello":"world"}');
      t.deepEqual(env.headers.map((h) => [h.name, h.value]), [['x-trace', 't-1']]);
      const items = await eventually(() => c.lrangeBuffer('envl', 0, -1), (v) => v.length > 0);
      t.is(decodeEnvelope(items[0]).id, id);
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] Redis down at start: crowd accepts, the sink is unhealthy, everything arrives once Redis starts`, async (t) => {
    const redis = await startRedis();
    await redis.stop();
    const crowd = await startCrowd({ config: { sinks: { cache: redisSink(redis.url, { stream: 'late' }) }, routes: [{ path: '/late', sinks: ['cache'] }] } });
    try {
      const ready = JSON.parse((await rawRequest(crowd.adminPort, 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n')).body) as { status: string; sinks: Record<string, { healthy: boolean; detail: string }> };
      t.is(ready.status, 'ready');
      t.false(ready.sinks.cache.healthy);
      const result = await loadUntilAcked(crowd.port, '/late', 8, 500);
      t.is(result.refused, 0);
      const s = await stats(crowd);
      t.false(s.cache.healthy);
      t.regex(s.cache.health, /refused/i);
      t.is(s.cache.delivered, 0);
      await redis.restart();
      const report = await awaitStream(redis.client(), 'late', result.acked);
      t.log({ ...report, entries: undefined });
      t.true(result.acked.size >= 500);
      t.is(report.missing, 0);
      t.true((await eventually(() => stats(crowd), (v) => v.cache.healthy)).cache.healthy);
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] Redis killed (SIGKILL) under load and restarted: nothing acknowledged is missing`, async (t) => {
    t.timeout(120_000);
    // appendfsync always: what Redis acknowledged survives its own kill, so anything missing
    // afterwards would be crowd's fault.
    const redis = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    const crowd = await startCrowd({ config: { sinks: { cache: redisSink(redis.url, { stream: 'killed' }) }, routes: [{ path: '/k', sinks: ['cache'] }] } });
    const load = runLoad(crowd.port, '/k', 8);
    let result;
    try {
      await load.untilAcked(500);
      await redis.stop('SIGKILL');
      const atKill = load.acked();
      // The outage lasts until crowd has taken 500 more (and at least the scenario's seconds).
      await Promise.all([load.untilAcked(atKill + 500), sleep(faultSeconds(2, 30) * 1000)]);
      t.is((await rawRequest(crowd.port, post('/k', '{"during":"outage"}'))).status, 200);
      await redis.restart();
      await load.untilAcked(load.acked() + 500);
    } finally {
      result = await load.stop();
    }
    try {
      const report = await awaitStream(redis.client(), 'killed', result.acked);
      recordFigures(t, `Redis SIGKILLed under load, restarted (${driver} writer)`, {
        downSeconds: faultSeconds(2, 30), acknowledged: result.acked.size, missing: report.missing, duplicates: report.duplicates,
        refused: result.refused, clientErrors: result.errors,
      });
      t.true(result.acked.size >= 1500);
      t.is(result.refused, 0);
      t.is(report.missing, 0);
      t.is(report.wrongBody, 0);
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] WRONGTYPE (the key holds a string) goes to the dead letters with its reason; other keys still deliver`, async (t) => {
    const redis = await startRedis();
    const c = redis.client();
    await c.set('taken', 'a string');
    const crowd = await startCrowd({
      config: { sinks: { cache: redisSink(redis.url, { stream: '{topic}' }) }, routes: [{ path: '/taken', sinks: ['cache'] }, { path: '/fine', sinks: ['cache'] }] },
    });
    try {
      const bad = await postId(crowd, '/taken', '{"bad":1}');
      const good = await postId(crowd, '/fine', '{"good":1}');
      const entries = await eventually(() => readStream(c, 'fine'), (v) => v.length > 0);
      t.deepEqual(entries.map((e) => e.fields.id), [good]);
      const dlq = await eventually(async () => {
        const r = await runCli(['log', 'dump', '--data-dir', crowd.dataDir, '--topic', 'taken.dlq']);
        return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; headers: Record<string, string> });
      }, (v) => v.length > 0);
      t.is(dlq.length, 1);
      t.is(dlq[0].id, bad);
      t.regex(dlq[0].headers['crowd-dlq-reason'], /^redis: WRONGTYPE/);
      t.is(dlq[0].headers['crowd-dlq-sink'], 'cache');
      const s = await stats(crowd);
      t.is(s.cache.failed, 1);
      t.is(await c.get('taken'), 'a string', 'the key is left as it was');
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] ack delivered: 200 only once the entry is in Redis; 503 CROWD_ACK_TIMEOUT while Redis is down`, async (t) => {
    const redis = await startRedis();
    const crowd = await startCrowd({
      config: { ingest: { ackTimeout: '2s' }, sinks: { cache: redisSink(redis.url, { stream: 'orders' }) }, routes: [{ path: '/orders', ack: 'delivered', sinks: ['cache'] }] },
    });
    try {
      const c = redis.client();
      for (let i = 0; i < 5; i++) {
        const id = await postId(crowd, '/orders', JSON.stringify({ i }));
        // Read straight after the answer: it must already be in the stream.
        t.true((await readStream(c, 'orders')).some((e) => e.fields.id === id), `id ${id} in Redis when 200 came`);
      }
      await redis.stop();
      const r = await rawRequest(crowd.port, post('/orders', '{"while":"down"}'), 4000);
      t.is(r.status, 503);
      t.is((JSON.parse(r.body) as { code: string }).code, 'CROWD_ACK_TIMEOUT');
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] replies that do not come within replyTimeout drop the connection; the messages are sent again and arrive once`, async (t) => {
    const redis = await startRedis();
    const crowd = await startCrowd({ config: { sinks: { cache: redisSink(redis.url, { stream: 'paused', replyTimeout: '500ms' }) }, routes: [{ path: '/p', sinks: ['cache'] }] } });
    try {
      const admin = redis.client();
      await eventually(() => stats(crowd), (v) => v.cache.healthy);
      // Redis holds every write command for 2.5 s: XADDs get no reply in time.
      await admin.call('CLIENT', 'PAUSE', '2500', 'WRITE');
      const acked = new Map<string, string>();
      for (let i = 0; i < 3; i++) {
        const body = JSON.stringify({ paused: i });
        acked.set(await postId(crowd, '/p', body), body);
      }
      const report = await awaitStream(admin, 'paused', acked, 30_000);
      const s = await stats(crowd);
      t.log({ ...report, entries: undefined, retries: s.cache.retries });
      t.is(report.missing, 0);
      t.is(report.duplicates, 0, 'a command held by CLIENT PAUSE on a dropped connection is never run');
      t.true(s.cache.retries > 0, 'the timed-out batch came back as retries');
      t.regex(crowd.output(), /redis_reply_timeout/);
    } finally {
      await stopCrowd(crowd);
      await redis.stop();
    }
  });

  test.serial(`[${driver}] a dead Redis sink does not hold back a live one`, async (t) => {
    const live = await startRedis();
    const dead = await startRedis();
    await dead.stop();
    const crowd = await startCrowd({
      config: { sinks: { live: redisSink(live.url, { stream: 'live' }), dead: redisSink(dead.url, { stream: 'never' }) }, routes: [{ path: '/events', sinks: ['live', 'dead'] }] },
    });
    try {
      const result = await loadUntilAcked(crowd.port, '/events', 8, 500);
      const report = await awaitStream(live.client(), 'live', result.acked);
      const s = await stats(crowd);
      t.log({ acknowledged: result.acked.size, liveMissing: report.missing, dead: s.dead });
      t.true(result.acked.size >= 500);
      t.is(report.missing, 0);
      t.false(s.dead.healthy);
      t.is(s.dead.delivered, 0);
      t.true(s.dead.backlogBytes > 0, 'the dead sink keeps its backlog in the log');
    } finally {
      await stopCrowd(crowd);
      await live.stop();
    }
  });
}

// The expected writers are written out here, from docs/sinks.md ("auto: native when it is
// built"), not read from the code under test: comparing with its own constant could not fail.
test.serial('driver auto: the native writer when the addon is built; CROWD_NATIVE=0 forces the JS twin', async (t) => {
  t.truthy(nativeRedis, `the hiredis addon must be built for this test (npm run install): ${nativeRedisError}`);
  const redis = await startRedis();
  const config = { sinks: { cache: { type: 'redis', url: redis.url, stream: 'twin' } }, routes: [{ path: '/t', sinks: ['cache'] }] };
  try {
    for (const [env, expected] of [[{}, 'native'], [{ CROWD_NATIVE: '0' }, 'js']] as const) {
      const crowd = await startCrowd({ env, config });
      try {
        const s = await eventually(() => stats(crowd), (v) => v.cache.healthy);
        t.regex(s.cache.health, new RegExp(`${expected} writer`));
      } finally {
        await stopCrowd(crowd);
      }
    }
  } finally {
    await redis.stop();
  }
});

// Every duration in the config and in POST /servers has bounds: "0ms" (a health check ~900
// times a second) and values beyond Node's timer range ("600h" became 1 ms) are refused, in a
// config file with exit 2 and through the admin API with 400 CROWD_INVALID_REQUEST.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { configSchema, serverRegistrationSchema } from '../src/config/schema.js';
import { admin } from './helpers/backend.js';
import { startCrowd, tempDir } from './helpers/crowd-process.js';
import { crowdOutcome } from './helpers/crowd-outcome.js';

/** Every duration field of the config, as [where, a config that sets it to `v`]. */
const sink = (extra: Record<string, unknown>) => ({ sinks: { s: { type: 'http', pool: 'p', ...extra } }, pools: { p: {} } });
const fields: Array<[string, (v: string) => Record<string, unknown>]> = [
  ['/ingest/ackTimeout', (v) => ({ ingest: { ackTimeout: v } })],
  ['/ingest/idleTimeout', (v) => ({ ingest: { idleTimeout: v } })],
  ['/ingest/maxQueueDelay', (v) => ({ ingest: { maxQueueDelay: v } })],
  ['/log/flushInterval', (v) => ({ log: { flushInterval: v } })],
  ['/pools/p/healthCheck/interval', (v) => ({ pools: { p: { healthCheck: { interval: v } } } })],
  ['/pools/p/healthCheck/timeout', (v) => ({ pools: { p: { healthCheck: { timeout: v } } } })],
  ['/sinks/s/timeout', (v) => sink({ timeout: v })],
  ['/sinks/s/ttl', (v) => sink({ ttl: v })],
  ['/sinks/s/backoff/initial', (v) => sink({ backoff: { initial: v } })],
  ['/sinks/s/backoff/max', (v) => sink({ backoff: { max: v } })],
  ['/sinks/k/deliveryTimeout', (v) => ({ sinks: { k: { type: 'kafka', brokers: ['h:9092'], topic: 't', deliveryTimeout: v } } })],
  ['/sinks/r/replyTimeout', (v) => ({ sinks: { r: { type: 'redis', url: 'redis://h', stream: 's', replyTimeout: v } } })],
];

function load(doc: Record<string, unknown>): unknown {
  const file = path.join(tempDir(), 'c.json');
  fs.writeFileSync(file, JSON.stringify(doc));
  return loadConfig({ file, env: {} });
}

for (const [where, doc] of fields) {
  // ttl is never given to a timer (it is compared with a message's age): it may reach 365 days.
  for (const bad of ['0ms', where.endsWith('/ttl') ? '9000h' : '600h', '99999999999999999999h']) {
    test(`config ${where} = "${bad}" is refused, naming the field and the range`, (t) => {
      const e = t.throws(() => load(doc(bad)), { instanceOf: ConfigError });
      t.true(e!.message.includes(where), e!.message);
      t.regex(e!.message, /must be a duration from \S+ to \S+/);
    });
  }
  test(`config ${where} = "2s" is taken`, (t) => {
    t.notThrows(() => load(doc('2s')));
  });
}

/** No duration field may escape the bounds: every string with the duration pattern has durationMs. */
test('every duration in the schemas has bounds within the timer range or says why not', (t) => {
  const unbounded: string[] = [];
  const walk = (node: unknown, at: string) => {
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (typeof o.pattern === 'string' && o.pattern.includes('(ms|s|m|h)')) {
      const r = o.durationMs as [number, number] | undefined;
      if (!r || !(r[0] > 0)) unbounded.push(at);
      // ttl is compared with a message's age, never given to a timer.
      else if (r[1] > 2 ** 31 - 1 && !at.endsWith('/ttl')) unbounded.push(`${at} (beyond the timer range)`);
    }
    for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
  };
  walk(configSchema, 'config');
  walk(serverRegistrationSchema, 'registration');
  t.deepEqual(unbounded, []);
});

test('crowd start with a 0ms health-check interval exits 2 and names the field', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ pools: { p: { servers: ['http://127.0.0.1:9'], healthCheck: { interval: '0ms' } } } }));
  // crowdOutcome kills a crowd that starts anyway (the bug), so a failure never leaves one behind.
  const r = await crowdOutcome({ dataDir: dir, env: { CROWD_CONFIG: file } });
  r.kill('SIGKILL');
  t.is(r.started, null, 'must not start');
  t.is(r.code, 2, r.output());
  t.regex(r.output(), /\/pools\/p\/healthCheck\/interval must be a duration from/);
});

test('POST /servers with an out-of-range check interval or timeout gets 400 CROWD_INVALID_REQUEST', async (t) => {
  const crowd = await startCrowd({ config: { admin: { allowPrivateTargets: true }, pools: { p: {} } } });
  try {
    for (const check of [{ interval: '0ms' }, { interval: '600h' }, { timeout: '0ms' }, { timeout: '600h' }, { interval: '1ms' }]) {
      const r = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'p', ip: '127.0.0.1', port: 9, check });
      t.is(r.status, 400, JSON.stringify(check));
      t.is(r.body.code, 'CROWD_INVALID_REQUEST', JSON.stringify(r.body));
      t.regex(r.body.detail, /must be a duration from/);
    }
    const ok = await admin(crowd.adminPort, 'POST', '/servers', { pool: 'p', ip: '127.0.0.1', port: 9, check: { interval: '1s', timeout: '500ms' } });
    t.is(ok.status, 201, JSON.stringify(ok.body));
  } finally {
    crowd.kill('SIGTERM');
    await crowd.exited;
  }
});

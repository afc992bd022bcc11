// The HTTP sink's parts on their own: its config (schema, defaults, durations, cross-checks),
// Retry-After parsing, and the balancer's choices over real Backend objects.
import test from 'ava';
import { ConfigError, loadConfig } from '../src/config/load.js';
import type { HttpSinkConfig, PoolConfig } from '../src/config/types.js';
import { createLogger } from '../src/logger.js';
import { Backend } from '../src/upstream/backend.js';
import { Balancer } from '../src/upstream/balancer.js';
import { retryAfterMs } from '../src/upstream/answer-class.js';

const pools = { 'leads-api': { servers: ['http://10.0.0.5:8080'] } };
const load = (doc: Record<string, unknown>) => loadConfig({ env: {}, overrides: doc });

test('an http sink and its pool: defaults filled in, durations in ms, frozen', (t) => {
  const c = load({ sinks: { api: { type: 'http', pool: 'leads-api', rate: 500 } }, pools });
  const s = c.sinks.api as unknown as HttpSinkConfig;
  t.like(s, { type: 'http', pool: 'leads-api', concurrency: 16, rate: 500, timeoutMs: 5000, ttlMs: 86_400_000, ordering: 'none', backoffInitialMs: 100, backoffMaxMs: 30_000 });
  const p = c.pools['leads-api'];
  t.deepEqual(p.healthCheck, { type: 'http', path: '/health', intervalMs: 5000, timeoutMs: 2000, unhealthyAfter: 3, healthyAfter: 2 });
  t.like(p, { balance: 'p2c-ewma', ejectAfter: 5, connections: 32, pipelining: 1 });
  t.false(c.admin.allowPrivateTargets);
  t.true(Object.isFrozen(c.pools['leads-api'].healthCheck));
});

test('http sink config mistakes are named', (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ sinks: { api: { type: 'http', pool: 'nope' } }, pools }, /\/sinks\/api\/pool names "nope", which is not in \/pools/],
    [{ sinks: { api: { type: 'http' } }, pools }, /must have required property 'pool'/],
    [{ sinks: { api: { type: 'http', pool: 'leads-api', timeout: '5 seconds' } }, pools }, /\/sinks\/api\/timeout must match pattern/],
    [{ sinks: { api: { type: 'http', pool: 'leads-api', rewrite: { match: '(', replace: '' } } }, pools }, /rewrite\/match is not a regular expression/],
    [{ sinks: { api: { type: 'http', pool: 'leads-api', brokers: [] } }, pools }, /must NOT have additional properties \("brokers"\)/],
    [{ pools: { p: { servers: ['10.0.0.5:8080'] } } }, /\/pools\/p\/servers\/0 must match pattern/],
    [{ pools: { p: { balance: 'random' } } }, /\/pools\/p\/balance must be equal to one of the allowed values/],
    [{ admin: { host: '0.0.0.0' } }, /\/admin\/token is required when \/admin\/host \("0\.0\.0\.0"\) is not a loopback address/],
  ];
  for (const [doc, msg] of bad) {
    const e = t.throws(() => load(doc), { instanceOf: ConfigError }, JSON.stringify(doc));
    t.regex(e!.message, msg);
  }
  t.notThrows(() => load({ admin: { host: '0.0.0.0', token: 'a-token-of-16-chars+' } }));
  t.notThrows(() => load({ admin: { host: '::1' } }));
  t.notThrows(() => load({ admin: { host: '127.0.0.2' } }));
});

test('Retry-After: seconds or an HTTP date, bounded; nothing for what cannot be read', (t) => {
  t.is(retryAfterMs('3'), 3000);
  t.is(retryAfterMs(['2', '9']), 2000);
  const inTen = retryAfterMs(new Date(Date.now() + 10_000).toUTCString())!;
  t.true(inTen > 8000 && inTen <= 10_000, String(inTen));
  t.is(retryAfterMs(new Date(Date.now() - 60_000).toUTCString()), 0);
  t.is(retryAfterMs('999999'), 3_600_000);
  t.is(retryAfterMs('soon'), undefined);
  t.is(retryAfterMs(undefined), undefined);
});

const poolCfg: PoolConfig = {
  servers: [], balance: 'p2c-ewma', ejectAfter: 5, connections: 1, pipelining: 1,
  healthCheck: { type: 'tcp', path: '/', intervalMs: 1000, timeoutMs: 100, unhealthyAfter: 1, healthyAfter: 1 },
};
const log = createLogger('silent', 'test');

function backends(n: number): Backend[] {
  return Array.from({ length: n }, (_, i) => new Backend('p', new URL(`http://10.9.9.${i + 1}:80`), 'config', poolCfg.healthCheck, poolCfg, log, () => 0));
}

test('the balancer never picks a server that is down, draining or paused, and prefers the cheaper of two', async (t) => {
  const bs = backends(4);
  const [up1, up2, down, paused] = bs;
  const now = Date.now();
  up1.state = 'healthy';
  up2.state = 'healthy';
  down.state = 'unhealthy';
  paused.state = 'healthy';
  paused.pausedUntil = now + 60_000;
  up1.ewmaMs = 10;
  up2.ewmaMs = 10;
  up2.inFlight = 5; // cost 60 vs 10
  const b = new Balancer('p2c-ewma');
  const picks = new Map<Backend, number>();
  for (let i = 0; i < 1000; i++) {
    const s = b.pick(bs, undefined, now)!;
    picks.set(s, (picks.get(s) ?? 0) + 1);
  }
  t.deepEqual([...picks.keys()], [up1], 'two candidates: always the cheaper one');
  t.is(b.pick(bs, up1, now), up2, 'a retry avoids the server it failed on when another is there');
  up2.state = 'draining';
  t.is(b.pick(bs, up1, now), up1, '... and takes it when it is the only one');
  up1.state = 'unhealthy';
  t.is(b.pick(bs, undefined, now), null, 'nothing available: no server');
  t.is(b.pick(bs, undefined, now + 61_000), paused, 'a paused server is back after its Retry-After');
  await Promise.all(bs.map((x) => x.close()));
});

test('a server slow once is not starved: its latency average decays while it gets no samples', async (t) => {
  const [s] = backends(1);
  s.ewmaMs = 1000;
  const now = Date.now();
  t.true(Math.abs(s.latencyEstimate(now) - 1000) < 50);
  t.true(s.latencyEstimate(now + 15_000) < 60, 'after three time constants it is worth trying again');
  await s.close();
});

/**
 * Time of one POST /servers registration's durable write (PoolRegistry.register with the file
 * store) at 10 and at 10,000 servers: a figure for the notes, not a test (timings are noisy).
 *   node dist/bench/registry/registration-time.js [servers...]   (default: 10 10000)
 * The N servers are there from the start (an old-format servers.json array that the registry
 * reads at start), so the same script also times the code before the registry store.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { PoolConfig } from '../../src/config/types.js';
import { PoolRegistry, type Registration } from '../../src/upstream/pool-registry.js';

const POOL: PoolConfig = {
  servers: [],
  healthCheck: { type: 'tcp', path: '/', intervalMs: 3_600_000, timeoutMs: 1000, unhealthyAfter: 2, healthyAfter: 1 },
  balance: 'p2c-ewma', ejectAfter: 5, connections: 1, pipelining: 1,
};
const SAMPLES = 200;

function reg(i: number): Registration {
  return { pool: 'api', ip: `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 40000 + (i % 20000), scheme: 'http' };
}

async function measure(n: number): Promise<{ servers: number; medianMs: number; p99Ms: number; meanMs: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crowd-reg-'));
  writeFileSync(path.join(dir, 'servers.json'), JSON.stringify(Array.from({ length: n }, (_, i) => reg(i))));
  const registry = new PoolRegistry({ api: POOL }, dir, true, pino({ level: 'silent' }));
  registry.start();
  await registry.ready();
  if (registry.list().length !== n) throw new Error(`${registry.list().length} servers restored, not ${n}`);
  const times: number[] = [];
  for (let i = n; i < n + SAMPLES; i++) {
    const t0 = performance.now();
    await registry.register(reg(i));
    times.push(performance.now() - t0);
  }
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
  const sorted = [...times].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { servers: n, medianMs: r(sorted[SAMPLES >> 1]), p99Ms: r(sorted[Math.floor(SAMPLES * 0.99)]), meanMs: r(times.reduce((a, b) => a + b, 0) / SAMPLES) };
}

const sizes = process.argv.slice(2).map(Number);
for (const n of sizes.length ? sizes : [10, 10_000]) console.log(JSON.stringify(await measure(n)));

/**
 * `npm start` to ready: spawns `npm start` in the repo (built dist/, ephemeral ports, a fresh
 * data dir each run), times the spawn to crowd's "started" log line, then SIGTERMs the npm pid
 * and waits for it to exit. Prints each run and the median.
 * Run: npm run build && node dist/bench/start/npm-start.js [runs=5]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const runs = Number(process.argv[2] ?? 5);

async function once(): Promise<number> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crowd-bench-start-'));
  const t0 = process.hrtime.bigint();
  const child = spawn('npm', ['start', '--silent'], {
    cwd: repoRoot,
    env: { ...process.env, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0', CROWD_DATA_DIR: dataDir, CROWD_LOG_LEVEL: 'info', npm_config_update_notifier: 'false' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const ms = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`not ready in 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('"event":"started"')) {
        clearTimeout(timer);
        resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    });
    void exited.then(() => reject(new Error(`npm start exited before ready:\n${out}`)));
  }).finally(() => child.kill('SIGTERM'));
  await exited;
  rmSync(dataDir, { recursive: true, force: true });
  return ms;
}

const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const ms = await once();
  times.push(ms);
  console.log(`run ${i + 1}: ${ms.toFixed(0)} ms to ready`);
}
times.sort((a, b) => a - b);
console.log(`npm start to ready, median of ${runs}: ${times[Math.floor(runs / 2)]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[runs - 1]!.toFixed(0)}; ${os.availableParallelism()} cores)`);

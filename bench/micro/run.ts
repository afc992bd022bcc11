/**
 * Micro-benchmarks of the hot functions (suites in bench/micro/suites.ts), one report:
 * bench/results/micro-latest.json and .md.   npm run bench:micro
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeImpl } from '../../src/native/crc32c.js';
import { microBench, redisWriterBench, rows as rowsOf } from './suites.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bench = microBench(500);
await bench.run();
const rows = rowsOf(bench);
const redis = await redisWriterBench(500);
await redis.bench.run();
rows.push(...rowsOf(redis.bench));
await redis.stop();
const meta = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, hardwareCrc: nativeImpl ? 'sse4.2 when available' : 'n/a' };
fs.mkdirSync(path.join(repo, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(repo, 'bench/results/micro-latest.json'), `${JSON.stringify({ meta, rows }, null, 2)}\n`);
const md = [
  `# crowd micro-benchmarks, ${meta.date}`, '', `Node ${meta.node}, ${meta.cpu}. tinybench, 500 ms per task.`, '',
  '| function | ops/s | mean ns | ± % |', '| --- | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.name} | ${r.opsPerSec.toLocaleString('en-US')} | ${r.meanNs.toLocaleString('en-US')} | ${r.rmePct} |`), '',
].join('\n');
fs.writeFileSync(path.join(repo, 'bench/results/micro-latest.md'), md);
process.stdout.write(md);

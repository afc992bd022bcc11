/**
 * The benchmark gate: runs the micro suites several times and compares each hot function
 * with bench/baseline.json by a one-sided Welch t-test over the per-round means. A function
 * fails the gate when it is slower with p < alpha AND by more than the noise margin; one noisy
 * number never decides.
 *
 *   npm run bench:gate                         full mode: 8 rounds, exits 1 on a regression
 *   npm run bench:gate -- --report-only --rounds 3   CI mode: prints the table, never fails
 *   npm run bench:baseline                     records bench/baseline.json (after a justified change)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ttest2 from '@stdlib/stats-ttest2';
import { microBench, rows } from './suites.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const baselineFile = path.join(repo, 'bench/baseline.json');
const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const rounds = arg('--rounds', 8);
const timeMs = arg('--time', 200);
const alpha = arg('--alpha', 0.01);
const margin = arg('--margin', 0.05);
const reportOnly = argv.includes('--report-only');
const record = argv.includes('--record');

interface Baseline {
  meta: { date: string; node: string; cpu: string | undefined; rounds: number; timeMs: number };
  samples: Record<string, number[]>;
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

async function measure(): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`round ${r + 1}/${rounds}\r`);
    const b = microBench(timeMs);
    await b.run();
    for (const row of rows(b)) (samples[row.name] ??= []).push(row.meanNs);
  }
  process.stderr.write('\n');
  return samples;
}

const current = await measure();
if (record) {
  const doc: Baseline = { meta: { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, rounds, timeMs }, samples: current };
  fs.writeFileSync(baselineFile, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`recorded ${Object.keys(current).length} functions in bench/baseline.json\n`);
  process.exit(0);
}
if (!fs.existsSync(baselineFile)) {
  process.stdout.write('no bench/baseline.json: run npm run bench:baseline first\n');
  process.exit(reportOnly ? 0 : 1);
}
const base = JSON.parse(fs.readFileSync(baselineFile, 'utf8')) as Baseline;
const lines = ['| function | baseline ns | now ns | change | p (slower) | verdict |', '| --- | ---: | ---: | ---: | ---: | --- |'];
let regressions = 0;
for (const [name, now] of Object.entries(current)) {
  const was = base.samples[name];
  if (!was || was.length < 2 || now.length < 2) {
    lines.push(`| ${name} | | ${Math.round(mean(now))} | | | new |`);
    continue;
  }
  const change = mean(now) / mean(was) - 1;
  // H1: now > was (slower). Welch: the two runs' variances need not be equal.
  const t = ttest2(now, was, { alternative: 'greater', alpha, variance: 'unequal' });
  const slower = t.rejected && change > margin;
  if (slower) regressions++;
  lines.push(`| ${name} | ${Math.round(mean(was))} | ${Math.round(mean(now))} | ${(change * 100).toFixed(1)}% | ${t.pValue.toFixed(4)} | ${slower ? 'SLOWER' : 'ok'} |`);
}
process.stdout.write(`${lines.join('\n')}\n\n${rounds} rounds of ${timeMs} ms, Welch t-test alpha ${alpha}, margin ${margin * 100}%: ${regressions} regression(s)${reportOnly ? ' (report only)' : ''}\n`);
process.exit(regressions > 0 && !reportOnly ? 1 : 0);

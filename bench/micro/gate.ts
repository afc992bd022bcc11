/**
 * The benchmark gate: runs the micro suites several times and compares each hot function
 * with the baseline by a one-sided Welch t-test over the per-round means. A function fails the
 * gate when it is slower with p < alpha AND by more than the noise margin; one noisy number
 * never decides.
 *
 * The baseline is a revision, measured anew in the same run: bench/baseline.json names it
 * (`rev`), the gate builds that revision's sources in a temporary directory (this checkout's
 * node_modules and native build) and alternates its suites with the current ones, round by
 * round. Numbers stored from another day cannot be compared on this VM, whose speed drifts by
 * tens of percent over hours (docs/benchmarks.md); the stored samples are kept for reference.
 *
 *   npm run bench:gate                         full mode: 8 rounds, exits 1 on a regression
 *   npm run bench:gate -- --report-only --rounds 3   CI mode: prints the table, never fails
 *   npm run bench:gate -- --against <rev>      compare with another revision than the baseline's
 *   npm run bench:baseline                     makes HEAD the baseline (after a justified change)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ttest2 from '@stdlib/stats-ttest2';
import * as currentSuites from './suites.js';

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
const againstArg = argv.includes('--against') ? argv[argv.indexOf('--against') + 1] : null;

interface Baseline {
  /** The baseline revision (a commit), measured again in every gate run. */
  rev?: string;
  meta: { date: string; node: string; cpu: string | undefined; rounds: number; timeMs: number };
  samples: Record<string, number[]>;
}

type Suites = typeof currentSuites;

/** The suites of revision `rev`, built from its sources in a temporary directory. */
async function suitesAt(rev: string): Promise<{ suites: Suites; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crowd-gate-'));
  try {
    const tar = execFileSync('git', ['-C', repo, 'archive', rev], { maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
    fs.symlinkSync(path.join(repo, 'build'), path.join(dir, 'build'));
    execFileSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')], { stdio: 'inherit' });
    return { suites: (await import(path.join(dir, 'dist/bench/micro/suites.js'))) as Suites, dir };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

/** Runs each set of suites once per round, alternating, and returns their samples per function. */
async function measure(sets: Suites[]): Promise<Array<Record<string, number[]>>> {
  const samples = sets.map(() => ({}) as Record<string, number[]>);
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`round ${r + 1}/${rounds}\r`);
    // Alternate which set goes first, so neither always runs on a warmer (or colder) machine.
    const order = r % 2 === 0 ? sets.map((_, i) => i) : sets.map((_, i) => sets.length - 1 - i);
    for (const i of order) {
      const s = sets[i];
      const b = s.microBench(timeMs);
      await b.run();
      for (const row of s.rows(b)) (samples[i][row.name] ??= []).push(row.meanNs);
    }
  }
  process.stderr.write('\n');
  return samples;
}

if (record) {
  const rev = execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  const [current] = await measure([currentSuites]);
  const doc: Baseline = { rev, meta: { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, rounds, timeMs }, samples: current };
  fs.writeFileSync(baselineFile, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`baseline: ${rev} (${Object.keys(current).length} functions)\n`);
  process.exit(0);
}
const stored = fs.existsSync(baselineFile) ? (JSON.parse(fs.readFileSync(baselineFile, 'utf8')) as Baseline) : null;
const against = againstArg ?? stored?.rev ?? null;
let current: Record<string, number[]>;
let was: Record<string, number[]>;
let baseLabel: string;
let base: { suites: Suites; dir: string } | null = null;
if (against) {
  try {
    base = await suitesAt(against);
  } catch (e) {
    // A shallow clone may not have the revision: fall back to the stored samples, and say so.
    process.stdout.write(`baseline revision ${against} cannot be built here (${(e as Error).message.split('\n')[0]}); comparing with the stored samples\n`);
  }
}
if (base) {
  try {
    [current, was] = await measure([currentSuites, base.suites]);
  } finally {
    fs.rmSync(base.dir, { recursive: true, force: true });
  }
  baseLabel = `${against!.slice(0, 10)} (same run)`;
} else if (stored) {
  [current] = await measure([currentSuites]);
  was = stored.samples;
  baseLabel = `stored ${stored.meta.date.slice(0, 10)}`;
} else {
  process.stdout.write('no bench/baseline.json: run npm run bench:baseline first\n');
  process.exit(reportOnly ? 0 : 1);
}
const lines = [`| function | baseline ns, ${baseLabel} | now ns | change | p (slower) | verdict |`, '| --- | ---: | ---: | ---: | ---: | --- |'];
let regressions = 0;
for (const [name, now] of Object.entries(current)) {
  const before = was[name];
  if (!before || before.length < 2 || now.length < 2) {
    lines.push(`| ${name} | | ${Math.round(mean(now))} | | | new |`);
    continue;
  }
  const change = mean(now) / mean(before) - 1;
  // H1: now > before (slower). Welch: the two runs' variances need not be equal.
  const t = ttest2(now, before, { alternative: 'greater', alpha, variance: 'unequal' });
  const slower = t.rejected && change > margin;
  if (slower) regressions++;
  lines.push(`| ${name} | ${Math.round(mean(before))} | ${Math.round(mean(now))} | ${(change * 100).toFixed(1)}% | ${t.pValue.toFixed(4)} | ${slower ? 'SLOWER' : 'ok'} |`);
}
process.stdout.write(`${lines.join('\n')}\n\n${rounds} rounds of ${timeMs} ms, Welch t-test alpha ${alpha}, margin ${margin * 100}%: ${regressions} regression(s)${reportOnly ? ' (report only)' : ''}\n`);
process.exit(regressions > 0 && !reportOnly ? 1 : 0);

/**
 * Figures of the fault and hostile-input scenarios. Each scenario logs its numbers (t.log)
 * and, when CROWD_FIGURES_FILE is set (`npm run test:faults`), appends them as one JSON line;
 * scripts/render-reliability.mjs turns those lines into the results table of
 * docs/reliability.md. CROWD_FAULTS_LONG=1 (set by `npm run test:faults`) runs the long
 * versions of the timed scenarios; `npm test` runs the short ones.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';

export const longFaults = process.env.CROWD_FAULTS_LONG === '1';

/** Seconds a timed scenario runs: short in `npm test`, long in `npm run test:faults`. */
export function faultSeconds(short: number, long: number): number {
  return longFaults ? long : short;
}

export function recordFigures(t: ExecutionContext, scenario: string, figures: Record<string, unknown>): void {
  t.log(scenario, figures);
  const file = process.env.CROWD_FIGURES_FILE;
  if (file) appendFileSync(file, JSON.stringify({ scenario, mode: longFaults ? 'long' : 'short', at: new Date().toISOString(), figures }) + '\n');
}

/** Resident memory of a process, MB: now and its peak so far (VmRSS, VmHWM). */
export function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakRssMb: Math.round(kb('VmHWM') / 1024) };
}

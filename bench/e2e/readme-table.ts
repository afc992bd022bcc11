/**
 * The README's "How fast" table, made from a full bench:e2e run's outcomes (so the figures in
 * the README are always the latest full run's, never typed by hand). run.ts calls this after a
 * run of every case; it replaces what is between the two markers in README.md.
 */
import fs from 'node:fs';

export interface ReadmeOutcome {
  id: string;
  name: string;
  reqPerSec: number;
  latencyMs: { p50: number; p99: number };
  ratioToCeiling?: number;
  /** vs its floor: the one-thread durable server (durable) or the checks-only floor (memory). */
  ratioToFloor?: number;
  floorId?: string;
  ratioToBaselineE2E?: number;
  baselineId?: string;
  endToEndPerSec?: number;
  drainPerSec?: number;
  forwardRatio?: number;
  deliveryLatencyMs?: { p50: number; p99: number };
  backendRate?: { perSec: number; deviation: number };
  verdict?: string;
}

const BEGIN = '<!-- bench:e2e table begin (written by bench/e2e/run.ts) -->';
const END = '<!-- bench:e2e table end -->';

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const pct = (x?: number) => (x === undefined ? '' : `${Math.round(x * 100)}%`);
const lat = (o: ReadmeOutcome) => `${o.latencyMs.p50.toFixed(2)} / ${o.latencyMs.p99.toFixed(2)}`;

/** One README row per case that has something to say; by case id prefix. */
function row(o: ReadmeOutcome, byId: Map<string, ReadmeOutcome>): string | null {
  // "MISSED >= 85% (goal ...)" -> "; target: missed >= 85%"
  const verdict = o.verdict ? `; target: ${o.verdict.split(' (')[0].replace(/^(MET|MISSED)/, (w) => w.toLowerCase())}` : '';
  if (o.drainPerSec !== undefined) return `| ${o.name} | ${n(o.drainPerSec)} msg/s | | ${pct(o.forwardRatio)} of durable ingest${verdict} |`;
  if (o.backendRate) return `| ${o.name} | ${n(o.backendRate.perSec)}/s at the backend | | ${(o.backendRate.deviation * 100).toFixed(1)}% off the limit${verdict} |`;
  if (o.endToEndPerSec !== undefined && o.deliveryLatencyMs) {
    const b = o.baselineId ? byId.get(o.baselineId) : undefined;
    const vs = o.ratioToBaselineE2E ? `${o.ratioToBaselineE2E.toFixed(1)}x ${b?.name.split(',')[0].replace('baseline: ', '') ?? 'baseline'} (${n(b?.endToEndPerSec ?? 0)})` : pct(o.forwardRatio) ? `${pct(o.forwardRatio)} of durable ingest` : '';
    return `| ${o.name}, accepted **and delivered** | ${n(o.endToEndPerSec)} msg/s | delivery ${o.deliveryLatencyMs.p50} / ${o.deliveryLatencyMs.p99} | ${vs}${verdict} |`;
  }
  if (/^(07|15)/.test(o.id)) return null; // shown beside their crowd rows
  const ceiling = o.ratioToCeiling !== undefined ? pct(o.ratioToCeiling) : /^01c?-/.test(o.id) ? '100%' : '';
  const floor = o.ratioToFloor !== undefined ? `${o.ratioToFloor.toFixed(2)}x its floor (${o.floorId?.split('-')[0]})` : '';
  const ratio = [ceiling, floor].filter(Boolean).join(', ');
  return `| ${o.name} | ${n(o.reqPerSec)} | ${lat(o)} | ${ratio}${ratio ? verdict : verdict.slice(2)} |`;
}

export function writeReadmeTable(readmePath: string, outcomes: ReadmeOutcome[], runName: string): boolean {
  const readme = fs.readFileSync(readmePath, 'utf8');
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) return false;
  const byId = new Map(outcomes.map((o) => [o.id, o]));
  const rows = outcomes.filter((o) => !o.id.match(/^1[0-4]-/)).map((o) => row(o, byId)).filter((r): r is string => r !== null);
  const table = [
    BEGIN,
    `Run \`${runName}\` ([bench/results/${runName}.md](bench/results/${runName}.md)); req/s is the median round where a case ran in rounds.`,
    '',
    '| case | rate | p50 / p99 ms | vs bare uWS, vs its floor, or vs the baseline (target) |',
    '| --- | ---: | ---: | --- |',
    ...rows,
    END,
  ].join('\n');
  fs.writeFileSync(readmePath, readme.slice(0, a) + table + readme.slice(b + END.length));
  return true;
}

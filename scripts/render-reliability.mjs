// Renders the figures the fault scenarios recorded (JSON lines, test/helpers/figures.ts) into
// the results table of docs/reliability.md, between its "figures" markers. Usage:
//   node scripts/render-reliability.mjs <figures.jsonl> <docs/reliability.md>
import { readFileSync, writeFileSync } from 'node:fs';

const [figuresFile, doc] = process.argv.slice(2);
const rows = readFileSync(figuresFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
if (rows.length === 0) {
  console.error('render-reliability: no figures recorded; docs left as they are');
  process.exit(0);
}
const cell = (v) => (typeof v === 'object' && v !== null ? Object.entries(v).map(([k, x]) => `${k} ${x}`).join(', ') : String(v));
const table = [
  `Recorded ${rows[0].at.slice(0, 16).replace('T', ' ')} UTC by \`npm run test:faults\` (${rows[0].mode} mode), on this repo's 2-core benchmark machine.`,
  '',
  '| scenario | figures |',
  '| --- | --- |',
  ...rows.map((r) => `| ${r.scenario} | ${Object.entries(r.figures).map(([k, v]) => `${k}: ${cell(v)}`).join('; ').replace(/\|/g, '\\|')} |`),
].join('\n');
const text = readFileSync(doc, 'utf8');
const start = '<!-- figures:start -->';
const end = '<!-- figures:end -->';
const i = text.indexOf(start);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`${doc} has no ${start} ... ${end} markers`);
writeFileSync(doc, `${text.slice(0, i + start.length)}\n${table}\n${text.slice(j)}`);
console.log(`render-reliability: ${rows.length} scenarios written to ${doc}`);

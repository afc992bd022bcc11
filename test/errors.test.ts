// One table of error codes: every code is documented in docs/errors.md with its status.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ERRORS, ERROR_BODIES, errorDocument } from '../src/errors.js';
import { repoRoot } from './helpers/crowd-process.js';

const doc = fs.readFileSync(path.join(repoRoot, 'docs/errors.md'), 'utf8');

for (const [code, spec] of Object.entries(ERRORS)) {
  test(`${code} is documented with status ${spec.status}`, (t) => {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    t.truthy(row, `docs/errors.md has no row for ${code}`);
    t.is(row!.split('|')[2].trim(), String(spec.status));
  });
}

test('every body is the stable JSON shape', (t) => {
  for (const [code, body] of Object.entries(ERROR_BODIES)) {
    t.deepEqual(Object.keys(JSON.parse(body) as object), ['status', 'code', 'message']);
    t.is((JSON.parse(body) as { code: string }).code, code);
  }
});

test('an error document with more fields (admin API): the table\'s status, code and message first', (t) => {
  const doc = errorDocument('CROWD_NOT_READY', { reasons: ['log quota reached'] });
  t.deepEqual(doc, { status: 'error', code: 'CROWD_NOT_READY', message: ERRORS.CROWD_NOT_READY.message, reasons: ['log quota reached'] });
  t.deepEqual(Object.keys(doc), ['status', 'code', 'message', 'reasons']);
  t.is(ERROR_BODIES.CROWD_INTERNAL, `{"status":"error","code":"CROWD_INTERNAL","message":${JSON.stringify(ERRORS.CROWD_INTERNAL.message)}}`);
});

test('no documented code is unknown to the table', (t) => {
  const documented = [...doc.matchAll(/^\| `(CROWD_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.deepEqual(documented.filter((c) => !(c in ERRORS)), []);
});

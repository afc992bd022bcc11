// Builds crowd's own N-API addon (binding.gyp) at `npm install`, against the headers of the
// Node that runs the install (<prefix>/include/node), never downloading any. If the build
// fails, crowd still runs on the pure-JS twin (src/native/), and says so at start; CI fails
// the native test instead (test/native.test.ts), so a broken build cannot go unnoticed.
// The Redis writer (target crowd_redis) links Debian's libhiredis (libhiredis-dev: .ci/run and
// scripts/run-tests.sh install it); without it only crowd_core is built and the Redis sink's
// `driver: native` tests fail.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { HIREDIS_HEADERS, hasHiredis } from './hiredis-headers.mjs';

const nodedir = path.dirname(path.dirname(process.execPath));
const headers = path.join(nodedir, 'include', 'node', 'node_api.h');
if (!existsSync(headers)) {
  console.warn(`crowd: no Node headers at ${headers}; skipping the native addon (the JS twin will be used)`);
  process.exit(0);
}
if (!hasHiredis()) {
  console.warn(`crowd: no hiredis headers (${HIREDIS_HEADERS.join(', ')}); building without the native Redis writer (apt-get install libhiredis-dev, then npm run install)`);
}
const gyp = process.env.npm_config_node_gyp ?? 'node-gyp';
const args = gyp.endsWith('.js') ? [gyp] : [];
const cmd = gyp.endsWith('.js') ? process.execPath : gyp;
const r = spawnSync(cmd, [...args, 'rebuild', `--nodedir=${nodedir}`, '--jobs=2'], { stdio: 'inherit' });
if (r.status !== 0) {
  // r.error: node-gyp could not be started at all (not on PATH outside npm, which sets npm_config_node_gyp).
  console.warn(`crowd: native addon build failed${r.error ? ` (${cmd}: ${r.error.message})` : ''}; the JS twin will be used`);
}

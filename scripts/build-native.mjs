// Builds crowd's own N-API addon (binding.gyp) at `npm install`, against the headers of the
// Node that runs the install (<prefix>/include/node), never downloading any. If the build
// fails, crowd still runs on the pure-JS twin (src/native/), and says so at start; CI fails
// the native test instead (test/native.test.ts), so a broken build cannot go unnoticed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const nodedir = path.dirname(path.dirname(process.execPath));
const headers = path.join(nodedir, 'include', 'node', 'node_api.h');
if (!existsSync(headers)) {
  console.warn(`crowd: no Node headers at ${headers}; skipping the native addon (the JS twin will be used)`);
  process.exit(0);
}
const gyp = process.env.npm_config_node_gyp ?? 'node-gyp';
const args = gyp.endsWith('.js') ? [gyp] : [];
const cmd = gyp.endsWith('.js') ? process.execPath : gyp;
const r = spawnSync(cmd, [...args, 'rebuild', `--nodedir=${nodedir}`, '--jobs=2'], { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('crowd: native addon build failed; the JS twin will be used');
}

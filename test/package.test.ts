/**
 * The npm package as a user gets it: `npm pack` the repo, `npm install` the tarball into a
 * fresh project (native addons built at install, as npm 11 allows them through the project's
 * `allowScripts`), then run `npx crowd --version`, `npx crowd start` (ready, one message
 * stored, SIGTERM), `npx crowd log dump`, and `import('crowd')`. Slow (node-rdkafka builds from
 * source, ~2 min on 2 cores): this is the suite's one install.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';
import { alive, spawnUntilStarted, waitGone } from './helpers/started-process.js';

const nodedir = path.dirname(path.dirname(process.execPath));
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

// Serial steps, each its own test: ava's inactivity timeout (package.json "ava.timeout") counts
// from the last finished test, and the install alone takes minutes.
let tarball = '';
let project = '';
const env = { ...process.env, npm_config_nodedir: nodedir, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

test.serial('npm pack: the built code and the addon sources, no tests or bench', (t) => {
  const packDir = tempDir('crowd-pack-');
  execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  tarball = path.join(packDir, readdirSync(packDir).find((f) => f.endsWith('.tgz'))!);

  // No tests, bench code or results in the tarball; the built code and the addon's sources are.
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
  t.deepEqual(files.filter((f) => /^package\/(dist\/)?(test|bench)\//.test(f) || /\.test\.js$/.test(f)), []);
  for (const f of ['package/dist/src/cli.js', 'package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/dist/workers/lane.js', 'package/binding.gyp', 'package/proto/crowd.proto']) {
    t.true(files.includes(f), `${f} is in the tarball`);
  }

});

test.serial('npm install of the tarball in a fresh project builds the native addons', (t) => {
  t.timeout(12 * 60_000);
  t.truthy(tarball, 'packed');
  project = tempDir('crowd-user-');
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'crowd-user', version: '1.0.0', private: true, type: 'module', allowScripts: { crowd: true, 'node-rdkafka': true } }));
  const install = spawnSync('npm', ['install', '--prefer-offline', tarball], { cwd: project, env, encoding: 'utf8' });
  t.is(install.status, 0, `npm install failed:\n${install.stdout}\n${install.stderr}`);
  // The addon was built at install, not left to the JS twin.
  t.truthy(readdirSync(path.join(project, 'node_modules/crowd/build/Release')).find((f) => f === 'crowd_core.node'));
});

const npx = (args: string[], extra: Record<string, string> = {}) => spawnSync('npx', ['--no-install', 'crowd', ...args], { cwd: project, env: { ...env, ...extra }, encoding: 'utf8' });

test.serial('npx crowd --version, start (SIGTERM), log dump and import(\'crowd\') work from the installed package', async (t) => {
  t.timeout(3 * 60_000);
  t.truthy(project, 'installed');

  const v = npx(['--version']);
  t.is(v.status, 0, v.stderr);
  t.is(v.stdout.trim(), version);

  const dataDir = tempDir('crowd-user-data-');
  const crowd = await spawnUntilStarted('npx', ['--no-install', 'crowd', 'start'], {
    cwd: project,
    dataDir,
    env: { ...env, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0', CROWD_DATA_DIR: dataDir, CROWD_LOG_LEVEL: 'info' },
  });
  try {
    const a = await rawExchange(crowd.port, post('/leads', '{"message":"from the package"}'));
    t.is(a.status, 200, a.raw);
    const id = (JSON.parse(a.body) as { id: string }).id;
    // SIGTERM to crowd itself, as a manager running the installed bin does (npx does not pass
    // a SIGTERM on: it dies of it; `npm start` does, test/npm-start.test.ts): it drains, exits
    // 0, and npx exits with it.
    process.kill(crowd.crowdPid, 'SIGTERM');
    t.is(await crowd.exited, 0, crowd.output());
    t.true(await waitGone(crowd.crowdPid), `crowd pid ${crowd.crowdPid} still running after SIGTERM`);
    t.regex(crowd.output(), /"signal":"SIGTERM"/);

    const dump = npx(['log', 'dump', '--data-dir', dataDir]);
    t.is(dump.status, 0, dump.stderr);
    const lines = dump.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; topic: string });
    t.deepEqual(lines.map((l) => l.id), [id]);
  } finally {
    // A failed assertion above must not leave a crowd behind: kill by its own pids only.
    for (const pid of [crowd.child.pid, crowd.crowdPid]) if (pid && pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  }

  // The library entry resolves through "exports" from the user's project.
  const imp = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('crowd'); console.log(typeof m.loadConfig, typeof m.verifyLog)"], { cwd: project, encoding: 'utf8' });
  t.is(imp.status, 0, imp.stderr);
  t.is(imp.stdout.trim(), 'function function');
});

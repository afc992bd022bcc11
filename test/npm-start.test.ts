/**
 * `npm start` is what a process manager runs and signals: it runs the built code with no
 * compile step, and a SIGTERM to the npm pid reaches crowd, which drains and exits, leaving no
 * crowd running. crowd's pid is the one in its data dir's lock file.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';
import { alive, spawnUntilStarted, waitGone } from './helpers/started-process.js';

test('npm start has no build step', (t) => {
  const scripts = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  t.false('prestart' in scripts);
  t.notRegex(scripts.start!, /tsc|build/);
  t.regex(scripts.prepare ?? '', /build/, 'dist/ is built at npm install and npm pack');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} to the npm start pid stops crowd, none left running`, async (t) => {
    const dataDir = tempDir();
    const run = await spawnUntilStarted('npm', ['start', '--silent'], {
      cwd: repoRoot,
      dataDir,
      env: { ...process.env, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0', CROWD_DATA_DIR: dataDir, CROWD_LOG_LEVEL: 'info', npm_config_update_notifier: 'false' },
    });
    try {
      t.true(run.crowdPid > 0 && alive(run.crowdPid));
      const a = await rawExchange(run.port, post('/leads', '{"message":"hi"}'));
      t.is(a.status, 200, a.raw);
      run.child.kill(signal);
      const code = await run.exited;
      t.true(await waitGone(run.crowdPid), `crowd pid ${run.crowdPid} still running after ${signal} to npm pid ${run.child.pid}:\n${run.output()}`);
      t.is(code, 0, run.output());
      t.regex(run.output(), new RegExp(`"signal":"${signal}"`));
    } finally {
      for (const pid of [run.child.pid, run.crowdPid]) if (pid && pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
}

// One crowd per data dir, by a kernel lock (flock on <dataDir>/crowd.lock, held by the main
// process for its life), not by a pid check: a second crowd refuses with exit 70 and one line
// naming the dir, also when both are pid 1 in their own pid namespaces (containers sharing a
// volume); the lock goes with the holder (kill -9); a lock file naming some unrelated live pid
// does not stop a start.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { dumpIds, tempDir } from './helpers/crowd-process.js';
import { crowdOutcome, type Outcome } from './helpers/crowd-outcome.js';
import { post, rawExchange } from './helpers/raw-http.js';

const isRoot = process.getuid?.() === 0;

async function stopAll(list: Outcome[]): Promise<void> {
  for (const o of list) {
    o.kill('SIGKILL');
    await o.exited;
  }
}

async function store(port: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await rawExchange(port, post('/x', JSON.stringify({ i })));
    if (r.status !== 200) throw new Error(`POST answered ${r.status}: ${r.body}`);
    ids.push((JSON.parse(r.body) as { id: string }).id);
  }
  return ids;
}

/** The refusal is one line on stderr/stdout, names the data dir, and carries no stack trace. */
function assertOneLineRefusal(t: import('ava').ExecutionContext, o: Outcome, dataDir: string): void {
  t.is(o.started, null, `the second crowd must not start:\n${o.output()}`);
  t.is(o.code, 70, o.output());
  const lines = o.output().split('\n').filter((l) => l.trim() !== '');
  t.is(lines.length, 1, `one line, got:\n${o.output()}`);
  t.true(lines[0].includes(dataDir), lines[0]);
  t.false(/\n\s+at /.test(o.output()) || lines[0].includes('"stack"'), 'no stack trace');
}

for (const stale of ['self', '1']) {
  test(`a lock file naming an unrelated live process (${stale}) does not stop a start`, async (t) => {
    const dataDir = tempDir();
    // The test's own pid (live, not a crowd) or 1 (always live): the old pid check refused both.
    fs.writeFileSync(path.join(dataDir, 'crowd.lock'), `${stale === 'self' ? process.pid : 1}\n`);
    const a = await crowdOutcome({ dataDir });
    try {
      t.truthy(a.started, `crowd must start over a stale lock file:\n${a.output()}`);
      t.is((await store(a.started!.port, 3)).length, 3);
    } finally {
      await stopAll([a]);
    }
  });
}

test('a second crowd on a held data dir refuses (exit 70, one line); kill -9 of the holder frees it', async (t) => {
  const dataDir = tempDir();
  const a = await crowdOutcome({ dataDir });
  const all = [a];
  try {
    t.truthy(a.started, a.output());
    const acked = await store(a.started!.port, 20);
    const b = await crowdOutcome({ dataDir });
    all.push(b);
    assertOneLineRefusal(t, b, dataDir);
    t.true(b.output().includes(String(a.child.pid)), `names the holder's pid: ${b.output()}`);
    a.kill('SIGKILL');
    await a.exited;
    const c = await crowdOutcome({ dataDir });
    all.push(c);
    t.truthy(c.started, `the lock goes with its holder:\n${c.output()}`);
    acked.push(...(await store(c.started!.port, 5)));
    c.kill('SIGTERM');
    t.is(await c.exited, 0);
    const stored = new Set(await dumpIds(dataDir));
    t.deepEqual(acked.filter((id) => !stored.has(id)), []);
  } finally {
    await stopAll(all);
  }
});

(isRoot ? test : test.skip)('two crowds that are both pid 1 (own pid namespaces) on one data dir: the second refuses', async (t) => {
  const dataDir = tempDir();
  // Each crowd is pid 1 of its own pid namespace, as in two containers sharing a volume.
  const wrap = ['unshare', '--pid', '--fork', '--kill-child'];
  const a = await crowdOutcome({ dataDir, wrap });
  const all = [a];
  try {
    t.truthy(a.started, a.output());
    t.is(fs.readFileSync(path.join(dataDir, 'crowd.lock'), 'utf8').split(/\s/)[0], '1', 'the holder is pid 1 in its namespace');
    const acked = await store(a.started!.port, 20);
    const b = await crowdOutcome({ dataDir, wrap });
    all.push(b);
    assertOneLineRefusal(t, b, dataDir);
    a.kill('SIGKILL');
    await a.exited;
    // unshare is gone; its child (pid 1 of the namespace) gets SIGKILL from the kernel right
    // after, and the lock goes with it: a new crowd starts within a few attempts.
    let c = await crowdOutcome({ dataDir, wrap });
    all.push(c);
    for (let i = 0; i < 20 && !c.started && c.code === 70; i++) {
      await new Promise((r) => setTimeout(r, 100));
      c = await crowdOutcome({ dataDir, wrap });
      all.push(c);
    }
    t.truthy(c.started, c.output());
    // unshare does not pass SIGTERM on to its child; kill -9 loses nothing acknowledged.
    c.kill('SIGKILL');
    await c.exited;
    const stored = new Set(await dumpIds(dataDir));
    t.deepEqual(acked.filter((id) => !stored.has(id)), []);
  } finally {
    await stopAll(all);
  }
});

/**
 * The CLI around `crowd start`: --version, `config check FILE`, where `log dump|verify` find
 * their data dir (--data-dir, CROWD_DATA_DIR, the config's dataDir), a data dir that is missing
 * or holds no log (exit 2, never a silent ok), and the environment variables in every help text.
 */
import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, runCli, startCrowd, tempDir } from './helpers/crowd-process.js';
import { post, rawExchange } from './helpers/raw-http.js';

const ENV_VARS = ['CROWD_CONFIG', 'CROWD_PORT', 'CROWD_ADMIN_PORT', 'CROWD_DATA_DIR', 'CROWD_LOG_LEVEL'];
// The tests' own environment must not choose a data dir or config for the CLI under test.
const clean = { CROWD_DATA_DIR: '', CROWD_CONFIG: '' };

/** A data dir holding a log with one message; its id. */
async function dataDirWithOneMessage(): Promise<{ dataDir: string; id: string }> {
  const c = await startCrowd();
  try {
    const a = await rawExchange(c.port, post('/leads', '{"message":"one"}'));
    if (a.status !== 200) throw new Error(a.raw);
    return { dataDir: c.dataDir, id: (JSON.parse(a.body) as { id: string }).id };
  } finally {
    c.kill('SIGTERM');
    await c.exited;
  }
}

const ids = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);

test('--version prints the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag]);
    t.is(r.code, 0);
    t.is(r.stdout.trim(), version);
  }
});

test('config check prints the effective config with the defaults filled in', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'crowd.yaml');
  writeFileSync(file, 'listen:\n  port: 3001\nlogLevel: warn\n');
  const r = await runCli(['config', 'check', file], clean);
  t.is(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout) as { listen: { port: number; host: string }; admin: { port: number }; logLevel: string; dataDir: string; log: { segmentBytes: number } };
  t.is(c.listen.port, 3001);
  t.is(c.logLevel, 'warn');
  t.is(c.listen.host, '0.0.0.0'); // defaults from the schema
  t.is(c.admin.port, 2105);
  t.true(Number.isInteger(c.log.segmentBytes) && c.log.segmentBytes > 0);
  t.true(path.isAbsolute(c.dataDir));
  // The environment is part of the effective config, as at `crowd start`.
  const e = await runCli(['config', 'check', file], { ...clean, CROWD_PORT: '4002' });
  t.is((JSON.parse(e.stdout) as { listen: { port: number } }).listen.port, 4002);
});

const invalid: Array<[string, string, string, RegExp]> = [
  ['wrong type', 'crowd.yaml', 'listen:\n  port: "x"\n', /\/listen\/port must be integer/],
  ['unknown field', 'crowd.yaml', 'listne:\n  port: 1\n', /additional properties.*listne/],
  ['value not allowed', 'crowd.json', '{"ingest":{"ackWait":"sometimes"}}', /\/ingest\/ackWait/],
  ['not YAML', 'crowd.yaml', 'listen: [\n', /not valid YAML/],
  ['not JSON', 'crowd.json', '{"listen":', /not valid JSON/],
  ['top level not an object', 'crowd.yaml', '- 1\n- 2\n', /top level must be an object/],
  ['derived check', 'crowd.yaml', 'ingest:\n  ringBytes: 1000000\n', /power of two/],
];
for (const [name, base, text, message] of invalid) {
  test(`config check: ${name} exits 2 with the schema's message`, async (t) => {
    const file = path.join(tempDir(), base);
    writeFileSync(file, text);
    const r = await runCli(['config', 'check', file], clean);
    t.is(r.code, 2);
    t.is(r.stdout, '');
    t.regex(r.stderr, message);
    if (name !== 'derived check') t.true(r.stderr.includes(file), r.stderr); // derived checks name the field only
  });
}

test('config check: a missing file exits 2', async (t) => {
  const r = await runCli(['config', 'check', path.join(tempDir(), 'none.yaml')], clean);
  t.is(r.code, 2);
  t.regex(r.stderr, /cannot read config file/);
});

test('log dump and verify find the data dir from --data-dir, CROWD_DATA_DIR, or the config', async (t) => {
  const { dataDir, id } = await dataDirWithOneMessage();
  const cfgDir = tempDir();
  const cfg = path.join(cfgDir, 'crowd.json');
  writeFileSync(cfg, JSON.stringify({ dataDir }));
  const elsewhere = tempDir(); // holds no log: whichever source wins must not be this one
  const cases: Array<[string, string[], Record<string, string>]> = [
    ['--data-dir', ['--data-dir', dataDir], clean],
    ['--data-dir over CROWD_DATA_DIR', ['--data-dir', dataDir], { CROWD_DATA_DIR: elsewhere, CROWD_CONFIG: '' }],
    ['CROWD_DATA_DIR', [], { CROWD_DATA_DIR: dataDir, CROWD_CONFIG: '' }],
    ['--config', ['--config', cfg], clean],
    ['CROWD_CONFIG', [], { CROWD_CONFIG: cfg, CROWD_DATA_DIR: '' }],
  ];
  for (const [how, args, env] of cases) {
    const d = await runCli(['log', 'dump', ...args], env);
    t.is(d.code, 0, `${how}: ${d.stderr}`);
    t.deepEqual(ids(d.stdout), [id], how);
    const v = await runCli(['log', 'verify', '--no-repair', ...args], env);
    t.is(v.code, 0, `${how}: ${v.stderr}`);
    const report = JSON.parse(v.stdout) as { dataDir: string; records: number; ok: boolean };
    t.true(report.ok, how);
    t.is(report.records, 1, how);
  }
});

test('log dump and verify: a data dir that is missing, empty, a file or holds no log exits 2', async (t) => {
  const base = tempDir();
  const empty = path.join(base, 'empty');
  mkdirSync(empty);
  const noLog = path.join(base, 'nolog');
  mkdirSync(path.join(noLog, 'log'), { recursive: true });
  writeFileSync(path.join(noLog, 'crowd.lock'), '');
  const file = path.join(base, 'a-file');
  writeFileSync(file, 'x');
  const cases: Array<[string, string, RegExp]> = [
    ['missing', path.join(base, 'nope'), /does not exist/],
    ['empty', empty, /holds no log/],
    ['no lane in log/', noLog, /holds no log/],
    ['a file', file, /not a directory/],
  ];
  for (const [what, dir, message] of cases) {
    for (const [cmd, args, env] of [
      ['dump', ['--data-dir', dir], clean],
      ['verify', ['--data-dir', dir], clean],
      ['dump', [], { CROWD_DATA_DIR: dir, CROWD_CONFIG: '' }],
      ['verify', [], { CROWD_DATA_DIR: dir, CROWD_CONFIG: '' }],
    ] as Array<[string, string[], Record<string, string>]>) {
      const r = await runCli(['log', cmd, ...args], env);
      t.is(r.code, 2, `${cmd} ${what}: ${r.stdout}${r.stderr}`);
      t.regex(r.stderr, message, `${cmd} ${what}`);
      t.is(r.stdout, '', `${cmd} ${what}`);
    }
  }
  // A bad config when the data dir comes from it: the config's message, exit 2.
  const bad = path.join(base, 'bad.yaml');
  writeFileSync(bad, 'dataDir: 7\n');
  const r = await runCli(['log', 'dump', '--config', bad], clean);
  t.is(r.code, 2);
  t.regex(r.stderr, /\/dataDir must be string/);
});

test('every help text lists the environment variables', async (t) => {
  for (const args of [['--help'], ['start', '--help'], ['config', 'check', '--help'], ['log', 'dump', '--help'], ['log', 'verify', '--help']]) {
    const r = await runCli(args);
    t.is(r.code, 0, args.join(' '));
    for (const v of ENV_VARS) t.true(r.stdout.includes(v), `${args.join(' ')} lists ${v}`);
  }
});

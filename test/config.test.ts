// Configuration: defaults, environment overrides, JSON and YAML files, and invalid files that
// make `crowd start` exit non-zero naming the field.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { runCli, tempDir } from './helpers/crowd-process.js';

test('no file: the embedded defaults, dynamic routes, frozen', (t) => {
  const c = loadConfig({ env: {} });
  t.like(c, { listen: { host: '0.0.0.0', port: 2104 }, admin: { host: '127.0.0.1', port: 2105 }, routes: null, logLevel: 'info' });
  t.is(c.dataDir, path.resolve('./data'));
  // docs/configuration.md: acceptors max(1, cores/2), lanes max(1, ceil(cores/4)).
  const cores = os.availableParallelism();
  t.deepEqual(c.threads, { acceptors: Math.max(1, Math.floor(cores / 2)), lanes: Math.max(1, Math.ceil(cores / 4)) }, `${cores} cores`);
  t.true(Object.isFrozen(c) && Object.isFrozen(c.listen));
  t.throws(() => {
    (c.listen as { port: number }).port = 1;
  });
});

test('environment overrides the file', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ listen: { port: 9000 }, dataDir: '/tmp/x' }));
  const c = loadConfig({ env: { CROWD_CONFIG: file, CROWD_PORT: '9100', CROWD_ADMIN_PORT: '9101', CROWD_DATA_DIR: dir, CROWD_LOG_LEVEL: 'warn' } });
  t.is(c.listen.port, 9100);
  t.is(c.admin.port, 9101);
  t.is(c.dataDir, dir);
  t.is(c.logLevel, 'warn');
  t.is(c.source, file);
});

test('YAML file with routes gets route defaults', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, 'routes:\n  - path: /leads\n    ack: memory\n    key: "header:X-Shop"\n    keepHeaders: [User-Agent]\n');
  const c = loadConfig({ file, env: {} });
  t.deepEqual(c.routes![0], {
    path: '/leads', topic: 'leads', methods: ['POST'], ack: 'memory', maxBodyBytes: 1048576, contentTypes: [],
    key: 'header:X-Shop', keepHeaders: ['user-agent'], sinks: [],
  });
});

test('a small ring is enough for configured routes with small bodies (the 1 MiB of dynamic routes does not apply)', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ ingest: { ringBytes: 1048576 }, routes: [{ path: '/a', maxBodyBytes: 100000 }] }));
  const c = loadConfig({ file, env: {} });
  t.is(c.ingest.ringBytes, 1048576);
  t.is(c.routes![0].maxBodyBytes, 100000);
});

const bad: Array<[string, unknown, RegExp]> = [
  ['unknown ack mode', { routes: [{ path: '/a', ack: 'eventually' }] }, /\/routes\/0\/ack .*memory, durable, delivered/],
  ['port out of range', { listen: { port: 70000 } }, /\/listen\/port must be <= 65535/],
  ['unknown field', { listne: {} }, /must NOT have additional properties \("listne"\)/],
  ['bad route path', { routes: [{ path: 'leads' }] }, /\/routes\/0\/path must match pattern/],
  ['route naming a missing sink', { routes: [{ path: '/a', sinks: ['nope'] }] }, /\/routes\/0\/sinks names "nope"/],
  ['ring not a power of two', { ingest: { ringBytes: 100000 } }, /ringBytes must be a power of two/],
  ['body limit larger than the ring allows', { routes: [{ path: '/a', maxBodyBytes: 8000000 }] }, /\/routes\/0\/maxBodyBytes.*ringBytes >= /],
  ['no routes (any POST /<name>, bodies up to 1 MiB) with a ring too small for them', { ingest: { ringBytes: 1048576 } }, /\/ingest\/ringBytes: bodies of 1048576 bytes need \/ingest\/ringBytes >= 4194304/],
  ['duplicate route', { routes: [{ path: '/a' }, { path: '/a' }] }, /defined twice/],
  ['redis sink with both stream and list', { sinks: { r: { type: 'redis', url: 'redis://h', stream: 's', list: 'l' } } }, /\/sinks\/r needs exactly one of "stream" or "list"/],
  ['redis sink with neither stream nor list', { sinks: { r: { type: 'redis', url: 'redis://h' } } }, /\/sinks\/r needs exactly one of "stream" or "list"/],
  ['redis maxLen on a list', { sinks: { r: { type: 'redis', url: 'redis://h', list: 'l', maxLen: 10 } } }, /\/sinks\/r\/maxLen applies to streams only/],
  ['redis push on a stream', { sinks: { r: { type: 'redis', url: 'redis://h', stream: 's', push: 'left' } } }, /\/sinks\/r\/push applies to lists only/],
  ['redis url of another scheme', { sinks: { r: { type: 'redis', url: 'http://h:1', stream: 's' } } }, /\/sinks\/r\/url must match pattern/],
  ['redis unknown option', { sinks: { r: { type: 'redis', url: 'redis://h', stream: 's', streem: 'x' } } }, /\/sinks\/r must NOT have additional properties \("streem"\)/],
];
for (const [name, doc, re] of bad) {
  test(`invalid config: ${name}`, (t) => {
    const dir = tempDir();
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify(doc));
    const e = t.throws(() => loadConfig({ file, env: {} }), { instanceOf: ConfigError });
    t.regex(e!.message, re);
  });
}

test('CROWD_PORT that is not a number is refused', (t) => {
  t.throws(() => loadConfig({ env: { CROWD_PORT: 'eighty' } }), { message: /CROWD_PORT must be an integer/ });
});

test('crowd start with an invalid file exits 2 and names the field on stderr', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ routes: [{ path: '/a', maxBodyBytes: 'big' }] }));
  const r = await runCli(['start', '--config', file], { CROWD_DATA_DIR: dir });
  t.is(r.code, 2);
  t.regex(r.stderr, /\/routes\/0\/maxBodyBytes must be integer/);
});

test('crowd start with a file that is not JSON exits 2', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, '{"routes": [');
  const r = await runCli(['start', '--config', file], { CROWD_DATA_DIR: dir });
  t.is(r.code, 2);
  t.regex(r.stderr, /is not valid JSON/);
});

test('a redis sink gets its defaults and its reply timeout in ms', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({
    sinks: { s: { type: 'redis', url: 'redis://u:p@127.0.0.1:6380/2', stream: 'leads', maxLen: 1000000 }, l: { type: 'redis', url: 'redis://localhost', list: 'q:{topic}', replyTimeout: '2s' } },
  }));
  const c = loadConfig({ file, env: {} });
  t.like(c.sinks.s, { type: 'redis', stream: 'leads', maxLen: 1000000, format: 'raw', driver: 'auto', maxBatch: 512, replyTimeoutMs: 10_000 });
  t.is(c.sinks.s.push, undefined);
  t.like(c.sinks.l, { list: 'q:{topic}', push: 'right', replyTimeoutMs: 2000 });
});

test('command-line usage errors exit 2 (1 is what `log verify` says on corruption)', async (t) => {
  // Without --data-dir the data dir is crowd start's (here one that does not exist): exit 2.
  const missing = await runCli(['log', 'dump'], { CROWD_DATA_DIR: path.join(tempDir(), 'none'), CROWD_CONFIG: '' });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--data-dir/);
  const bad = await runCli(['log', 'dump', '--data-dir', tempDir(), '--from', 'x']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /non-negative integer/);
  t.is((await runCli(['--help'])).code, 0);
});

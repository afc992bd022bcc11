// Only crowd's own acceptor threads share the ingest port (SO_REUSEPORT). A second crowd, or
// any other process, already on the ingest or admin port makes a new crowd refuse to start
// with exit 70 and one line naming the port; the first keeps all the traffic.
import test from 'ava';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { tempDir } from './helpers/crowd-process.js';
import { crowdOutcome, type Outcome } from './helpers/crowd-outcome.js';
import { post, rawExchange } from './helpers/raw-http.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function stopAll(list: Outcome[]): Promise<void> {
  for (const o of list) {
    o.kill('SIGKILL');
    await o.exited;
  }
}

function assertRefused(t: import('ava').ExecutionContext, o: Outcome, port: number): void {
  t.is(o.started, null, `the second crowd must not start:\n${o.output()}`);
  t.is(o.code, 70, o.output());
  const lines = o.output().split('\n').filter((l) => l.trim() !== '');
  t.is(lines.length, 1, `one line, got:\n${o.output()}`);
  t.true(lines[0].includes(`:${port}`), lines[0]);
  t.false(o.output().includes('    at '), 'no stack trace');
}

async function stores(port: number): Promise<boolean> {
  const r = await rawExchange(port, post('/x', '{"a":1}'));
  return r.status === 200;
}

// `sameTmp: false`: the second crowd sees another TMPDIR (as in another container sharing the
// network namespace), so only the bind probe can see the first one.
for (const sameTmp of [true, false]) {
  const how = sameTmp ? 'same host' : 'other tmp dir (probe only)';
  test(`a second crowd on the ingest port refuses (${how})`, async (t) => {
    const port = await freePort();
    const a = await crowdOutcome({ dataDir: tempDir(), env: { CROWD_PORT: String(port) }, config: { threads: { acceptors: 2, lanes: 1 } } });
    const all = [a];
    try {
      t.truthy(a.started, `crowd's own two acceptors share the port:\n${a.output()}`);
      t.is(a.started!.port, port);
      const b = await crowdOutcome({ dataDir: tempDir(), env: { CROWD_PORT: String(port), ...(sameTmp ? {} : { TMPDIR: tempDir('crowd-othertmp-') }) } });
      all.push(b);
      assertRefused(t, b, port);
      t.true(await stores(port), 'the first crowd still answers');
    } finally {
      await stopAll(all);
    }
  });

  test(`a second crowd on the admin port refuses (${how})`, async (t) => {
    const adminPort = await freePort();
    const a = await crowdOutcome({ dataDir: tempDir(), env: { CROWD_ADMIN_PORT: String(adminPort) } });
    const all = [a];
    try {
      t.truthy(a.started, a.output());
      const b = await crowdOutcome({ dataDir: tempDir(), env: { CROWD_ADMIN_PORT: String(adminPort), ...(sameTmp ? {} : { TMPDIR: tempDir('crowd-othertmp-') }) } });
      all.push(b);
      assertRefused(t, b, adminPort);
    } finally {
      await stopAll(all);
    }
  });
}

test('another program listening on the ingest port with SO_REUSEPORT makes crowd refuse', async (t) => {
  const port = await freePort();
  // A plain Python listener with SO_REUSEPORT: the kernel would let crowd's acceptors join it.
  const py = spawn('python3', ['-c', [
    'import socket,sys,time',
    's=socket.socket()',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
    `s.bind(("0.0.0.0", ${port}))`,
    's.listen(8)',
    'print("up", flush=True)',
    'time.sleep(120)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => py.stdout!.once('data', () => resolve()));
    const b = await crowdOutcome({ dataDir: tempDir(), env: { CROWD_PORT: String(port) } });
    try {
      assertRefused(t, b, port);
    } finally {
      await stopAll([b]);
    }
  } finally {
    py.kill('SIGKILL');
  }
});

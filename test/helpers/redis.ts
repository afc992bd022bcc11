/**
 * Real redis-server processes for the Redis sink tests: each on a free loopback port with its
 * own directory under the temp dir, no persistence, stopped by its own pid. Read back with
 * ioredis (an independent client, never crowd's writer). scripts/run-tests.sh installs the
 * Debian redis-server package when it is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { tempDir } from './crowd-process.js';

export interface RedisServer {
  port: number;
  dir: string;
  url: string;
  /** A client for reading back (closed by stop()). */
  client(db?: number, auth?: { username: string; password?: string }): Redis;
  /** SIGTERM (or SIGKILL) by pid, waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts redis-server again on the same port (after stop). */
  restart(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    sock.setTimeout(500, () => sock.destroy());
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\r\n')) {
        sock.destroy();
        resolve(data.startsWith('+PONG') || data.startsWith('-NOAUTH'));
      }
    });
    sock.on('error', () => resolve(false));
    sock.on('close', () => resolve(false));
  });
}

/** `extraArgs` go to redis-server as they are (e.g. ['--user', 'alice', 'on', '>pw', '~*', '+@all']). */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  if (!redisServerAvailable()) throw new Error('redis-server is not installed (scripts/run-tests.sh installs the Debian package)');
  const port = await freePort();
  const dir = tempDir('crowd-redis-');
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const clients: Redis[] = [];
  let log = '';
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    const c = child;
    c.stdout!.on('data', (d) => (log += d));
    c.stderr!.on('data', (d) => (log += d));
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    for (let i = 0; i < 100; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server exited:\n${log}`);
      if (await answersPing(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill('SIGKILL');
    throw new Error(`redis-server did not answer on ${port}:\n${log}`);
  };
  await launch();
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    client: (db = 0, auth) => {
      const r = new Redis({ host: '127.0.0.1', port, db, username: auth?.username, password: auth?.password, maxRetriesPerRequest: 1 });
      r.on('error', () => {}); // reads retry; a stopped server is expected in some tests
      clients.push(r);
      return r;
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      for (const c of clients.splice(0)) c.disconnect();
      const c = child as ChildProcess | null;
      if (c && c.exitCode === null && c.signalCode === null) c.kill(signal);
      await exited;
    },
    restart: launch,
  };
}

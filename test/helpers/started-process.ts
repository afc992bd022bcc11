/**
 * Runs any command that ends up running crowd (`npx crowd start`, `npm start`) as a child
 * process, and waits for crowd's "started" log line to read its pid and ports. The caller
 * stops it by the child's own pid; `crowdPid` is the crowd process itself, read from the lock
 * file it holds in its data dir (`<pid> <host>`), which may be a grandchild when a wrapper
 * (npm, npx) is in between.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface StartedProcess {
  child: ChildProcess;
  crowdPid: number;
  port: number;
  adminPort: number;
  output: () => string;
  exited: Promise<number | string>;
}

export async function spawnUntilStarted(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; dataDir: string; timeoutMs?: number }): Promise<StartedProcess> {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const started = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: crowd did not start in time:\n${out}`));
    }, opts.timeoutMs ?? 60_000);
    const check = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('"event":"started"')) continue;
        const m = JSON.parse(line) as { ingest: string; admin: string };
        clearTimeout(timer);
        return resolve({ port: Number(m.ingest.split(':').pop()), adminPort: Number(m.admin.split(':').pop()) });
      }
    };
    child.stdout!.on('data', check);
    void exited.then((c) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')} exited (${c}) before crowd started:\n${out}`));
    });
  });
  const crowdPid = Number(readFileSync(path.join(opts.dataDir, 'crowd.lock'), 'utf8').split(/\s+/)[0]);
  return { child, crowdPid, port: started.port, adminPort: started.adminPort, output: () => out, exited };
}

/** True while a process with this pid exists (signal 0 probes without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until `pid` is gone; false if it is still there after `timeoutMs`. */
export async function waitGone(pid: number, timeoutMs = 30_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

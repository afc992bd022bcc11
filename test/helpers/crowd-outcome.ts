/**
 * Starts `crowd start` as a child process (optionally under a wrapper such as
 * `unshare --pid --fork`) and reports what became of it: it started (its ports), or it exited
 * (its code and output). For tests of start-up refusals, where startCrowd's "must start" is the
 * wrong expectation. Kills only the child it made, by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cliPath } from './crowd-process.js';

export interface Outcome {
  child: ChildProcess;
  /** null when it exited before it started. */
  started: { port: number; adminPort: number } | null;
  /** Exit code (or signal name) when it exited before it started. */
  code: number | string | null;
  output: () => string;
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export async function crowdOutcome(opts: {
  dataDir: string;
  config?: unknown;
  env?: Record<string, string>;
  /** Command placed before `node cli.js start` (e.g. ['unshare', '--pid', '--fork', '--kill-child']). */
  wrap?: string[];
  timeoutMs?: number;
}): Promise<Outcome> {
  const args = [cliPath, 'start'];
  if (opts.config !== undefined) {
    const file = `${opts.dataDir}.${process.hrtime.bigint()}.config.json`;
    writeFileSync(file, JSON.stringify(opts.config));
    args.push('--config', file);
  }
  const [cmd, ...pre] = [...(opts.wrap ?? []), process.execPath];
  const child = spawn(cmd, [...pre, ...args], {
    env: { ...process.env, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0', CROWD_DATA_DIR: opts.dataDir, CROWD_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const result = await new Promise<{ started: Outcome['started']; code: Outcome['code'] }>((resolve) => {
    const timer = setTimeout(() => {
      kill('SIGKILL');
      resolve({ started: null, code: 'timeout' });
    }, opts.timeoutMs ?? 20_000);
    child.stdout!.on('data', () => {
      for (const line of out.split('\n')) {
        if (!line.includes('"event":"started"')) continue;
        const m = JSON.parse(line) as { ingest: string; admin: string };
        clearTimeout(timer);
        resolve({ started: { port: Number(m.ingest.split(':').pop()), adminPort: Number(m.admin.split(':').pop()) }, code: null });
        return;
      }
    });
    void exited.then((c) => {
      clearTimeout(timer);
      resolve({ started: null, code: c });
    });
  });
  return { child, ...result, output: () => out, exited, kill };
}

/**
 * Runs crowd as a real child process (`node dist/src/cli.js start`) on ephemeral loopback
 * ports with its own data dir, reads the ports from its "started" log line, and stops it by
 * its own pid only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const cliPath = path.join(repoRoot, 'dist/src/cli.js');

export interface CrowdProcess {
  child: ChildProcess;
  dataDir: string;
  port: number;
  adminPort: number;
  output: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Temporary directories and files the tests of this process made, removed when it exits (ava
 * runs each test file in its own process), so a run leaves nothing in /tmp.
 * CROWD_TEST_KEEP_TMP=1 keeps them, to look at a failed test's data dir.
 */
const madeHere: string[] = [];
process.once('exit', () => {
  if (process.env.CROWD_TEST_KEEP_TMP === '1') return;
  for (const p of madeHere) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // Still a mount point, or busy: leave it rather than fail the test process at exit.
    }
  }
});

export function tempDir(prefix = 'crowd-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  madeHere.push(dir);
  return dir;
}

export function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, 'crowd.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export async function startCrowd(opts: { dataDir?: string; config?: unknown; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CrowdProcess> {
  const dataDir = opts.dataDir ?? tempDir();
  const args = [cliPath, 'start'];
  // Each crowd its own config file (next to its data dir): concurrent tests must not share one.
  if (opts.config !== undefined) {
    const file = `${dataDir}.config.json`;
    writeFileSync(file, JSON.stringify(opts.config));
    madeHere.push(file);
    args.push('--config', file);
  }
  const child = spawn(process.execPath, args, {
    env: { ...process.env, CROWD_PORT: '0', CROWD_ADMIN_PORT: '0', CROWD_DATA_DIR: dataDir, CROWD_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const ports = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a crowd behind
      reject(new Error(`crowd did not start in time:\n${out}`));
    }, opts.timeoutMs ?? 20_000);
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
      reject(new Error(`crowd exited (${c}) before starting:\n${out}`));
    });
  });
  return {
    child, dataDir, ...ports, output: () => out, exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs the CLI to completion (log verify / dump, bad configs). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export async function dumpIds(dataDir: string, topic?: string): Promise<string[]> {
  const r = await runCli(['log', 'dump', '--data-dir', dataDir, ...(topic ? ['--topic', topic] : [])]);
  if (r.code !== 0) throw new Error(`dump failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
}

/**
 * CPU time by thread kind, from /proc/<pid>/task/<tid>/stat (utime + stime, in clock ticks of
 * 1/100 s) and each thread's name (/proc/<pid>/task/<tid>/comm): crowd names its worker
 * threads (src/thread-name.ts) `crowd-acc<i>` and `crowd-lane<i>`; its main thread is the one
 * whose tid is the pid; everything else (V8's platform and GC threads, libuv's pool, librdkafka)
 * is "other". A one-thread server is all "main" plus V8's helpers in "other".
 *
 * bench:e2e samples before and after the load (and after the drain when a case measures
 * delivery) and divides by what was done: µs of CPU per request, per record, per delivered
 * message. These figures, not req/s on a 2-core box, are what decide how crowd scales with
 * cores (docs/deploy.md "Sizing per core count").
 */
import fs from 'node:fs';

export type ThreadKind = 'acceptor' | 'lane' | 'main' | 'other';
export const THREAD_KINDS: ThreadKind[] = ['acceptor', 'lane', 'main', 'other'];

/** ticks per thread id, with its kind. */
export type ThreadSample = Map<number, { kind: ThreadKind; ticks: number }>;

const TICK_US = 10_000; // USER_HZ = 100

function kindOf(pid: number, tid: number, comm: string): ThreadKind {
  if (tid === pid) return 'main';
  if (comm.startsWith('crowd-acc')) return 'acceptor';
  if (comm.startsWith('crowd-lane')) return 'lane';
  return 'other';
}

/** One look at every thread of `pid`; threads that end while it reads are skipped. */
export function sampleThreads(pid: number): ThreadSample {
  const out: ThreadSample = new Map();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const tid = Number(t);
      out.set(tid, { kind: kindOf(pid, tid, comm), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

export interface KindCpu {
  /** µs of CPU by thread kind over the interval. */
  us: Record<ThreadKind, number>;
  /** Threads of each kind seen at the end. */
  threads: Record<ThreadKind, number>;
}

/** CPU used between two samples, by kind (a thread born in between counts from zero). */
export function cpuBetween(before: ThreadSample, after: ThreadSample): KindCpu {
  const us = { acceptor: 0, lane: 0, main: 0, other: 0 };
  const threads = { acceptor: 0, lane: 0, main: 0, other: 0 };
  for (const [tid, a] of after) {
    us[a.kind] += (a.ticks - (before.get(tid)?.ticks ?? 0)) * TICK_US;
    threads[a.kind]++;
  }
  return { us, threads };
}

/**
 * The output of a command run through `withTimes`, split from the CPU it used (user + system
 * of bash's children, from `times`' second line), or null if that line is missing.
 */
export function childCpuUs(stdout: string): { stdout: string; cpuUs: number | null } {
  const marker = stdout.lastIndexOf('\n@@times@@\n');
  if (marker < 0) return { stdout, cpuUs: null };
  const lines = stdout.slice(marker + 11).trim().split('\n');
  const secs = (s: string) => {
    const m = /^([0-9]+)m([0-9.]+)s$/.exec(s);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  const [u, s] = (lines[1] ?? '').trim().split(/\s+/);
  const cpu = secs(u) + secs(s);
  return { stdout: stdout.slice(0, marker), cpuUs: Number.isFinite(cpu) ? Math.round(cpu * 1e6) : null };
}

/** bash -c that runs `cmd args...` then prints the marker and `times`. */
export function withTimes(cmd: string, args: string[]): [string, string[]] {
  return ['bash', ['-c', '"$@"; echo; echo @@times@@; times', 'bench', cmd, ...args]];
}

/**
 * Names the calling OS thread (Linux `comm`, at most 15 bytes) so that `top -H`, `perf` and
 * `/proc/<pid>/task/<tid>/comm` tell crowd's threads apart: every Node thread is otherwise
 * "node". bench:e2e reads these names to measure CPU time per request by thread kind.
 * `/proc/thread-self` is the calling thread, so a worker names itself. Best effort: on a
 * system without it nothing happens. The main thread keeps its name (it is the process's).
 */
import fs from 'node:fs';

export function nameThisThread(name: string): void {
  try {
    fs.writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // not Linux, or /proc not mounted: names are a convenience only
  }
}

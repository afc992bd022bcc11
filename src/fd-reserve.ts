/**
 * The fd reserve: keeps file descriptors free for the log, cursors and sinks when clients open
 * connections until the process's limit (RLIMIT_NOFILE). Every `everyMs` the main thread counts
 * the process's open fds (/proc/self/fd); at `limit - reserve` it tells the acceptors to stop
 * taking new connections (they close their listeners: new clients are refused, open
 * connections are served), and below `limit - reserve - hysteresis` to take them again. A count
 * that cannot be taken (the directory cannot be opened: no fd left) counts as at the limit.
 * A burst of connections can still use the last fds between two counts; for that the reserve
 * also holds `spare` fds (/dev/null) from the start, and frees them on the count after the
 * acceptors stopped taking connections, so the lanes and the sink host have fds to work with;
 * they are taken back before connections are taken again.
 * Connections that already hold fds end by themselves (idle timeout), so this never needs a
 * restart. docs/reliability.md, "Running out of file descriptors".
 */
import fs from 'node:fs';
import type { Logger } from './logger.js';

/** The soft RLIMIT_NOFILE (Node raises it to the hard limit at start), or null when unknown. */
export function fdLimit(): number | null {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft && /^[0-9]+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

export function openFds(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return Infinity;
  }
}

export class FdReserve {
  private timer: NodeJS.Timeout | null = null;
  private paused = false;
  private spares: number[] = [];
  /** Times the acceptors were told to stop taking connections (stats, tests). */
  pauses = 0;
  readonly limit: number | null = fdLimit();
  readonly reserve: number;

  constructor(
    private readonly log: Logger,
    private readonly setAccepting: (accept: boolean) => void,
    private readonly everyMs = 100,
  ) {
    // An eighth of the limit, at least 32 and at most 1024: room for segment rolls, retention,
    // cursor and dead-letter writes, sink connections and the admin API.
    this.reserve = this.limit === null ? 0 : Math.max(32, Math.min(1024, Math.floor(this.limit / 8)));
  }

  start(): void {
    if (this.limit === null) return;
    this.takeSpares();
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.freeSpares();
  }

  private takeSpares(): void {
    const want = this.reserve >> 1;
    try {
      while (this.spares.length < want) this.spares.push(fs.openSync('/dev/null', 'r'));
    } catch {
      // no fd to spare now: taken again at the next count
    }
  }

  private freeSpares(): void {
    for (const fd of this.spares.splice(0)) fs.closeSync(fd);
  }

  check(): void {
    const limit = this.limit!;
    const used = openFds();
    const high = limit - this.reserve;
    const low = high - Math.max(8, this.reserve >> 2);
    if (this.paused && this.spares.length > 0) {
      // The acceptors had a count's time to close their listeners: the spares go to the log.
      this.freeSpares();
      return;
    }
    if (!this.paused && used >= high) {
      this.paused = true;
      this.pauses++;
      this.log.warn({ event: 'fd_reserve_reached', used: Number.isFinite(used) ? used : 'all', limit, reserve: this.reserve }, 'near the fd limit: new connections refused until fds are free again');
      this.setAccepting(false);
    } else if (this.paused && used < low) {
      this.takeSpares();
      this.paused = false;
      this.log.info({ event: 'fd_reserve_ok', used, limit }, 'fds free again: taking new connections');
      this.setAccepting(true);
    }
  }
}

/**
 * Per-route state every acceptor thread shares through SharedArrayBuffers, so a route's limits
 * hold for the process, not per thread (connections are spread over acceptors by the kernel,
 * SO_REUSEPORT, so a per-thread share under-admits a client with one connection and a replay
 * sent on a new connection could land on a thread that never saw the original).
 *
 *   RouteRateLimit: `rateLimit` as GCRA (the generic cell rate algorithm, a token bucket kept as
 *   one number, the theoretical arrival time): one BigInt64 slot moved with compareExchange,
 *   no lock. Clock: process.hrtime (CLOCK_MONOTONIC, the same in every thread).
 *
 *   ReplayWindow: the HMAC signatures seen within the tolerance, an open-addressing table of
 *   fixed capacity (`auth.hmac.replayCapacity`), each slot 64 bits of the signature and its
 *   expiry in unix seconds. Insert-if-absent takes a spin lock held for one probe sequence
 *   (no allocation, no system call inside): lock-free variants race at the moment an entry
 *   expires and could accept one replay twice. Expired slots are reused; a table whose probe
 *   sequence finds no free slot answers "full" (the caller refuses with 503 and Retry-After).
 *
 * `sharedRouteState` makes them once per process: one buffer of 8 bytes per config route (its
 * GCRA arrival time, ns) and, per HMAC route, a buffer for its window (a lock word, then
 * capacity x 3 words).
 */
import type { RouteConfig } from '../config/types.js';

export interface SharedRouteState {
  /** One BigInt64 per config route (index = position in config.routes). */
  rate: SharedArrayBuffer;
  /** Per config route: its replay window, or null without HMAC auth. */
  replay: (SharedArrayBuffer | null)[];
}

const SLOT_WORDS = 3; // signature high 32 bits, low 32 bits, expiry (unix seconds)
const LOCK_WORDS = 1;
/** Slots looked at before a window counts as full around a signature's place. */
const MAX_PROBE = 128;

export function replayWindowBytes(capacity: number): number {
  return 4 * (LOCK_WORDS + SLOT_WORDS * capacity);
}

/** The shared state for a config's routes (made by the supervisor, handed to each acceptor). */
export function sharedRouteState(routes: readonly RouteConfig[] | null): SharedRouteState {
  const list = routes ?? [];
  return {
    rate: new SharedArrayBuffer(8 * Math.max(1, list.length)),
    replay: list.map((r) => (r.auth && 'hmac' in r.auth ? new SharedArrayBuffer(replayWindowBytes(r.auth.hmac.replayCapacity)) : null)),
  };
}

const now = (): bigint => process.hrtime.bigint();

export class RouteRateLimit {
  private readonly tat: BigInt64Array;
  /** Nanoseconds between two requests at the sustained rate. */
  private readonly interval: bigint;
  /** How far ahead of now the arrival time may run: burst - 1 intervals. */
  private readonly tolerance: bigint;

  constructor(shared: SharedArrayBuffer, index: number, perSecond: number, burst: number, private readonly clock: () => bigint = now) {
    this.tat = new BigInt64Array(shared, 8 * index, 1);
    this.interval = BigInt(Math.max(1, Math.round(1e9 / perSecond)));
    this.tolerance = this.interval * BigInt(Math.max(0, burst - 1));
  }

  /** Takes one request's place if the route has room now. */
  tryTake(): boolean {
    for (;;) {
      const t = this.clock();
      const tat = Atomics.load(this.tat, 0);
      const base = tat > t ? tat : t;
      if (base - t > this.tolerance) return false;
      if (Atomics.compareExchange(this.tat, 0, tat, base + this.interval) === tat) return true;
    }
  }

  /** Whole seconds until one request fits again (at least 1): the Retry-After of a 429. */
  retryAfterSeconds(): number {
    const wait = Atomics.load(this.tat, 0) - this.tolerance - this.clock();
    return Math.max(1, Math.ceil(Number(wait) / 1e9));
  }
}

export type ReplayVerdict = 'first' | 'replay' | 'full';

export class ReplayWindow {
  private readonly words: Int32Array;
  private readonly capacity: number;

  constructor(shared: SharedArrayBuffer) {
    this.words = new Int32Array(shared);
    this.capacity = (this.words.length - LOCK_WORDS) / SLOT_WORDS;
  }

  /**
   * Records a signature (its first 16 hex digits) valid until `expirySec`, unless it is
   * already there and not expired at `nowSec`.
   */
  firstUse(signatureHex: string, expirySec: number, nowSec: number): ReplayVerdict {
    const hi = parseInt(signatureHex.slice(0, 8), 16) | 0;
    const lo = parseInt(signatureHex.slice(8, 16), 16) | 0;
    const w = this.words;
    const start = (lo >>> 0) % this.capacity;
    const probes = Math.min(MAX_PROBE, this.capacity);
    this.lock();
    try {
      let free = -1;
      for (let i = 0; i < probes; i++) {
        const at = LOCK_WORDS + SLOT_WORDS * ((start + i) % this.capacity);
        const exp = w[at + 2] >>> 0; // unix seconds, unsigned (past 2038)
        if (exp === 0) {
          // Never used: the signature cannot be further along (inserts take the first free slot).
          if (free < 0) free = at;
          break;
        }
        const live = exp >= nowSec;
        if (live && w[at] === hi && w[at + 1] === lo) return 'replay';
        if (!live && free < 0) free = at;
      }
      if (free < 0) return 'full';
      w[free] = hi;
      w[free + 1] = lo;
      w[free + 2] = expirySec | 0;
      return 'first';
    } finally {
      this.unlock();
    }
  }

  private lock(): void {
    const w = this.words;
    for (let spins = 0; Atomics.compareExchange(w, 0, 0, 1) !== 0; spins++) {
      // Held for one probe sequence; if its holder was descheduled, sleep briefly instead of spinning.
      if (spins > 1000) Atomics.wait(w, 0, 1, 1);
    }
  }

  private unlock(): void {
    Atomics.store(this.words, 0, 0);
    Atomics.notify(this.words, 0, 1);
  }
}

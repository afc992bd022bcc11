/**
 * Admission control for one acceptor thread: whether a request may join the queue of
 * requests waiting for their lane (fsync, or sinks for `ack: delivered`), and the Retry-After
 * to give when it may not. Decisions are per request and cost a compare; the numbers behind
 * them are recomputed on the acceptor's sweep tick (every <= 250 ms).
 *
 * A lane's queue is refused (503 CROWD_OVERLOADED) once its backlog would take longer than
 * `ingest.maxQueueDelay` to drain at the lane's measured answer rate, or once it holds
 * `ingest.maxPending` requests (the memory bound). Retry-After is that backlog divided by
 * the drain rate, the time after which a retry can expect a place.
 *
 * Retry-After for the log quota (503 CROWD_LOG_FULL) comes from the lanes: each publishes how
 * many bytes its slowest consumer must still read before the oldest segment can go, and how
 * fast that consumer reads (lane.ts, retention). With no consumer moving, it is the cap.
 */
import { LaneControl, STAT } from '../lanes/lane-control.js';

/** Below this backlog a lane never refuses, whatever its measured rate (idle lanes measure 0). */
const MIN_BACKLOG = 1024;
/** Weight of the newest rate sample. */
const EWMA = 0.3;

export interface AdmissionLimits {
  maxQueueDelayMs: number;
  maxPending: number;
  minRetryAfterSeconds: number;
  maxRetryAfterSeconds: number;
}

export class Admission {
  /** Answers given per lane since the last tick (200s and refusals of queued requests). */
  readonly answered: Float64Array;
  /** Queued requests allowed per lane right now. */
  readonly limit: Float64Array;
  private readonly rate: Float64Array;
  private lastTick: number;

  constructor(
    private readonly lanes: readonly LaneControl[],
    private readonly o: AdmissionLimits,
    /** Milliseconds, monotonic (tests drive it by hand). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastTick = now();
    this.answered = new Float64Array(lanes.length);
    this.rate = new Float64Array(lanes.length);
    this.limit = new Float64Array(lanes.length).fill(Math.min(o.maxPending, MIN_BACKLOG));
  }

  /** Recomputes each lane's drain rate and backlog limit. `backlog` is the lane's queue now. */
  tick(backlog: (lane: number) => number): void {
    const now = this.now();
    const dt = (now - this.lastTick) / 1000;
    if (dt <= 0) return;
    this.lastTick = now;
    for (let l = 0; l < this.rate.length; l++) {
      const sample = this.answered[l] / dt;
      this.answered[l] = 0;
      // An idle lane (nothing queued, nothing answered) keeps its last rate: it says nothing new.
      if (sample > 0 || backlog(l) > 0) this.rate[l] = this.rate[l] === 0 ? sample : this.rate[l] * (1 - EWMA) + sample * EWMA;
      const byDelay = (this.rate[l] * this.o.maxQueueDelayMs) / 1000;
      this.limit[l] = Math.min(this.o.maxPending, Math.max(MIN_BACKLOG, byDelay));
    }
  }

  /** Seconds until a lane's current backlog is drained at its measured rate. */
  queueRetryAfter(lane: number, backlog: number): number {
    const r = this.rate[lane];
    return this.clamp(r > 0 ? backlog / r : Infinity);
  }

  /** Seconds until the log quota can be expected to have room (the fastest lane to free a segment). */
  logRetryAfter(): number {
    let best = Infinity;
    for (const c of this.lanes) {
      const rate = c.stats[STAT.CONSUMER_RATE];
      const need = c.stats[STAT.RETENTION_NEED_BYTES];
      if (rate > 0) best = Math.min(best, need / rate);
    }
    return this.clamp(best);
  }

  /** Every Retry-After crowd sends is within [ingest.retryAfterSeconds, ingest.maxRetryAfterSeconds]. */
  clamp(seconds: number): number {
    if (!Number.isFinite(seconds)) return this.o.maxRetryAfterSeconds;
    return Math.min(this.o.maxRetryAfterSeconds, Math.max(this.o.minRetryAfterSeconds, Math.ceil(seconds)));
  }
}

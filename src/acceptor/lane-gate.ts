/**
 * Stage 5 of a request (acceptor.ts): which lane takes it, and whether that lane can take it
 * now. A partition key hashes to a lane (FNV-1a, so order per key is kept within the lane);
 * without a key, lanes take turns. The lane checks (its state, the route's rate limit, the
 * lane's backlog of waiting acks against its admission limit, the log quota) run on the lane
 * that will take the record: at the head for routes whose key is in a header or absent, after
 * the body for `json:/pointer` keys, whose lane is known only then.
 */
import type { ErrorCode } from '../errors.js';
import { LaneControl, LaneState } from '../lanes/lane-control.js';
import type { AckWaits } from './ack-waits.js';
import type { Admission } from './admission.js';
import type { Route } from './route-table.js';

/** FNV-1a: which lane a partition key goes to. */
export function hashKey(k: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class LaneGate {
  private rr = 0;
  /** Retry-After of the last refusal `refusal()` returned. */
  retryAfterSeconds = 0;

  constructor(
    private readonly lanes: LaneControl[],
    private readonly waits: AckWaits,
    private readonly admission: Admission,
    private readonly maxLogBytes: number,
    private readonly defaultRetryAfter: number,
  ) {}

  /** The lane for a key ("" takes the next lane in turn). */
  choose(key: string): number {
    const n = this.lanes.length;
    if (n === 1) return 0;
    return key !== '' ? hashKey(key) % n : this.rr++ % n;
  }

  /** Whether `lane` can take a record of `route` now: null, or the refusal (Retry-After in retryAfterSeconds). */
  refusal(route: Route, lane: number): ErrorCode | null {
    const state = this.lanes[lane].state();
    if (state !== LaneState.Ready) {
      this.retryAfterSeconds = this.defaultRetryAfter;
      return state === LaneState.Unwritable ? 'CROWD_LOG_UNAVAILABLE' : 'CROWD_NOT_READY';
    }
    if (route.rateLimit && !route.rateLimit.tryTake()) {
      this.retryAfterSeconds = this.admission.clamp(route.rateLimit.retryAfterSeconds());
      return 'CROWD_RATE_LIMITED';
    }
    if (route.needsFsync) {
      const backlog = this.waits.backlog(lane);
      if (backlog >= this.admission.limit[lane]) {
        this.retryAfterSeconds = this.admission.queueRetryAfter(lane, backlog);
        return 'CROWD_OVERLOADED';
      }
    }
    if (this.logFull()) {
      this.retryAfterSeconds = this.admission.logRetryAfter();
      return 'CROWD_LOG_FULL';
    }
    return null;
  }

  private logFull(): boolean {
    let bytes = 0;
    for (const l of this.lanes) bytes += l.logBytes();
    return bytes >= this.maxLogBytes;
  }
}

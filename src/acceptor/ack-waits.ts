/**
 * Requests whose record is in a lane's ring and that wait for their answer: `ack: durable`
 * until the lane's TAIL (its fsync watermark) passes the record, then `ack: delivered` until
 * every sink of the route has delivered past the record's log offset. One FIFO per lane for
 * each wait: TAIL and log offsets only grow, so the first request not yet reached blocks the
 * ones behind it and each wake-up answers a prefix.
 *
 * Also here: the ack timeout (503 CROWD_ACK_TIMEOUT for what waited too long), the
 * `ingest.ackWait: "poll"` loop, and telling the drain when nothing waits any more.
 */
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import type { AckMode } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { LaneControl, LaneState } from '../lanes/lane-control.js';
import { SpscRing, reached } from '../ring/spsc-ring.js';
import type { AcceptorStats } from './acceptor-stats.js';
import type { Admission } from './admission.js';
import { sendError, sendReceipt } from './replies.js';
import type { Route } from './route-table.js';

/** What a waiting request must carry (the acceptor's request context has more). */
export interface AckWaiter {
  res: HttpResponse;
  route: Route;
  id: string;
  /** Ring position after the request's record: TAIL reaching it means fsynced. */
  pos: number;
  /** `ack: delivered`: the lane's log offset every sink of the route must reach. */
  logEnd: number;
  t0: number;
  aborted: boolean;
  /** Close the connection after the answer (a chunked request; replies.ts). */
  closeAfter: boolean;
}

/** A FIFO of requests waiting for one lane. */
class WaitQueue {
  items: AckWaiter[] = [];
  head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(p: AckWaiter): void {
    this.items.push(p);
  }
  peek(): AckWaiter | undefined {
    return this.items[this.head];
  }
  shift(): AckWaiter {
    const p = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return p;
  }
}

export interface AckWaitsInit {
  rings: SpscRing[];
  lanes: LaneControl[];
  /** Delivered offsets, f64 per (sink, lane), written by the sink host; null without sinks. */
  watermarks: Float64Array | null;
  stats: AcceptorStats;
  admission: Admission;
  retryAfterSeconds: number;
  ackTimeoutMs: number;
  /** `ingest.ackWait: "poll"`. */
  poll: boolean;
}

export class AckWaits {
  /** Waiting for the lane's fsync, per lane. */
  private readonly fsync: WaitQueue[];
  /** Fsynced, waiting for every sink of the route (`ack: delivered`), per lane. */
  private readonly delivery: WaitQueue[];
  private onEmpty: (() => void) | null = null;
  private pollScheduled = false;

  constructor(private readonly o: AckWaitsInit) {
    this.fsync = o.rings.map(() => new WaitQueue());
    this.delivery = o.rings.map(() => new WaitQueue());
  }

  /** A request whose record was published to `lane`'s ring at `w.pos` now waits for its answer. */
  add(w: AckWaiter, lane: number): void {
    this.fsync[lane].push(w);
    if (this.o.poll && !this.pollScheduled) {
      this.pollScheduled = true;
      setImmediate(this.pollWatermarks);
    }
  }

  /** Requests of a lane waiting for their ack (fsync, or sinks for `ack: delivered`). */
  backlog(lane: number): number {
    return this.fsync[lane].size + this.delivery[lane].size;
  }

  total(): number {
    let n = 0;
    for (let lane = 0; lane < this.fsync.length; lane++) n += this.backlog(lane);
    return n;
  }

  /** A lane says its watermark moved (or its state changed). */
  onLaneWake(lane: number): void {
    const ring = this.o.rings[lane];
    ring.clearAckWake();
    const q = this.fsync[lane];
    if (this.o.lanes[lane].state() === LaneState.Unwritable) {
      while (q.size > 0) this.fail(q.shift(), 'CROWD_LOG_UNAVAILABLE');
    } else {
      const tail = ring.tail();
      const logEnd = ring.logEnd();
      const now = performance.now();
      while (q.size > 0 && reached(tail, q.peek()!.pos)) {
        const p = q.shift();
        if (p.aborted) continue;
        if (p.route.deliveredBy.length > 0) {
          // Durable; now wait for every sink of the route to have delivered past it.
          p.logEnd = logEnd;
          this.delivery[lane].push(p);
          continue;
        }
        this.acknowledge(p, lane, p.route.cfg.ack, now);
      }
      this.answerDelivered(lane);
    }
    this.checkEmpty();
  }

  /** The sink host says delivered offsets moved. */
  onSinkWake(): void {
    for (let lane = 0; lane < this.delivery.length; lane++) this.answerDelivered(lane);
    this.checkEmpty();
  }

  /** Requests not answered within ackTimeout get 503 (they may still be stored). */
  expire(): void {
    const limit = performance.now() - this.o.ackTimeoutMs;
    for (const q of [...this.fsync, ...this.delivery]) {
      while (q.size > 0 && q.peek()!.t0 < limit) this.fail(q.shift(), 'CROWD_ACK_TIMEOUT');
    }
    this.checkEmpty();
  }

  /** Calls `f` once nothing waits (at once if nothing does). */
  whenEmpty(f: () => void): void {
    this.onEmpty = f;
    this.checkEmpty();
  }

  private checkEmpty(): void {
    if (this.onEmpty && this.total() === 0) {
      const f = this.onEmpty;
      this.onEmpty = null;
      f();
    }
  }

  private answerDelivered(lane: number): void {
    const q = this.delivery[lane];
    const w = this.o.watermarks;
    if (!w || q.size === 0) return;
    const lanes = this.o.rings.length;
    const now = performance.now();
    // FIFO per lane: log offsets only grow, so the first one not delivered blocks the rest.
    while (q.size > 0) {
      const p = q.peek()!;
      let delivered = true;
      for (const s of p.route.deliveredBy) {
        if (w[s * lanes + lane] < p.logEnd) {
          delivered = false;
          break;
        }
      }
      if (!delivered && !p.aborted) break;
      q.shift();
      if (p.aborted) continue;
      this.acknowledge(p, lane, 'delivered', now);
    }
  }

  /** The 200 of a request that waited in a lane's queue; it counts toward the lane's drain rate. */
  private acknowledge(p: AckWaiter, lane: number, mode: AckMode, now: number): void {
    sendReceipt(p.res, p.id, p.closeAfter);
    this.o.admission.answered[lane]++;
    this.o.stats.answered(p.route, 200, mode, (now - p.t0) / 1000);
  }

  private fail(p: AckWaiter, code: ErrorCode): void {
    if (p.aborted) return;
    sendError(p.res, code, { retryAfterSeconds: this.o.retryAfterSeconds, close: p.closeAfter });
    this.o.stats.answered(p.route, 503, p.route.cfg.ack, -1, code);
  }

  /**
   * `ingest.ackWait: "poll"`: while durable requests wait, look at the lanes' watermarks on
   * every event-loop turn (setImmediate) instead of sleeping until a lane's message. The
   * thread never sleeps while requests wait: +3% to +21% durable req/s at wrk -c50 on 2 cores, for
   * more CPU and a higher p99 there (docs/benchmarks.md). The lanes' messages still come.
   */
  private readonly pollWatermarks = (): void => {
    this.pollScheduled = false;
    let waiting = false;
    for (let lane = 0; lane < this.fsync.length; lane++) {
      const q = this.fsync[lane];
      if (q.size === 0) continue;
      if (reached(this.o.rings[lane].tail(), q.peek()!.pos)) this.onLaneWake(lane);
      if (q.size > 0) waiting = true;
    }
    if (waiting) {
      this.pollScheduled = true;
      setImmediate(this.pollWatermarks);
    }
  };
}

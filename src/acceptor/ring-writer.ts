/**
 * Stage 6 of a request (acceptor.ts): its record into its lane's ring, as a ready-to-store
 * protobuf envelope behind one flags byte, and the hand-over of each event-loop turn's records
 * to the lanes at the turn's end.
 *
 * A record stays private to the acceptor until that hand-over (the ring's HEAD is published
 * once per turn). A request whose connection closes before it, such as one that uWS closes
 * because the client pipelined another request behind it (see docs/errors.md, "Pipelining"),
 * has its record marked cancelled: the lane skips it, so nothing is stored that its client was
 * never answered for.
 */
import { envelopeSizeFast, stringFieldBytes, writeEnvelopeFast, type RouteFields } from '../envelope/envelope-writer.js';
import type { LaneControl } from '../lanes/lane-control.js';
import { RING_CONTROL_BYTES, SpscRing } from '../ring/spsc-ring.js';

/** Ring record = flags byte + envelope. The lane fsyncs a batch holding a RECORD_FSYNC record. */
export const RECORD_FSYNC = 1;
/** The lane skips this record (its request was closed before the record was handed over). */
export const RECORD_CANCELLED = 2;

/** What the ring writer needs of a request, and what it leaves on it. */
export interface RecordSource {
  key: string;
  kept: string[];
  contentType: string;
  contentEncoding: string;
  query: string;
  /** Set by write(): the lane, the flags byte's index in that ring, and the hand-over it waits for. */
  lane: number;
  at: number;
  turn: number;
}

export class RingWriter {
  private readonly bufs: Buffer[];
  private readonly ctFields = new Map<string, Buffer>();
  /** Lanes with records written this turn, handed over at its end. */
  private readonly toWake: boolean[] = [];
  private wakeScheduled = false;
  /** Hand-overs so far: a record written in turn `turn` is private while turn === this.turn. */
  private turn = 0;

  constructor(private readonly rings: SpscRing[], private readonly lanes: LaneControl[]) {
    this.bufs = rings.map((r) => Buffer.from(r.sab, RING_CONTROL_BYTES, r.sab.byteLength - RING_CONTROL_BYTES));
  }

  /**
   * Writes the record of `src` to ring `lane`; returns its position after the record (the
   * durable ack waits for the lane's TAIL to reach it), or -1 when the ring is full.
   */
  write(src: RecordSource, lane: number, id: string, rf: RouteFields, now: number, body: Uint8Array, fsync: boolean): number {
    const ct = this.contentTypeField(src.contentType);
    const size = envelopeSizeFast(id, rf, now, src.key, src.kept, ct, body, src.query, src.contentEncoding);
    const ring = this.rings[lane];
    const at = ring.reserve(size + 1);
    if (at < 0) return -1;
    const buf = this.bufs[lane];
    buf[at] = fsync ? RECORD_FSYNC : 0;
    writeEnvelopeFast(buf, at + 1, id, rf, now, src.key, src.kept, ct, body, src.query, src.contentEncoding);
    src.lane = lane;
    src.at = at;
    src.turn = this.turn;
    this.wakeLaneSoon(lane);
    return ring.publishLater();
  }

  /** The request of `src` was closed unanswered: if its record is still private, the lane will skip it. */
  cancel(src: RecordSource): boolean {
    if (src.at < 0 || src.turn !== this.turn) return false;
    this.bufs[src.lane][src.at] |= RECORD_CANCELLED;
    return true;
  }

  /** Field 6 (the Content-Type as received) bytes, cached for the few a deployment sees. */
  private contentTypeField(ct: string): Buffer {
    let b = this.ctFields.get(ct);
    if (!b) {
      b = stringFieldBytes(6, ct);
      if (this.ctFields.size < 256) this.ctFields.set(ct, b);
    }
    return b;
  }

  /**
   * The records of one event-loop turn are handed to a lane together at the turn's end: HEAD
   * is published (flush) and the lane rung (a futex wake when it sleeps) once, after every
   * request uWS read in that turn is in the ring, not once per request. The lane's batch then
   * holds the whole turn's records instead of the first few (a small group commit, the rest
   * waiting for the next fsync), and the acceptor makes one futex call per turn instead of up
   * to one per request (0.58 per request under strace before). setImmediate runs right after
   * the poll phase in which uWS handled the requests.
   */
  private wakeLaneSoon(lane: number): void {
    this.toWake[lane] = true;
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(this.wakeLanes);
  }

  private readonly wakeLanes = (): void => {
    this.wakeScheduled = false;
    this.turn++;
    for (let lane = 0; lane < this.toWake.length; lane++) {
      if (!this.toWake[lane]) continue;
      this.toWake[lane] = false;
      this.rings[lane].flush();
      this.lanes[lane].ring();
    }
  };
}

/**
 * Single-producer single-consumer byte ring over a SharedArrayBuffer: how an acceptor thread
 * hands request records to a lane thread without a message or a wake-up per request.
 *
 *   SharedArrayBuffer
 *   +--------------------------- control (256 B) ----------------------------+-- data (capacity B) --+
 *   | HEAD (i32 @0) | TAIL (i32 @64) | ACK_PENDING (i32 @128) | LOG_END (f64 @192) | records ...     |
 *   +------------------------------------------------------------------------+-----------------------+
 *   Each slot sits on its own 64-byte line so producer and consumer do not share cache lines.
 *
 *   data:  ... | len u32 | payload | pad to 4 | len u32 | payload | ... | WRAP u32 | (unused) |
 *                ^ TAIL (consumer frees up to here)         ^ HEAD (producer published)
 *
 * - HEAD and TAIL are free-running u32 byte counters; index = counter & (capacity - 1).
 *   capacity is a power of two <= 2^30, so (HEAD - TAIL) >>> 0 is the bytes in use.
 * - A record never wraps: when it does not fit before the end, the producer writes WRAP and
 *   continues at index 0.
 * - The producer publishes HEAD with a release store after writing the record; the consumer
 *   reads HEAD with an acquire load before reading records (Atomics give both).
 * - The consumer moves TAIL only when the records before it are durable in the log, so TAIL is
 *   also the ack watermark: a record ending at position p is durable once TAIL - p >= 0.
 *   A lane that dies mid-batch leaves TAIL where it was; its replacement re-reads from TAIL.
 * - LOG_END is the lane's log offset after the batch that TAIL covers, written before TAIL:
 *   a record below TAIL is in the log below LOG_END (what `ack: delivered` waits for sinks to pass).
 */
export const RING_CONTROL_BYTES = 256;
const HEAD = 0;
const TAIL = 16;
const ACK_PENDING = 32;
const LOG_END_F64 = 24; // byte 192
export const WRAP = 0xffffffff;
export const RECORD_HEADER = 4;

export function createRingBuffer(capacity: number): SharedArrayBuffer {
  if (capacity < 1024 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`ring capacity must be a power of two in [1 KiB, 1 GiB], got ${capacity}`);
  }
  return new SharedArrayBuffer(RING_CONTROL_BYTES + capacity);
}

/** Wrap-safe "a is at or after b" for u32 counters. */
export function reached(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

export class SpscRing {
  readonly ctl: Int32Array;
  private readonly ctlF64: Float64Array;
  readonly data: Uint8Array;
  readonly dv: DataView;
  readonly capacity: number;
  private readonly mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, RING_CONTROL_BYTES / 4);
    this.ctlF64 = new Float64Array(sab, 0, RING_CONTROL_BYTES / 8);
    this.capacity = sab.byteLength - RING_CONTROL_BYTES;
    this.data = new Uint8Array(sab, RING_CONTROL_BYTES, this.capacity);
    this.dv = new DataView(sab, RING_CONTROL_BYTES, this.capacity);
    this.mask = this.capacity - 1;
  }

  // ---- producer side -------------------------------------------------------------------

  /** Producer's private copy of HEAD (it is the only writer). */
  private pHead = -1;

  private head(): number {
    if (this.pHead === -1) this.pHead = Atomics.load(this.ctl, HEAD) >>> 0;
    return this.pHead;
  }

  /**
   * Reserves room for a payload of n bytes. Returns the index in `data` where the payload
   * goes, or -1 when the ring is full. Must be followed by publish() before the next reserve.
   */
  reserve(n: number): number {
    const head = this.head();
    const need = (RECORD_HEADER + n + 3) & ~3;
    if (need > this.capacity / 2) return -1;
    const used = (head - (Atomics.load(this.ctl, TAIL) >>> 0)) >>> 0;
    let idx = head & this.mask;
    const toEnd = this.capacity - idx;
    const skip = toEnd < need ? toEnd : 0;
    if (used + skip + need > this.capacity) return -1;
    if (skip) {
      this.dv.setUint32(idx, WRAP, true);
      this.pHead = (head + skip) >>> 0;
      idx = 0;
    }
    this.dv.setUint32(idx, n, true);
    this.pendingNeed = need;
    return idx + RECORD_HEADER;
  }

  private pendingNeed = 0;

  /** Makes the reserved record visible to the consumer. Returns the position after it. */
  publish(): number {
    const next = (this.pHead + this.pendingNeed) >>> 0;
    this.pHead = next;
    this.pendingNeed = 0;
    Atomics.store(this.ctl, HEAD, next | 0);
    return next;
  }

  /**
   * Like publish(), but HEAD stays private until flush(): the producer hands over the records
   * of one event-loop turn to the consumer at once. Returns the position after the record.
   */
  publishLater(): number {
    const next = (this.pHead + this.pendingNeed) >>> 0;
    this.pHead = next;
    this.pendingNeed = 0;
    return next;
  }

  /** Makes every record published with publishLater() visible to the consumer. */
  flush(): void {
    if (this.pHead !== -1) Atomics.store(this.ctl, HEAD, this.pHead | 0);
  }

  /** Convenience for tests and benchmarks: reserve + copy + publish. */
  push(payload: Uint8Array): number {
    const at = this.reserve(payload.length);
    if (at < 0) return -1;
    this.data.set(payload, at);
    return this.publish();
  }

  /** The ack watermark (see header comment). */
  tail(): number {
    return Atomics.load(this.ctl, TAIL) >>> 0;
  }

  /** Bytes in the ring not yet released by the consumer. */
  used(): number {
    return ((Atomics.load(this.ctl, HEAD) >>> 0) - (Atomics.load(this.ctl, TAIL) >>> 0)) >>> 0;
  }

  // ---- consumer side -------------------------------------------------------------------

  /** Where a (re)started consumer begins: everything before TAIL is done. */
  consumerStart(): number {
    return this.tail();
  }

  hasData(from: number): boolean {
    return (Atomics.load(this.ctl, HEAD) >>> 0) !== from;
  }

  /**
   * Visits records from position `from` up to HEAD (at most maxBytes of payload), calling
   * visit(index, len) with the payload's index in `data`. Returns the position after the last
   * record visited. Payload bytes stay valid until release() moves TAIL past them.
   */
  read(from: number, maxBytes: number, visit: (index: number, len: number) => void): number {
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    let pos = from;
    let bytes = 0;
    while (pos !== head && bytes < maxBytes) {
      const idx = pos & this.mask;
      const len = this.dv.getUint32(idx, true);
      if (len === WRAP) {
        pos = (pos + (this.capacity - idx)) >>> 0;
        continue;
      }
      visit(idx + RECORD_HEADER, len);
      bytes += len;
      pos = (pos + ((RECORD_HEADER + len + 3) & ~3)) >>> 0;
    }
    return pos;
  }

  /**
   * Frees everything before pos and publishes it as the ack watermark, with the log offset
   * the lane has reached (stored first; the Atomics store of TAIL publishes both).
   */
  release(pos: number, logEnd = 0): void {
    this.ctlF64[LOG_END_F64] = logEnd;
    Atomics.store(this.ctl, TAIL, pos | 0);
  }

  /** Producer: the lane's log offset as of the last TAIL read (read TAIL first). */
  logEnd(): number {
    return this.ctlF64[LOG_END_F64];
  }

  // ---- ack wake-up coalescing ------------------------------------------------------------

  /** Consumer: true when the producer must be woken (no wake-up is already on its way). */
  claimAckWake(): boolean {
    return Atomics.compareExchange(this.ctl, ACK_PENDING, 0, 1) === 0;
  }

  /** Producer: called when a wake-up arrives, before reading the watermark. */
  clearAckWake(): void {
    Atomics.store(this.ctl, ACK_PENDING, 0);
  }
}

/**
 * Which part of a lane a sink has delivered: records are sent in offset order but confirmed in
 * any order (Kafka partitions, parallel HTTP requests). The committed offset only moves over a
 * contiguous run of confirmed records, so a cursor never passes something undelivered.
 */
export interface InFlight {
  offset: number;
  next: number;
  done: boolean;
  receivedAtMs: number;
  /** Times the sink answered `retry` for this record: its own backoff grows with it. */
  attempts: number;
}

export class DeliveryTracker {
  private items: InFlight[] = [];
  private head = 0;
  private committedOffset: number;

  constructor(start: number) {
    this.committedOffset = start;
  }

  /** Registers a record as sent; returns the handle to confirm it with. */
  add(offset: number, next: number, receivedAtMs: number): InFlight {
    const f: InFlight = { offset, next, done: false, receivedAtMs, attempts: 0 };
    this.items.push(f);
    return f;
  }

  /** Confirms a record; returns true when the committed offset moved. */
  done(f: InFlight): boolean {
    f.done = true;
    let moved = false;
    while (this.head < this.items.length && this.items[this.head].done) {
      this.committedOffset = this.items[this.head].next;
      this.head++;
      moved = true;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return moved;
  }

  /** Everything below this offset is delivered. */
  committed(): number {
    return this.committedOffset;
  }

  inFlight(): number {
    return this.items.length - this.head;
  }

  /** receivedAt of the oldest record not yet delivered, or null. */
  oldestPendingReceivedAt(): number | null {
    for (let i = this.head; i < this.items.length; i++) if (!this.items[i].done) return this.items[i].receivedAtMs;
    return null;
  }

  /** Forget everything in flight (to send again from the committed offset). */
  reset(): void {
    this.items = [];
    this.head = 0;
  }
}

/**
 * The sink host: the one thread that feeds every sink from the log. For each sink and lane it
 * reads records from the sink's durable cursor up to the lane's fsynced end (LaneTail), sends
 * the ones whose route lists the sink, and moves the cursor only over contiguous delivered
 * records (DeliveryTracker). It retries what a sink could not deliver now, writes what can
 * never be delivered to that sink's dead letters (<dataDir>/log/dlq-<sink>, topic
 * "<topic>.dlq", with the reason), commits cursors, and publishes per-lane delivered offsets
 * for the `delivered` ack.
 *
 * Each sink has its own cursors, in-flight limit and timers: a slow or dead sink never holds
 * back another, nor ingest (the log absorbs its backlog up to log.maxLogBytes).
 *
 * Disk errors (ENOSPC, EIO, EMFILE) in reading the log, committing cursors or writing dead
 * letters never end the process: each becomes the sink's health in /stats (DiskFaults), the
 * step is tried again after a pause, and the fault clears by itself once the step succeeds.
 */
import type { MessagePort } from 'node:worker_threads';
import type { CrowdConfig } from '../config/types.js';
import { encodeEnvelopeReference, type Envelope } from '../envelope/envelope-codec.js';
import { peekEnvelope, type EnvelopeRouting } from '../envelope/envelope-peek.js';
import { LaneControl } from '../lanes/lane-control.js';
import { CursorStore, lanePosition, type LaneCursors } from '../log/cursors.js';
import { frameSize } from '../log/frame-layout.js';
import { sealedFrames } from '../log/frames.js';
import { LaneLog, deadLetterDir, listLanes } from '../log/lane-log.js';
import { LaneTail } from '../log/lane-tail.js';
import type { Logger } from '../logger.js';
import { DeliveryTracker, type InFlight } from './delivery-tracker.js';
import { retryBackoffMs } from './retry-backoff.js';
import type { DeliveryOutcome, OutboundMessage, Sink } from './sink-types.js';
import { StoredMessage } from './stored-message.js';

export interface SinkStats {
  delivered: number;
  failed: number;
  retries: number;
  inFlight: number;
  backlogRecords: number;
  backlogBytes: number;
  oldestUndeliveredAgeMs: number;
  healthy: boolean;
  health: string;
  deliveryLatency: number[];
}

const MAX_IN_FLIGHT = 10_000;
const READ_BYTES = 256 * 1024;
const CURSOR_COMMIT_MS = 200;
const IDLE_POLL_MS = 2;
/** Pause before a step that failed on the disk is tried again. */
const DISK_RETRY_MS = 200;

/** The disk faults of one sink, by step; each clears when its step next succeeds. */
class DiskFaults {
  private readonly faults = new Map<'read' | 'cursor' | 'dead letter', string>();

  constructor(private readonly sink: string, private readonly log: Logger) {}

  set(step: 'read' | 'cursor' | 'dead letter', e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    if (this.faults.get(step) !== msg) this.log.error({ event: 'sink_disk_error', sink: this.sink, step, err: msg }, 'sink host: disk error; retrying');
    this.faults.set(step, msg);
  }

  clear(step: 'read' | 'cursor' | 'dead letter'): void {
    if (this.faults.delete(step)) this.log.info({ event: 'sink_disk_recovered', sink: this.sink, step }, 'sink host: disk step works again');
  }

  /** null when there is no fault, else e.g. "disk: cursor: ENOSPC: no space left on device". */
  describe(): string | null {
    if (this.faults.size === 0) return null;
    return `disk: ${[...this.faults].map(([step, m]) => `${step}: ${m}`).join('; ')}`;
  }
}

interface LaneFeed {
  lane: number;
  live: boolean;
  tail: LaneTail;
  tracker: DeliveryTracker;
  /** Messages the sink refused for now (its queue was full), in order. */
  waiting: Array<{ f: InFlight; m: OutboundMessage }>;
  committedSaved: number;
}

class SinkDriver {
  readonly feeds: LaneFeed[] = [];
  delivered = 0;
  failed = 0;
  /** Retry outcomes of all messages (stats); each message's backoff uses its own InFlight.attempts. */
  retries = 0;
  private avgFrame = 256;
  private dlq: LaneLog | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Shutting down: finish what is in flight, read nothing new. */
  draining = false;
  /** Messages handed to the sink whose outcome has not come yet (what a shutdown waits for). */
  outstanding = 0;
  /** Delivery latency (receivedAt to delivery report), ms, a bounded reservoir for quantiles. */
  readonly latencies: number[] = [];
  readonly disk: DiskFaults;

  constructor(
    readonly index: number,
    readonly sink: Sink,
    readonly topics: ReadonlySet<string>,
    private readonly host: SinkHost,
    /**
     * This sink's cursors as last committed (every lane of its file, also those it has no
     * feed for), read once at start and committed from here: the sink host is the only writer
     * of its sinks' cursor files while it runs (the supervisor clamps them before the host is
     * made; lanes only read them, for retention), so the file never changes under it.
     */
    readonly cursors: LaneCursors,
  ) {
    this.disk = new DiskFaults(sink.name, host.log);
  }

  addFeed(lane: number, live: boolean): void {
    const start = lanePosition(this.cursors, lane);
    this.feeds.push({ lane, live, tail: new LaneTail(this.host.config.dataDir, lane, start), tracker: new DeliveryTracker(start), waiting: [], committedSaved: start });
  }

  start(): void {
    this.sink.setWakeUp?.(() => this.wake());
    this.pump();
  }

  private wakeQueued = false;
  /** A log read failed in this pump round: come back after DISK_RETRY_MS. */
  private readFailed = false;

  /** The sink can take messages again: pump on the next turn rather than at the next poll. */
  private wake(): void {
    if (this.stopped || this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      if (this.stopped) return;
      if (this.timer) clearTimeout(this.timer);
      this.pump();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const f of this.feeds) f.tail.close();
    this.dlq?.close();
  }

  private inFlight(): number {
    let n = 0;
    for (const f of this.feeds) n += f.tracker.inFlight();
    return n;
  }

  /** Reads and sends what it can, then comes back soon (sooner when there is more to do). */
  private pump(): void {
    if (this.stopped) return;
    let next: number;
    this.readFailed = false;
    try {
      next = this.pumpOnce() ? 0 : IDLE_POLL_MS;
    } catch (e) {
      // Anything else that threw while sending: the same pause, never an uncaught timer error.
      this.disk.set('read', e);
      this.readFailed = true;
      next = DISK_RETRY_MS;
    }
    if (this.readFailed) next = DISK_RETRY_MS;
    else this.disk.clear('read');
    this.timer = setTimeout(() => this.pump(), next);
  }

  /** One round of reading and sending; true when there was something to do. */
  private pumpOnce(): boolean {
    let busy = false;
    for (const feed of this.feeds) {
      while (feed.waiting.length > 0) {
        const w = feed.waiting[0];
        if (!this.trySend(feed, w.f, w.m)) break;
        feed.waiting.shift();
      }
      if (feed.waiting.length > 0) continue;
      const limit = feed.live ? this.host.syncedOffset(feed.lane) : Infinity;
      while (!this.draining && this.inFlight() < MAX_IN_FLIGHT && feed.waiting.length === 0) {
        let recs;
        try {
          recs = feed.tail.read(limit, READ_BYTES);
        } catch (e) {
          // LaneTail.read on a failing disk (EIO, EMFILE...): health, a pause, and the segment
          // opened afresh at the same position next time.
          this.disk.set('read', e);
          this.readFailed = true;
          try {
            feed.tail.seek(feed.tail.position());
          } catch {
            // closing on a failing disk: the next read opens it again anyway
          }
          break;
        }
        if (recs.length === 0) break;
        busy = true;
        for (const r of recs) {
          this.avgFrame = this.avgFrame * 0.99 + frameSize(r.payload.length) * 0.01;
          let route: EnvelopeRouting;
          try {
            route = peekEnvelope(r.payload);
          } catch {
            // A frame that checks out but does not parse: never deliverable.
            const f = feed.tracker.add(r.offset, r.next, Date.now());
            feed.tracker.done(f);
            this.failed++;
            continue;
          }
          const f = feed.tracker.add(r.offset, r.next, route.receivedAtMs);
          if (!this.topics.has(route.topic)) {
            feed.tracker.done(f);
            continue;
          }
          const m = new StoredMessage(r.payload, feed.lane, r.offset);
          if (feed.waiting.length > 0 || !this.trySend(feed, f, m)) feed.waiting.push({ f, m });
        }
      }
    }
    this.host.publish(this);
    return busy;
  }

  private trySend(feed: LaneFeed, f: InFlight, m: OutboundMessage): boolean {
    let called = false;
    const taken = this.sink.send(m, (o) => {
      called = true;
      this.outstanding--;
      this.outcome(feed, f, m, o);
    });
    if (taken) this.outstanding++;
    else if (called) this.outstanding++; // refused but answered at once: balance the decrement
    return taken;
  }

  private outcome(feed: LaneFeed, f: InFlight, m: OutboundMessage, o: DeliveryOutcome): void {
    if (this.stopped) return;
    if (o.kind === 'delivered') {
      this.delivered++;
      const lat = Date.now() - f.receivedAtMs;
      if (this.latencies.length < 4096) this.latencies.push(lat);
      else this.latencies[Math.floor(Math.random() * 4096)] = lat;
      feed.tracker.done(f);
    } else if (o.kind === 'retry') {
      this.retries++;
      f.attempts++;
      const backoff = o.afterMs ?? this.host.retryDelayMs(f.attempts);
      setTimeout(() => {
        if (this.stopped) return;
        if (!this.trySend(feed, f, m)) feed.waiting.unshift({ f, m });
      }, backoff).unref();
    } else {
      this.deadLetterThenDone(feed, f, m, o.reason);
    }
  }

  /**
   * Writes the dead letter, then lets the cursor pass the message. A write that fails (disk
   * full, I/O error) is tried again after a pause: the message stays in flight and its
   * cursor waits, it is never passed without its dead letter.
   */
  private deadLetterThenDone(feed: LaneFeed, f: InFlight, m: OutboundMessage, reason: string): void {
    if (this.stopped) return;
    try {
      this.deadLetter(m, reason);
      this.disk.clear('dead letter');
    } catch (e) {
      this.disk.set('dead letter', e);
      try {
        this.dlq?.close();
      } catch {
        // closing a log on a failing disk: it is reopened (and its tail recovered) next time
      }
      this.dlq = null;
      setTimeout(() => this.deadLetterThenDone(feed, f, m, reason), DISK_RETRY_MS).unref();
      return;
    }
    this.failed++;
    feed.tracker.done(f);
  }

  /** Appends the message, as `<topic>.dlq` with the reason, to this sink's dead-letter log. */
  private deadLetter(m: OutboundMessage, reason: string): void {
    this.dlq ??= LaneLog.openDir(deadLetterDir(this.host.config.dataDir, this.sink.name), -1, this.host.config.log.segmentBytes).log;
    const e = envelopeOrStub(m);
    const payload = Buffer.from(encodeEnvelopeReference({
      ...e,
      topic: `${e.topic}.dlq`,
      headers: [...e.headers, { name: 'crowd-dlq-reason', value: reason }, { name: 'crowd-dlq-sink', value: this.sink.name }],
    }));
    const buf = sealedFrames([payload]);
    this.dlq.write(buf, buf.length);
    this.dlq.sync();
    this.host.log.warn({ event: 'dead_letter', sink: this.sink.name, id: e.id, topic: e.topic, reason }, 'message dead-lettered');
  }

  stats(): SinkStats {
    let backlogBytes = 0;
    let oldest: number | null = null;
    for (const f of this.feeds) {
      const end = f.live ? this.host.syncedOffset(f.lane) : f.tail.position();
      backlogBytes += Math.max(0, end - f.tracker.committed());
      const o = f.tracker.oldestPendingReceivedAt();
      if (o !== null && (oldest === null || o < oldest)) oldest = o;
    }
    const sink = this.sink.health();
    const disk = this.disk.describe();
    const h = disk ? { healthy: false, detail: `${disk}; ${sink.detail}` } : sink;
    return {
      delivered: this.delivered, failed: this.failed, retries: this.retries, inFlight: this.inFlight(),
      backlogRecords: Math.round(backlogBytes / this.avgFrame), backlogBytes,
      oldestUndeliveredAgeMs: oldest === null ? 0 : Math.max(0, Date.now() - oldest),
      healthy: h.healthy, health: h.detail, deliveryLatency: this.latencies.slice(),
    };
  }
}

/** The message's envelope; one that does not decode goes to the dead letters as its bytes. */
function envelopeOrStub(m: OutboundMessage): Envelope {
  try {
    return m.envelope;
  } catch {
    return {
      id: '', topic: 'undecodable', receivedAtMs: Date.now(), key: '', headers: [], contentType: 'application/x-protobuf',
      body: m.payload, method: '', path: '', query: '',
    };
  }
}

export class SinkHost {
  private readonly drivers: SinkDriver[] = [];
  private readonly controls: LaneControl[];
  private readonly watermarks: Float64Array;
  private readonly cursors: CursorStore;
  private commitTimer: NodeJS.Timeout | null = null;
  private wakePending = false;

  constructor(
    readonly config: CrowdConfig,
    readonly log: Logger,
    laneControls: SharedArrayBuffer[],
    watermarks: SharedArrayBuffer,
    private readonly acceptorPorts: MessagePort[],
    sinks: Sink[],
    /** Delay before a message's retry number `attempt` when its sink names none (tests pin it). */
    readonly retryDelayMs: (attempt: number) => number = (attempt) => retryBackoffMs(attempt, Math.random()),
  ) {
    this.controls = laneControls.map((s) => new LaneControl(s));
    this.watermarks = new Float64Array(watermarks);
    this.cursors = new CursorStore(config.dataDir);
    const laneSet = new Set([...listLanes(config.dataDir), ...this.controls.map((_, i) => i)]);
    sinks.forEach((sink, index) => {
      const topics = new Set((config.routes ?? []).filter((r) => r.sinks.includes(sink.name)).map((r) => r.topic));
      const d = new SinkDriver(index, sink, topics, this, this.cursors.load(sink.name));
      for (const lane of [...laneSet].sort((a, b) => a - b)) d.addFeed(lane, lane < this.controls.length);
      this.drivers.push(d);
    });
  }

  syncedOffset(lane: number): number {
    return this.controls[lane].syncedOffset();
  }

  async start(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.sink.start()));
    for (const d of this.drivers) d.start();
    this.commitTimer = setInterval(() => this.commitCursors(), CURSOR_COMMIT_MS);
  }

  /** Publishes a driver's delivered offsets (for `ack: delivered`) and wakes the acceptors. */
  publish(d: SinkDriver): void {
    const lanes = this.controls.length;
    let moved = false;
    for (const f of d.feeds) {
      if (f.lane >= lanes) continue;
      const at = d.index * lanes + f.lane;
      const c = f.tracker.committed();
      if (this.watermarks[at] !== c) {
        this.watermarks[at] = c;
        moved = true;
      }
    }
    if (moved && !this.wakePending) {
      this.wakePending = true;
      setImmediate(() => {
        this.wakePending = false;
        for (const p of this.acceptorPorts) p.postMessage(0);
      });
    }
  }

  /** Commits moved cursors; one that cannot be written (disk) is the sink's health and is tried at the next tick. */
  private commitCursors(): void {
    for (const d of this.drivers) {
      const moved = d.feeds.filter((f) => f.tracker.committed() !== f.committedSaved);
      if (moved.length === 0) continue;
      for (const f of d.feeds) d.cursors[String(f.lane)] = f.tracker.committed();
      try {
        this.cursors.commit(d.sink.name, d.cursors);
      } catch (e) {
        d.disk.set('cursor', e);
        continue;
      }
      d.disk.clear('cursor');
      for (const f of moved) f.committedSaved = f.tracker.committed();
    }
  }

  stats(): Record<string, SinkStats> {
    return Object.fromEntries(this.drivers.map((d) => [d.sink.name, d.stats()]));
  }

  /** Stops reading; waits (bounded) for what is in flight; commits cursors; closes sinks. */
  async stop(graceMs = 5000): Promise<void> {
    for (const d of this.drivers) d.draining = true;
    const until = Date.now() + graceMs;
    while (Date.now() < until && this.drivers.some((d) => d.outstanding > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const d of this.drivers) d.stop();
    if (this.commitTimer) clearInterval(this.commitTimer);
    this.commitCursors();
    await Promise.all(this.drivers.map((d) => d.sink.close()));
  }
}


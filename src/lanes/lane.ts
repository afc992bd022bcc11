/**
 * A lane: drains the rings of every acceptor in batches, frames each record for the log, has
 * the log seal the batch (one native call) and write it, and group-commits with one fdatasync
 * for everything that arrived meanwhile. Then it moves each ring's TAIL (the ack watermark)
 * and wakes each acceptor once per batch.
 *
 * The loop is synchronous and parks in Atomics.wait when idle: a lane does no other I/O, so a
 * frozen event loop costs nothing, and sync fs calls avoid a thread-pool hop per batch.
 *
 * On a write or fsync error the lane marks itself unwritable (acceptors answer 503), cuts the
 * log back to its last fsync (fsyncgate: never trust a failed fsync), and retries the same
 * records from the ring, whose TAIL never moved past them.
 */
import { MessagePort } from 'node:worker_threads';
import type { CrowdConfig } from '../config/types.js';
import { FRAME_HEADER, FRAME_MAGIC, frameSize } from '../log/frame-layout.js';
import { LaneLog } from '../log/lane-log.js';
import { CursorStore } from '../log/cursors.js';
import { retentionPass } from '../log/retention.js';
import { SpscRing } from '../ring/spsc-ring.js';
import { createLogger } from '../logger.js';
import { observe } from '../stats/histogram.js';
import { APPEND_HIST, FAULT_DONE, FAULT_SLEEP, LaneControl, LaneState, SLEEPING, STAT, STOP } from './lane-control.js';

class InjectedCrash extends Error {}

export interface LaneTask {
  lane: number;
  config: CrowdConfig;
  /** One ring per acceptor, this lane is the consumer. */
  rings: SharedArrayBuffer[];
  control: SharedArrayBuffer;
  /** One port per acceptor: a message means "your watermark moved". */
  acceptorPorts: MessagePort[];
  /** Events for the supervisor: ready (with the recovery report), error. */
  supervisorPort: MessagePort;
}

const RECORD_FSYNC = 1;
/** The acceptor cancelled the record before handing it over (src/acceptor/ring-writer.ts): never stored. */
const RECORD_CANCELLED = 2;
/**
 * Fault injection for the crash tests: the lane throws once, between writing a batch and its
 * fsync (mid-batch), after this many records. Never set in production.
 */
const CRASH_AFTER = Number(process.env.CROWD_FAULT_LANE_CRASH_AFTER_RECORDS ?? 0);
/** Fault injection (tests): a log disk that stores at most this many records per second. */
const SLOW_DISK_RPS = Number(process.env.CROWD_FAULT_LANE_RECORDS_PER_SEC ?? 0);
const IDLE_WAIT_MS = 1000;
/** How long a lane carrying memory-ack traffic gathers records before its next write. */
const MEMORY_LINGER_MS = 0.25;
const RETENTION_EVERY_MS = 1000;

export function runLane(t: LaneTask): { records: number } {
  const log = createLogger(t.config.logLevel, `lane-${t.lane}`);
  const ctl = new LaneControl(t.control);
  const rings = t.rings.map((s) => new SpscRing(s));
  const { segmentBytes, maxBatchBytes, flushIntervalMs } = t.config.log;
  let laneLog: LaneLog;
  try {
    const opened = LaneLog.open(t.config.dataDir, t.lane, segmentBytes);
    laneLog = opened.log;
    ctl.stats[STAT.CORRUPT_AT_START] = opened.report.corruptRegions;
    ctl.stats[STAT.TORN_AT_START] = opened.report.tornBytes;
    log.info({ event: 'lane_recovered', ...opened.report }, 'lane log opened');
    t.supervisorPort.postMessage({ type: 'ready', report: opened.report });
  } catch (e) {
    ctl.setState(LaneState.Failed);
    log.error({ event: 'lane_open_failed', err: e }, 'cannot open the lane log');
    t.supervisorPort.postMessage({ type: 'error', message: (e as Error).message });
    throw e;
  }
  const cursors = new CursorStore(t.config.dataDir);
  ctl.stats[STAT.SYNCED_OFFSET] = laneLog.endOffset();
  const publishSizes = () => {
    ctl.stats[STAT.LOG_BYTES] = laneLog.totalBytes();
    ctl.stats[STAT.END_OFFSET] = laneLog.endOffset();
  };
  publishSizes();
  // For Retry-After on the log quota (acceptor/admission.ts): how far the slowest consumer is
  // from freeing a segment, and how fast it moves. No consumer: nothing is ever freed.
  let lastMin: number | null = null;
  let lastMinAt = 0;
  const publishRetention = (min: number | null, now: number) => {
    if (min === null) {
      ctl.stats[STAT.CONSUMER_RATE] = 0;
      return;
    }
    ctl.stats[STAT.RETENTION_NEED_BYTES] = laneLog.bytesBeforeRemovable(min);
    if (lastMin !== null) {
      const sample = Math.max(0, min - lastMin) / ((now - lastMinAt) / 1000);
      const prev = ctl.stats[STAT.CONSUMER_RATE];
      ctl.stats[STAT.CONSUMER_RATE] = prev === 0 || sample === 0 ? sample : prev * 0.7 + sample * 0.3;
    }
    lastMin = min;
    lastMinAt = now;
  };

  // Largest frame a ring can hand over is half the ring; the batch holds one more than the budget.
  const batch = Buffer.allocUnsafe(maxBatchBytes + frameSize(rings.reduce((m, r) => Math.max(m, r.capacity / 2), 0)));
  const readPos = rings.map((r) => r.consumerStart());
  const wake = () => {
    for (let i = 0; i < rings.length; i++) if (rings[i].claimAckWake()) t.acceptorPorts[i].postMessage(0);
  };
  ctl.setState(LaneState.Ready);
  wake();

  let lastSync = performance.now();
  let lastRetention = 0;
  let lastRetentionError = '';
  let lastRetentionErrorAt = 0;
  let records = 0;
  let slowDiskFreeAt = 0;
  let failures = 0;
  /** A durable record was written and its fsync has not happened yet. */
  let durableWaiting = false;
  /** The last cycle wrote only memory-ack records: linger instead of sleeping (see below). */
  let memoryOnlyStreak = false;

  for (;;) {
    // 1. Frame whatever the rings hold (up to the batch budget).
    let len = 0;
    let needSync = false;
    let framed = 0;
    let cancelled = 0;
    for (let i = 0; i < rings.length; i++) {
      const ring = rings[i];
      readPos[i] = ring.read(readPos[i], maxBatchBytes - len, (idx, n) => {
        const flags = ring.data[idx];
        if (flags & RECORD_CANCELLED) {
          cancelled++;
          return;
        }
        const payload = n - 1;
        if (flags & RECORD_FSYNC) needSync = true;
        batch.writeUInt32LE(FRAME_MAGIC, len);
        batch.writeUInt32LE(payload, len + 8);
        batch.set(ring.data.subarray(idx + 1, idx + n), len + FRAME_HEADER);
        const size = frameSize(payload);
        batch.fill(0, len + FRAME_HEADER + payload, len + size);
        len += size;
        framed++;
      });
    }
    try {
      // 2. One write and, when a durable record is in it (or memory records waited long
      // enough), one fdatasync for the whole batch: group commit.
      const t0 = performance.now();
      if (len > 0) {
        laneLog.write(batch, len); // seals the batch with the segment's secrets (one native call)
        records += framed;
        if (CRASH_AFTER > 0 && records >= CRASH_AFTER && Atomics.compareExchange(ctl.i32, FAULT_DONE, 0, 1) === 0) {
          throw new InjectedCrash(`injected lane crash after ${records} records (CROWD_FAULT_LANE_CRASH_AFTER_RECORDS)`);
        }
        ctl.stats[STAT.RECORDS] += framed;
        ctl.stats[STAT.BATCHES]++;
        if (SLOW_DISK_RPS > 0) {
          const now = performance.now();
          slowDiskFreeAt = Math.max(slowDiskFreeAt, now) + (framed / SLOW_DISK_RPS) * 1000;
          if (slowDiskFreeAt > now) Atomics.wait(ctl.i32, FAULT_SLEEP, 0, slowDiskFreeAt - now);
        }
      }
      const stopping = ctl.stopRequested();
      if (needSync) durableWaiting = true;
      if (laneLog.hasUnsynced() && (durableWaiting || stopping || t0 - lastSync >= flushIntervalMs)) {
        const s0 = performance.now();
        laneLog.sync();
        ctl.stats[STAT.SYNCED_OFFSET] = laneLog.endOffset();
        const s1 = performance.now();
        lastSync = s1;
        ctl.stats[STAT.FSYNCS]++;
        observe(ctl.stats, STAT.FSYNC_HIST, (s1 - s0) / 1000);
        observe(ctl.stats, APPEND_HIST, (s1 - t0) / 1000);
        durableWaiting = false;
        const logEnd = laneLog.endOffset();
        for (let i = 0; i < rings.length; i++) rings[i].release(readPos[i], logEnd);
        if (failures > 0) {
          failures = 0;
          ctl.setState(LaneState.Ready);
          log.info({ event: 'lane_writable' }, 'log writable again');
        }
        wake();
      } else if (len === 0 && cancelled > 0 && !laneLog.hasUnsynced()) {
        // Only cancelled records, everything before them fsynced: move TAIL past them, so the
        // acceptor's waits (and its drain) do not hold on to them until the next record.
        const logEnd = laneLog.endOffset();
        for (let i = 0; i < rings.length; i++) rings[i].release(readPos[i], logEnd);
        wake();
      }
      publishSizes();
    } catch (e) {
      if (e instanceof InjectedCrash) throw e;
      failures++;
      ctl.stats[STAT.WRITE_ERRORS]++;
      if (failures === 1) log.error({ event: 'lane_write_failed', err: e }, 'log write or fsync failed; answering 503 until it works again');
      ctl.setState(LaneState.Unwritable);
      wake();
      try {
        laneLog.repair();
      } catch (e2) {
        log.error({ event: 'lane_repair_failed', err: e2 }, 'cannot cut the log back to its last fsync');
      }
      for (let i = 0; i < rings.length; i++) readPos[i] = rings[i].consumerStart();
      publishSizes();
      Atomics.wait(ctl.i32, SLEEPING, 0, Math.min(1000, 10 * 2 ** Math.min(failures, 7)));
      if (ctl.stopRequested() && failures > 3) break;
      continue;
    }

    const now = performance.now();
    if (now - lastRetention >= RETENTION_EVERY_MS) {
      lastRetention = now;
      // Never throws (retention.ts): a failed pass deletes nothing, is logged, and the next
      // pass tries again; the lane keeps taking records.
      const r = retentionPass(laneLog, cursors);
      if (r.error) {
        ctl.stats[STAT.CONSUMER_RATE] = 0;
        if (r.error.message !== lastRetentionError || now - lastRetentionErrorAt >= 60_000) {
          log.error({ event: 'retention_failed', err: r.error }, `retention skipped, nothing removed: ${r.error.message}`);
          lastRetentionError = r.error.message;
          lastRetentionErrorAt = now;
        }
      } else {
        if (lastRetentionError !== '') log.info({ event: 'retention_resumed' }, 'retention works again');
        lastRetentionError = '';
        if (r.freed > 0) publishSizes();
        publishRetention(r.min, now);
      }
    }

    if (ctl.stopRequested()) {
      if (len === 0 && rings.every((r, i) => !r.hasData(readPos[i])) && !laneLog.hasUnsynced()) break;
      continue;
    }
    if (len > 0 && needSync) {
      // Durable records: the fsync just taken was the batching window; go again at once.
      memoryOnlyStreak = false;
      continue;
    }
    if (len > 0 || memoryOnlyStreak) {
      // Memory-ack traffic has no fsync to pace it: without this the lane would wake (and an
      // acceptor would pay a futex syscall) for nearly every request. Park briefly without
      // announcing sleep, so records pile up into one write.
      memoryOnlyStreak = len > 0;
      Atomics.wait(ctl.i32, STOP, 0, MEMORY_LINGER_MS);
      continue;
    }
    // 3. Idle: announce sleep, look once more (a producer may have published meanwhile), park
    // until a producer rings or the oldest unsynced memory record is due for its fsync.
    Atomics.store(ctl.i32, SLEEPING, 1);
    if (rings.some((r, i) => r.hasData(readPos[i]))) {
      Atomics.store(ctl.i32, SLEEPING, 0);
      continue;
    }
    const wait = laneLog.hasUnsynced() ? Math.max(0, flushIntervalMs - (performance.now() - lastSync)) : IDLE_WAIT_MS;
    Atomics.wait(ctl.i32, SLEEPING, 1, wait);
    Atomics.store(ctl.i32, SLEEPING, 0);
  }

  laneLog.close();
  publishSizes();
  ctl.setState(LaneState.Stopped);
  wake();
  log.info({ event: 'lane_stopped', records }, 'lane stopped');
  return { records };
}

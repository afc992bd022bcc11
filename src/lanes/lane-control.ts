/**
 * The control block shared by the supervisor, the acceptors and one lane: every slot named
 * here, nowhere else.
 *
 *   Int32 slots (each on its own 64-byte line)      Float64 stats (written by the lane only)
 *   SLEEPING  lane is parked in Atomics.wait        LOG_BYTES, RECORDS, BATCHES, FSYNCS,
 *   STOP      supervisor asks the lane to finish    END_OFFSET, CORRUPT_AT_START, TORN_AT_START,
 *   STATE     starting | ready | unwritable | ...   SYNCED_OFFSET, RETENTION_NEED_BYTES, CONSUMER_RATE,
 *                                                   then histograms: fsync, append (write+fsync)
 */
import { histogramSlots } from '../stats/histogram.js';

const I32_BYTES = 256;
export const SLEEPING = 0;
export const STOP = 16;
export const STATE = 32;
/** Fault injection (tests): set once the injected lane crash has happened. */
export const FAULT_DONE = 48;
/** Fault injection (tests): never signalled; a slowed lane sleeps on it. */
export const FAULT_SLEEP = 52;

export const enum LaneState {
  Starting = 0,
  Ready = 1,
  /** A write or fsync failed; the lane is repairing and retrying. New requests get 503. */
  Unwritable = 2,
  Stopped = 3,
  Failed = 4,
}

export const STAT = {
  LOG_BYTES: 0,
  RECORDS: 1,
  BATCHES: 2,
  FSYNCS: 3,
  END_OFFSET: 4,
  CORRUPT_AT_START: 5,
  TORN_AT_START: 6,
  WRITE_ERRORS: 7,
  /** Log offset up to which everything is fsynced: sinks read up to here, never further. */
  SYNCED_OFFSET: 8,
  /** Bytes the slowest consumer must still read before the oldest segment can be removed. */
  RETENTION_NEED_BYTES: 9,
  /** How fast (bytes/s, smoothed) the slowest consumer's cursor moves; 0 when it does not. */
  CONSUMER_RATE: 10,
  FSYNC_HIST: 11,
} as const;
export const APPEND_HIST = STAT.FSYNC_HIST + histogramSlots();
const STAT_SLOTS = APPEND_HIST + histogramSlots();

export function createLaneControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(I32_BYTES + STAT_SLOTS * 8);
}

export class LaneControl {
  readonly i32: Int32Array;
  readonly stats: Float64Array;

  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab, 0, I32_BYTES / 4);
    this.stats = new Float64Array(sab, I32_BYTES, STAT_SLOTS);
  }

  state(): LaneState {
    return Atomics.load(this.i32, STATE);
  }

  setState(s: LaneState): void {
    Atomics.store(this.i32, STATE, s);
  }

  /** Producer side: wake the lane if (and only if) it sleeps. */
  ring(): void {
    if (Atomics.load(this.i32, SLEEPING) === 1) {
      Atomics.store(this.i32, SLEEPING, 0);
      Atomics.notify(this.i32, SLEEPING);
    }
  }

  requestStop(): void {
    Atomics.store(this.i32, STOP, 1);
    Atomics.store(this.i32, SLEEPING, 0);
    Atomics.notify(this.i32, SLEEPING);
  }

  stopRequested(): boolean {
    return Atomics.load(this.i32, STOP) === 1;
  }

  syncedOffset(): number {
    return this.stats[STAT.SYNCED_OFFSET];
  }

  logBytes(): number {
    return this.stats[STAT.LOG_BYTES];
  }
}

/**
 * One retention pass of a lane: removes the segments every consumer's cursor has passed.
 * Never throws: a pass that cannot decide (a cursor file that fails its schema, a directory
 * that cannot be read: EMFILE, EIO) deletes nothing and returns the error, for the lane to log
 * and to try again on its next pass. Deleting is the one irreversible step of the log, so it
 * happens only on a sane offset (LaneLog.removeBelow checks it too).
 */
import type { CursorStore } from './cursors.js';
import type { LaneLog } from './lane-log.js';

export interface RetentionResult {
  /** Bytes of segments removed. */
  freed: number;
  /** Lowest cursor of the lane's consumers; null when it has none, or on an error. */
  min: number | null;
  error: Error | null;
}

export function retentionPass(log: LaneLog, cursors: CursorStore): RetentionResult {
  try {
    const min = cursors.minPosition(log.lane);
    return { freed: min === null ? 0 : log.removeBelow(min), min, error: null };
  } catch (e) {
    return { freed: 0, min: null, error: e instanceof Error ? e : new Error(String(e)) };
  }
}

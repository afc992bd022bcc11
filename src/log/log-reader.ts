/**
 * Reading the log back: every good record of a lane from an offset, with corruption counted
 * rather than fatal. Used by `crowd log dump|verify` and tests (sinks read with LaneTail).
 * Reads whole segments; segments are bounded by log.segmentBytes.
 */
import fs from 'node:fs';
import { scanFrames } from './frame-scan.js';
import { laneDir, listLogDirs, listSegments } from './lane-log.js';
import { parseSegmentHeader } from './segment-header.js';

export interface LogRecord {
  lane: number;
  /** Logical offset of the frame. */
  offset: number;
  payload: Buffer;
}

export interface ReadStats {
  records: number;
  corruptRegions: number;
  corruptBytes: number;
  /** Bytes at the end of a lane's last segment that hold no good frame. */
  tailBytes: number;
  segments: number;
  /** Segments whose header does not check out (their frames are not read). */
  badHeaders: number;
  bytes: number;
}

export function emptyReadStats(): ReadStats {
  return { records: 0, corruptRegions: 0, corruptBytes: 0, tailBytes: 0, segments: 0, badHeaders: 0, bytes: 0 };
}

/** Calls onRecord for every good record of one lane at or after `from`, in offset order. */
export function readLane(dataDir: string, lane: number, from: number, onRecord: (r: LogRecord) => void, stats = emptyReadStats()): ReadStats {
  return readLogDir(laneDir(dataDir, lane), lane, from, onRecord, stats);
}

/** The same for any directory in the lane format (dead letters: lane = -1). */
export function readLogDir(dir: string, lane: number, from: number, onRecord: (r: LogRecord) => void, stats = emptyReadStats()): ReadStats {
  for (const records of segmentsOf(dir, lane, from, stats)) for (const r of records) onRecord(r);
  return stats;
}

/**
 * The good records of a log directory at or after `from`, one segment's worth at a time (so a
 * consumer can pause between segments, e.g. for an output stream's back-pressure). Holds one
 * segment in memory; the payloads are views of it. Counts into `stats` as it goes.
 */
export function* segmentsOf(dir: string, lane: number, from: number, stats: ReadStats): Generator<LogRecord[]> {
  const segs = listSegments(dir);
  for (const seg of segs) {
    if (seg.base + seg.size <= from) continue;
    const buf = fs.readFileSync(seg.file);
    stats.segments++;
    stats.bytes += buf.length;
    const format = parseSegmentHeader(buf, seg.base);
    if (!format) {
      // Without its header a segment's frames cannot be verified: none of them is trusted.
      stats.badHeaders++;
      stats.corruptRegions++;
      stats.corruptBytes += buf.length;
      continue;
    }
    const records: LogRecord[] = [];
    const r = scanFrames(buf, format.headerSize, buf.length, {
      frame(pos, start, len) {
        const offset = seg.base + pos;
        if (offset >= from) records.push({ lane, offset, payload: buf.subarray(start, start + len) });
      },
    }, true, format);
    stats.records += r.frames;
    stats.corruptRegions += r.corruptRegions;
    stats.corruptBytes += r.corruptBytes;
    if (r.tail) {
      stats.tailBytes += buf.length - r.goodEnd;
      // A bad tail in a segment that is not the last one is corruption, not a torn write.
      if (seg !== segs[segs.length - 1]) stats.corruptRegions++;
    }
    yield records;
  }
}

/** Every lane, then every sink's dead letters (lane -1). */
export function readAllLanes(dataDir: string, from: number, onRecord: (r: LogRecord) => void): ReadStats {
  const stats = emptyReadStats();
  for (const { dir, lane } of listLogDirs(dataDir)) readLogDir(dir, lane, from, onRecord, stats);
  return stats;
}

/** Every lane, then every sink's dead letters, a segment's records at a time (see segmentsOf). */
export function* allSegments(dataDir: string, from: number, stats: ReadStats): Generator<LogRecord[]> {
  for (const { dir, lane } of listLogDirs(dataDir)) yield* segmentsOf(dir, lane, from, stats);
}

/**
 * One lane's log writer: owns the lane's segment files, appends group-commit batches, fsyncs,
 * rolls segments, repairs after an I/O error and removes segments every consumer has passed.
 * Synchronous on purpose: it runs in a lane thread that does nothing else (see lanes/lane.ts).
 * Format and invariants: frame-layout.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc } from '../native/crc32c.js';
import {
  SEGMENT_HEADER, SEGMENT_HEADER_V2, laneDirName, parseSegmentFileName, segmentFileName, type SegmentFormat,
} from './frame-layout.js';
import { scanFrames } from './frame-scan.js';
import { fsyncDir, writeAll, writeFileDurable } from './fsutil.js';
import { newSegmentFormat, parseSegmentHeader, segmentHeader } from './segment-header.js';

/** Zeros written ahead of the active segment's last frame, at most, at a time. */
const PREALLOCATE_BYTES = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);

export interface SegmentInfo {
  base: number;
  size: number;
  file: string;
}

export interface RecoveryReport {
  lane: number;
  segments: number;
  /** Frames found in the last segment (the only one a crash can have left unfinished). */
  tailSegmentRecords: number;
  tornBytes: number;
  corruptRegions: number;
  corruptBytes: number;
  quarantined: string[];
  endOffset: number;
}

export function listSegments(laneDir: string): SegmentInfo[] {
  let names: string[];
  try {
    names = fs.readdirSync(laneDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: SegmentInfo[] = [];
  for (const n of names) {
    const base = parseSegmentFileName(n);
    if (base === null) continue;
    const file = path.join(laneDir, n);
    out.push({ base, size: fs.statSync(file).size, file });
  }
  return out.sort((a, b) => a.base - b.base);
}

export function listLanes(dataDir: string): number[] {
  const dir = path.join(dataDir, 'log');
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^lane-([0-9]+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * Every log of a data dir in the order the tools read them: the lanes, then each sink's dead
 * letters (lane -1).
 */
export function listLogDirs(dataDir: string): Array<{ dir: string; lane: number }> {
  return [
    ...listLanes(dataDir).map((lane) => ({ dir: laneDir(dataDir, lane), lane })),
    ...listDeadLetterDirs(dataDir).map((dir) => ({ dir, lane: -1 })),
  ];
}

/** Dead-letter logs, one per sink: <dataDir>/log/dlq-<sink>. */
export function listDeadLetterDirs(dataDir: string): string[] {
  const dir = path.join(dataDir, 'log');
  try {
    return fs.readdirSync(dir).filter((n) => n.startsWith('dlq-')).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

export function deadLetterDir(dataDir: string, sink: string): string {
  return path.join(dataDir, 'log', `dlq-${sink}`);
}

export function laneDir(dataDir: string, lane: number): string {
  return path.join(dataDir, 'log', laneDirName(lane));
}

/** A segment's format read from its file's first bytes; null when its header is damaged or missing. */
export function readSegmentFormat(fd: number, base: number): SegmentFormat | null {
  const head = Buffer.alloc(SEGMENT_HEADER_V2);
  const n = fs.readSync(fd, head, 0, head.length, 0);
  return parseSegmentHeader(head.subarray(0, n), base);
}

/**
 * Checks the last segment and truncates a torn tail. Used at start-up (lane open) and by
 * `crowd log verify`. Returns what it found.
 */
export function recoverLastSegment(seg: SegmentInfo): {
  size: number; records: number; torn: number; corruptRegions: number; corruptBytes: number; badHeader: boolean; format: SegmentFormat | null;
} {
  const buf = fs.readFileSync(seg.file);
  const format = parseSegmentHeader(buf, seg.base);
  if (!format) return { size: buf.length, records: 0, torn: 0, corruptRegions: 0, corruptBytes: 0, badHeader: true, format };
  const r = scanFrames(buf, format.headerSize, buf.length, { frame() {} }, true, format);
  let size = buf.length;
  let torn = 0;
  if (r.tail || r.goodEnd !== buf.length) {
    // Cut a torn tail or zeros allocated ahead, or put back the zero padding a crash cut off
    // the last frame, so the next frame starts 4-byte aligned again.
    torn = r.tail ? Math.max(0, buf.length - r.goodEnd) : 0;
    size = r.goodEnd;
    const fd = fs.openSync(seg.file, 'r+');
    try {
      fs.ftruncateSync(fd, size);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  return { size, records: r.frames, torn, corruptRegions: r.corruptRegions, corruptBytes: r.corruptBytes, badHeader: false, format };
}

export class LaneLog {
  readonly dir: string;
  private segments: SegmentInfo[] = [];
  private fd = -1;
  /** Bytes of the active segment that were written (not necessarily fsynced). */
  private written = 0;
  /**
   * File size of the active segment: written frames plus zeros written ahead of them.
   * Appending inside already-written zeros means an fdatasync flushes data only, not a new
   * file size through the journal (measured here: 130 us instead of 215 us per fdatasync).
   */
  private allocated = 0;
  /** Bytes of the active segment known to be on disk. */
  private synced = 0;
  /** The active segment's format: its secrets seal every frame written to it. */
  private format!: SegmentFormat;
  /** After pre-allocation failed (disk nearly full): not tried again before this position. */
  private preallocateRetryAt = 0;

  private constructor(readonly lane: number, dir: string, private readonly segmentBytes: number) {
    this.dir = dir;
  }

  static open(dataDir: string, lane: number, segmentBytes: number): { log: LaneLog; report: RecoveryReport } {
    return LaneLog.openDir(laneDir(dataDir, lane), lane, segmentBytes);
  }

  /** A log in any directory with the lane format: a sink's dead letters use one (dlq-<sink>). */
  static openDir(dir: string, lane: number, segmentBytes: number): { log: LaneLog; report: RecoveryReport } {
    const log = new LaneLog(lane, dir, segmentBytes);
    const report = log.recover();
    return { log, report };
  }

  private recover(): RecoveryReport {
    fs.mkdirSync(this.dir, { recursive: true });
    this.segments = listSegments(this.dir);
    const report: RecoveryReport = {
      lane: this.lane, segments: 0, tailSegmentRecords: 0, tornBytes: 0, corruptRegions: 0, corruptBytes: 0, quarantined: [], endOffset: 0,
    };
    while (this.segments.length > 0) {
      const last = this.segments[this.segments.length - 1];
      const r = recoverLastSegment(last);
      if (r.badHeader) {
        // A segment whose header never made it to disk (crash while rolling) or was damaged:
        // keep its bytes for inspection under another name, and continue after it.
        const q = `${last.file}.corrupt`;
        fs.renameSync(last.file, q);
        report.quarantined.push(q);
        this.segments.pop();
        const nextBase = last.base + Math.max(r.size, SEGMENT_HEADER);
        this.createSegment(nextBase);
        break;
      }
      last.size = r.size;
      report.tailSegmentRecords = r.records;
      report.tornBytes = r.torn;
      report.corruptRegions = r.corruptRegions;
      report.corruptBytes = r.corruptBytes;
      this.fd = fs.openSync(last.file, 'r+');
      this.format = r.format!;
      this.written = this.synced = this.allocated = last.size;
      // A version 1 segment (an older crowd's) is never appended to: its frames carry no
      // secret. Writing goes on in a new version 2 segment from its end.
      if (this.format.version === 1) this.createSegment(last.base + last.size);
      break;
    }
    if (this.segments.length === 0) this.createSegment(0);
    const active = this.active();
    this.written = this.synced = this.allocated = active.size;
    report.segments = this.segments.length;
    report.endOffset = this.endOffset();
    return report;
  }

  private active(): SegmentInfo {
    return this.segments[this.segments.length - 1];
  }

  private createSegment(base: number): void {
    const file = path.join(this.dir, segmentFileName(base));
    const format = newSegmentFormat();
    const header = segmentHeader(base, format);
    const fd = fs.openSync(file, 'wx');
    try {
      writeAll(fd, header, header.length, 0);
      fs.fsyncSync(fd);
      fsyncDir(this.dir);
    } catch (e) {
      // Disk full while rolling: leave no half-made segment behind, so a retry can make it.
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw e;
    }
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = fd;
    this.format = format;
    this.segments.push({ base, size: header.length, file });
    this.written = this.synced = this.allocated = header.length;
    this.preallocateRetryAt = 0;
  }

  /** Logical offset one past the last written frame. */
  endOffset(): number {
    return this.active().base + this.written;
  }

  /** Bytes held by all segments of this lane. */
  totalBytes(): number {
    let n = 0;
    for (let i = 0; i < this.segments.length - 1; i++) n += this.segments[i].size;
    return n + this.written;
  }

  segmentList(): readonly SegmentInfo[] {
    return this.segments;
  }

  /**
   * Appends buf[0, len): whole frames, each with FRAME_MAGIC and its length filled in. Rolls
   * first when the segment would overflow, then seals the frames in place with the active
   * segment's secrets (frame magic and crc seed, frame-layout.ts) in one call, and writes them.
   */
  write(buf: Uint8Array, len: number): void {
    if (this.written > this.format.headerSize && this.written + len > this.segmentBytes) this.roll();
    crc.sealFrames(buf, 0, len, this.format.crcSeed, this.format.frameMagic);
    if (this.written + len > this.allocated) this.preallocate(this.written + len);
    writeAll(this.fd, buf, len, this.written);
    this.written += len;
    // Appended past what was allocated (pre-allocation failed): the file ends here now.
    if (this.allocated < this.written) this.allocated = this.written;
    this.active().size = this.written;
  }

  /**
   * Writes zeros ahead of the write position (see `allocated`); never past the segment size.
   * An optimisation only: when the disk has no room for the zeros (ENOSPC, a quota), the file
   * is cut back to what was allocated and the log appends without pre-allocation (the write
   * itself then extends the file, and fails only if the frames themselves do not fit). It
   * tries again after another PREALLOCATE_BYTES were written, or in the next segment.
   */
  private preallocate(need: number): void {
    if (this.written < this.preallocateRetryAt) return;
    const target = Math.min(Math.max(need, this.allocated + PREALLOCATE_BYTES), Math.max(need, this.segmentBytes));
    try {
      while (this.allocated < target) {
        const n = Math.min(ZEROS.length, target - this.allocated);
        writeAll(this.fd, ZEROS, n, this.allocated);
        this.allocated += n;
      }
    } catch {
      // A short write may have extended the file past `allocated`: cut it back, so no zeros
      // are left past the frames that `allocated` does not know of (best effort: the cut is
      // tried again at the roll or close through trimPreallocation).
      this.allocated = Math.max(this.allocated, this.written);
      try {
        fs.ftruncateSync(this.fd, this.allocated);
      } catch {
        this.allocated = Number.MAX_SAFE_INTEGER; // unknown size: trim at roll/close cuts to `written`
      }
      this.preallocateRetryAt = this.written + PREALLOCATE_BYTES;
    }
  }

  /** Cuts the zeros written ahead, so the file ends at its last frame (before a roll, at close). */
  private trimPreallocation(): void {
    if (this.allocated > this.written) {
      fs.ftruncateSync(this.fd, this.written);
      fs.fsyncSync(this.fd);
      this.allocated = this.written;
    }
  }

  /** fdatasync: everything written so far is durable when this returns. */
  sync(): void {
    if (this.synced === this.written) return;
    fs.fdatasyncSync(this.fd);
    this.synced = this.written;
  }

  hasUnsynced(): boolean {
    return this.synced !== this.written;
  }

  /**
   * After a failed write or fsync: the bytes after the last successful fsync cannot be
   * trusted (fsyncgate), so cut them off; the caller writes them again from its ring.
   */
  repair(): void {
    fs.ftruncateSync(this.fd, this.synced);
    fs.fsyncSync(this.fd);
    this.written = this.allocated = this.synced;
    this.active().size = this.written;
  }

  private roll(): void {
    this.sync();
    this.trimPreallocation();
    this.createSegment(this.endOffset());
  }

  /**
   * Retention: removes whole segments that end at or before `offset` (the lowest cursor of all
   * consumers of this lane). The active segment is never removed. Returns bytes freed.
   * An offset that is not a position of this log (not a non-negative safe integer, or past its
   * end) is a RangeError and removes nothing: a bad cursor must never delete records.
   */
  removeBelow(offset: number): number {
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset > this.endOffset()) {
      throw new RangeError(`lane ${this.lane}: retention offset ${String(offset)} is not a position of the log (0..${this.endOffset()}); nothing removed`);
    }
    let freed = 0;
    while (this.segments.length > 1) {
      const s = this.segments[0];
      if (s.base + s.size > offset) break;
      fs.unlinkSync(s.file);
      freed += s.size;
      this.segments.shift();
    }
    if (freed > 0) fsyncDir(this.dir);
    return freed;
  }

  /**
   * Bytes a consumer at `offset` must still read before removeBelow can free anything: up to
   * the end of the oldest segment (the active one is never removed: then up to the log's end).
   */
  bytesBeforeRemovable(offset: number): number {
    const s = this.segments[0];
    const end = this.segments.length > 1 ? s.base + s.size : this.endOffset();
    return Math.max(0, end - offset);
  }

  /**
   * Syncs, trims what was allocated ahead, and records the log's end in CLOSED_END_FILE: a log
   * never ends below that later (fsynced data survives a crash), so `crowd log verify` can tell
   * a last segment removed or truncated since. Best effort: the record only helps verify.
   */
  close(): void {
    if (this.fd >= 0) {
      this.sync();
      this.trimPreallocation();
      fs.closeSync(this.fd);
      this.fd = -1;
      try {
        writeFileDurable(path.join(this.dir, CLOSED_END_FILE), `${this.endOffset()}\n`);
      } catch {
        // verify then knows less; the log itself is complete and synced
      }
    }
  }
}

/** Where a closed log's end offset is recorded, in its directory (see LaneLog.close). */
export const CLOSED_END_FILE = 'closed-end';

/** The end a log had when it was last closed, or null when unknown. */
export function closedEnd(dir: string): number | null {
  try {
    const n = Number(fs.readFileSync(path.join(dir, CLOSED_END_FILE), 'utf8').trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  } catch {
    return null;
  }
}

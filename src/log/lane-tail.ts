/**
 * Reading one lane's log incrementally from a position, as a sink does: chunked reads from the
 * segment that holds the position, on to the next segment at the end of one, never past a
 * limit (the lane's fsynced end, so a sink never sends what a crash could still take back).
 * Corrupt regions are skipped and counted (frame-scan.ts); zeros the writer allocated ahead
 * of its last frame end the data.
 */
import fs from 'node:fs';
import { FRAME_HEADER, FRAME_MAGIC, MAX_FRAME_PAYLOAD, SEGMENT_HEADER, frameSize } from './frame-layout.js';
import { scanFrames } from './frame-scan.js';
import { laneDir, listSegments, type SegmentInfo } from './lane-log.js';

export interface TailRecord {
  lane: number;
  offset: number;
  /** Offset just after this record: where a cursor goes once it is delivered. */
  next: number;
  payload: Buffer;
}

const CHUNK = 1024 * 1024;

export class LaneTail {
  readonly dir: string;
  private seg: SegmentInfo | null = null;
  private fd = -1;
  corruptRegions = 0;

  constructor(dataDir: string, readonly lane: number, private pos: number) {
    this.dir = laneDir(dataDir, lane);
  }

  /** Offset of the next record to read. */
  position(): number {
    return this.pos;
  }

  /** Go back (or forward) to an offset, e.g. to send again what failed. */
  seek(offset: number): void {
    this.pos = offset;
    this.close();
  }

  /**
   * Reads the records at or after the position, below `limit` (exclusive; Infinity for a lane
   * no live writer owns), at most maxBytes of file at a time.
   */
  read(limit: number, maxBytes = CHUNK): TailRecord[] {
    const out: TailRecord[] = [];
    let want = maxBytes;
    for (let guard = 0; guard < 1000 && this.pos < limit && out.length === 0; guard++) {
      if (!this.openSegmentFor(this.pos)) break;
      const seg = this.seg!;
      const size = fs.fstatSync(this.fd).size;
      const start = this.pos - seg.base;
      const end = Math.min(size, limit - seg.base, start + want);
      if (end <= start) {
        if (!this.nextSegment()) break;
        continue;
      }
      const buf = Buffer.allocUnsafe(end - start);
      const n = fs.readSync(this.fd, buf, 0, buf.length, start);
      const atEnd = start + n >= size;
      const r = scanFrames(buf, 0, n, {
        frame: (p, s, len) => {
          out.push({ lane: this.lane, offset: seg.base + start + p, next: 0, payload: buf.subarray(s, s + len) });
        },
      }, false);
      for (let i = 0; i < out.length; i++) out[i].next = i + 1 < out.length ? out[i + 1].offset : seg.base + start + r.goodEnd;
      this.corruptRegions += r.corruptRegions;
      if (r.goodEnd > 0) this.pos = seg.base + start + r.goodEnd;
      else if (r.zeroTail > 0 || (atEnd && n === 0)) {
        // Nothing more in this segment (allocated-ahead zeros or its end): a later segment?
        if (!this.nextSegment()) break;
      } else if (r.tail || (atEnd && r.frames === 0)) {
        // Unreadable bytes at the end of a sealed segment: counted, skipped.
        this.corruptRegions++;
        if (!this.nextSegment()) break;
      } else if (n >= FRAME_HEADER && buf.readUInt32LE(0) === FRAME_MAGIC && frameSize(buf.readUInt32LE(8)) > n && end === start + want) {
        want = Math.min(frameSize(buf.readUInt32LE(8)), MAX_FRAME_PAYLOAD + FRAME_HEADER); // a frame larger than one read
      } else break; // an unfinished frame: wait for more bytes
    }
    return out;
  }

  private openSegmentFor(pos: number): boolean {
    if (this.seg && pos >= this.seg.base && this.fd >= 0) return true;
    const segs = listSegments(this.dir);
    let found: SegmentInfo | undefined;
    for (const s of segs) if (s.base <= pos) found = s;
    if (!found) {
      // Before the first segment (retention removed it): start at the oldest there is.
      if (segs.length === 0) return false;
      found = segs[0];
      this.pos = found.base + SEGMENT_HEADER;
    }
    this.close();
    this.seg = found;
    this.fd = fs.openSync(found.file, 'r');
    if (this.pos < found.base + SEGMENT_HEADER) this.pos = found.base + SEGMENT_HEADER;
    return true;
  }

  /** Moves to the segment after the current one, if there is one. */
  private nextSegment(): boolean {
    const cur = this.seg;
    if (!cur) return false;
    const next = listSegments(this.dir).find((s) => s.base > cur.base);
    if (!next) return false;
    this.close();
    this.pos = next.base + SEGMENT_HEADER;
    return this.openSegmentFor(this.pos);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.seg = null;
  }
}

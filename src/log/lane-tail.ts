/**
 * Reading one lane's log incrementally from a position, as a sink does: chunked reads from the
 * segment that holds the position, on to the next segment at the end of one, never past a
 * limit (the lane's fsynced end, so a sink never sends what a crash could still take back).
 * Corrupt regions are skipped and counted, resyncing exactly as `crowd log dump` does
 * (frame-scan.ts); zeros the writer allocated ahead of its last frame end the data.
 */
import fs from 'node:fs';
import { FRAME_HEADER, V1_FORMAT, frameSize, type SegmentFormat } from './frame-layout.js';
import { claimedLength, scanFrames } from './frame-scan.js';
import { laneDir, listSegments, readSegmentFormat, type SegmentInfo } from './lane-log.js';

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
  private format: SegmentFormat = V1_FORMAT;
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
   * no live writer owns), about maxBytes of file at a time.
   *
   * The bytes of a segment below min(file size, limit) are whole data: a sealed segment's file,
   * or an active one up to its fsynced end (the writer fsyncs whole frames). A read that does
   * not reach that end stops at the first frame that does not check out; if the frame is only
   * cut by the read, the read grows to hold it, else (a bad length, magic or checksum) the rest
   * of the data is read whole and scanned as `crowd log dump` scans it, resyncing on the next
   * good frame: one bad record never hides the ones after it, nor stalls an active segment.
   */
  read(limit: number, maxBytes = CHUNK): TailRecord[] {
    const out: TailRecord[] = [];
    let want = maxBytes;
    for (let guard = 0; guard < 1000 && this.pos < limit && out.length === 0; guard++) {
      if (!this.openSegmentFor(this.pos)) break;
      const seg = this.seg!;
      const size = fs.fstatSync(this.fd).size;
      const start = this.pos - seg.base;
      const dataEnd = Math.min(size, limit - seg.base);
      if (dataEnd <= start) {
        // The end of this segment's data: on to the next segment, if there is one yet.
        if (!this.nextSegment()) break;
        continue;
      }
      const end = Math.min(dataEnd, start + want);
      const buf = Buffer.allocUnsafe(end - start);
      const n = fs.readSync(this.fd, buf, 0, buf.length, start);
      if (n === 0) break;
      const complete = start + n >= dataEnd;
      let bytes = 0;
      const r = scanFrames(buf, 0, n, {
        frame: (p, s, len) => {
          out.push({ lane: this.lane, offset: seg.base + start + p, next: 0, payload: buf.subarray(s, s + len) });
          bytes += len;
          return bytes < maxBytes;
        },
      }, complete, this.format);
      for (let i = 0; i < out.length; i++) out[i].next = i + 1 < out.length ? out[i + 1].offset : seg.base + start + r.goodEnd;
      this.corruptRegions += r.corruptRegions;
      if (complete && !r.stopped && (r.tail || r.zeroTail > 0)) {
        // Nothing good after goodEnd up to the end of the data: bad bytes (counted) or zeros
        // written ahead; skip them, and move on to a later segment when this one is sealed.
        if (r.tail) this.corruptRegions++;
        this.pos = seg.base + dataEnd;
        for (const o of out) o.next = Math.min(o.next, this.pos);
        if (out.length > 0) out[out.length - 1].next = this.pos;
        continue;
      }
      if (r.goodEnd > 0) {
        this.pos = seg.base + start + r.goodEnd;
        continue;
      }
      if (complete) break; // nothing readable (cannot happen with n > 0; never spin)
      // No whole frame at the position within this read: one larger than the read, or a bad one.
      const len = claimedLength(new DataView(buf.buffer, buf.byteOffset, n), 0, n, this.format);
      const cutByRead = len >= 0 && FRAME_HEADER + len > n && start + FRAME_HEADER + len <= dataEnd;
      want = cutByRead ? Math.max(want, frameSize(len)) : dataEnd - start;
    }
    return out;
  }

  /**
   * Opens the segment holding pos (the oldest one when retention removed pos's) and reads its
   * format. A segment whose header does not check out cannot be verified, so none of its
   * frames is trusted: when a later segment exists it is skipped and counted as corrupt; the
   * last one may be a segment being created (file made, header not written yet): wait.
   */
  private openSegmentFor(pos: number): boolean {
    if (this.seg && pos >= this.seg.base && this.fd >= 0) return true;
    const segs = listSegments(this.dir);
    let i = -1;
    for (let k = 0; k < segs.length; k++) if (segs[k].base <= pos) i = k;
    if (i < 0) {
      // Before the first segment (retention removed it): start at the oldest there is.
      if (segs.length === 0) return false;
      i = 0;
    }
    for (; i < segs.length; i++) {
      this.close();
      const seg = segs[i];
      this.fd = fs.openSync(seg.file, 'r');
      const format = readSegmentFormat(this.fd, seg.base);
      if (format) {
        this.seg = seg;
        this.format = format;
        if (this.pos < seg.base + format.headerSize) this.pos = seg.base + format.headerSize;
        return true;
      }
      this.close();
      if (i + 1 >= segs.length) return false;
      this.corruptRegions++;
      this.pos = segs[i + 1].base;
    }
    return false;
  }

  /** Moves to the segment after the current one, if there is one. */
  private nextSegment(): boolean {
    const cur = this.seg;
    if (!cur) return false;
    const next = listSegments(this.dir).find((s) => s.base > cur.base);
    if (!next) return false;
    this.close();
    this.pos = next.base;
    return this.openSegmentFor(this.pos);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.seg = null;
  }
}
